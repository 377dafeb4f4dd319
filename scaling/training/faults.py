"""Test-only fault injection, as a step hook: installed by the worker only when ``run.fail_at_step``
is set (tests and reliability drills), so the training loop itself never looks at it."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass


@dataclass
class FaultInjection:
    """Fail once at ``step`` of a run that was not resumed: raise on every worker, or SIGKILL the
    last worker's process (a lost node)."""

    step: int
    how: str  # "raise" or "kill"

    def __call__(self, step: int, rank: int, world: int, resumed: bool) -> None:
        if resumed or step != self.step:
            return
        if self.how == "kill" and rank == world - 1:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.how == "raise":
            raise RuntimeError(f"simulated worker failure at step {step} (run.fail_at_step)")
