"""OTP-style supervision on pykka: supervisors, a registry of names, faults, the embedded runtime.

See ``supervision.runtime.Runtime`` for how a tree is started, driven and stopped.
"""

from supervision.actor import ActorContext, CheckpointStore, Services, SupervisedActor
from supervision.clock import Clock, ManualClock, SystemClock
from supervision.errors import (
    InjectedFault,
    NotRegistered,
    RestartIntensityExceeded,
    SupervisionError,
    UnknownMessage,
)
from supervision.faults import FaultPlan
from supervision.registry import Registry
from supervision.runtime import ROOT, Runtime, wait_for
from supervision.supervisor import Supervisor

__all__ = [
    "ROOT",
    "ActorContext",
    "CheckpointStore",
    "Clock",
    "FaultPlan",
    "InjectedFault",
    "ManualClock",
    "NotRegistered",
    "Registry",
    "RestartIntensityExceeded",
    "Runtime",
    "Services",
    "SupervisedActor",
    "SupervisionError",
    "Supervisor",
    "SystemClock",
    "UnknownMessage",
    "wait_for",
]
