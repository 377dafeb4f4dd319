"""Honest interruption: SIGINT (Ctrl-C) or SIGTERM asks Ray Tune to stop (its own graceful
stop, through SIGUSR1), the driver then says what finished and what did not, and exits 130 or
143. A second signal stops at once."""

from __future__ import annotations

import os
import signal


class StudyInterrupted(RuntimeError):
    """The study was stopped by a signal; finished trials are kept and ``--resume`` continues."""

    def __init__(self, signum: int, message: str) -> None:
        self.signum = signum
        super().__init__(message)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class InterruptWatch:
    """While active, a first SIGINT/SIGTERM is recorded and turned into Tune's stop request."""

    def __init__(self, announce=print) -> None:
        self.signum: int | None = None
        self.announce = announce
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt  # the second signal: stop now
        self.signum = signum
        self.announce(f"[study] {signal.Signals(signum).name} received: stopping after Ray Tune ends the running "
                      "trial(s); finished trials are kept (a second signal stops at once)")
        if hasattr(signal, "SIGUSR1"):
            os.kill(os.getpid(), signal.SIGUSR1)  # Tune's own graceful stop

    def __enter__(self) -> "InterruptWatch":
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # ours decides; Tune still listens on SIGUSR1
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: signals stay as they are
                break
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
