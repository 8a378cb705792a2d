"""Errors of the supervision layer."""


class SupervisionError(RuntimeError):
    """Base of every error raised by ``supervision``."""


class NotRegistered(SupervisionError):
    """No live actor answers to that name (within the time allowed)."""


class InjectedFault(SupervisionError):
    """Raised on purpose by a ``FaultPlan`` rule."""


class RestartIntensityExceeded(SupervisionError):
    """A supervisor saw more restarts in its period than its intensity allows, and gave up."""


class UnknownMessage(SupervisionError):
    """An actor received a message it has no handler for."""
