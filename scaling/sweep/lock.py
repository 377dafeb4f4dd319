"""One running driver per study folder: a second ``jobs/sweep.py`` on the same study is refused
instead of writing beside the first. The lock is a small file (``<study>/.lock.json``) naming
its owner; a lock whose owner process is gone (same host) is taken over.

On object stores there is no atomic create-if-absent in pyarrow's filesystems: the lock is
written, then read back, so two drivers starting in the same second can both pass. That race
is narrow; the lock's aim is the common mistake of starting a study twice.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

from scaling.store import ResultFileError, ResultStore

LOCK_FILE = ".lock.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StudyLockError(RuntimeError):
    """Another driver holds the study."""


class StudyLock:
    def __init__(self, store: ResultStore) -> None:
        self.store = store
        self.token = uuid.uuid4().hex

    def _owner(self) -> dict | None:
        if not self.store.exists(LOCK_FILE):
            return None
        try:
            return self.store.read_json(LOCK_FILE)
        except ResultFileError:
            return None  # a damaged lock holds nothing

    def acquire(self) -> str | None:
        """Take the lock; returns a note when a stale lock was taken over."""
        note = None
        owner = self._owner()
        if owner is not None:
            same_host = owner.get("host") == socket.gethostname()
            if not same_host or _alive(int(owner.get("pid", -1))):
                raise StudyLockError(
                    f"another run of this study is in progress (pid {owner.get('pid')} on {owner.get('host')}, since "
                    f"{owner.get('started')}); wait for it to end, or, if it is gone, delete "
                    f"{self.store.uri(LOCK_FILE)}")
            note = f"took over the lock of a run that is gone (pid {owner.get('pid')}, since {owner.get('started')})"
        self.store.write_json(LOCK_FILE, {"host": socket.gethostname(), "pid": os.getpid(), "token": self.token,
                                          "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        if (self._owner() or {}).get("token") != self.token:
            raise StudyLockError(f"another run of this study took {self.store.uri(LOCK_FILE)} at the same moment")
        return note

    def release(self) -> None:
        if (self._owner() or {}).get("token") == self.token:
            self.store.fs.delete_file(self.store.path(LOCK_FILE))

    def __enter__(self) -> "StudyLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
