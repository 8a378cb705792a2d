"""One process per data directory: an exclusive ``flock`` on a lock file, holding the owner's pid.

``flock`` locks belong to an open file description, so a second ``DirLock`` on the same directory
fails whether it comes from another process or from this one::

    >>> import tempfile
    >>> d = tempfile.TemporaryDirectory()
    >>> first = DirLock.acquire(d.name)
    >>> try:
    ...     DirLock.acquire(d.name)
    ... except StoreLockedError as exc:
    ...     exc.holder_pid == os.getpid()
    True
    >>> first.release()
    >>> DirLock.acquire(d.name).release()
    >>> d.cleanup()

The kernel drops the lock when the holder dies, even by SIGKILL; a stale pid left in the file is
harmless, it is overwritten by the next holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from storage.errors import StoreLockedError

LOCK_FILE = "store.lock"


class DirLock:
    """The exclusive lock of one data directory; ``release()`` (or process death) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, directory: str | Path) -> DirLock:
        """Lock ``directory`` (which must exist) or raise ``StoreLockedError`` naming the holder."""
        path = Path(directory) / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise StoreLockedError(directory, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Unlock; idempotent. The pid stays in the file: the lock, not the file, is the truth."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
