"""The function each Ray Train worker runs: read the trial plan, run the worker loop
(``scaling.training.worker``) in Ray Train's context. Nothing else happens here."""

from __future__ import annotations

from scaling.plan import TrialPlan
from scaling.training.context import RayWorker
from scaling.training.worker import run_worker


def train_loop_per_worker(config: dict) -> None:
    run_worker(TrialPlan.read(config["plan"]), RayWorker())
