"""Where a worker runs: its rank, device, checkpoints and reports. ``RayWorker`` inside Ray
Train; ``LocalWorker`` in this process (one rank, checkpoints in a folder), which the tests use
to drive the same loop without Ray."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch


class WorkerContext:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @contextmanager
    def latest_checkpoint(self) -> Iterator[Path | None]:
        """The folder of the checkpoint to resume from, or None for a fresh start."""
        yield None

    def report(self, metrics: dict, folder: Path | None) -> None:
        """Report metrics with this worker's checkpoint files (``folder``; None: no files)."""
        raise NotImplementedError


class RayWorker(WorkerContext):
    def __init__(self) -> None:
        import ray.train
        import ray.train.torch

        ctx = ray.train.get_context()
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()
        self.device = ray.train.torch.get_device()

    @contextmanager
    def latest_checkpoint(self) -> Iterator[Path | None]:
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            yield None
            return
        with checkpoint.as_directory() as folder:
            yield Path(folder)

    def report(self, metrics: dict, folder: Path | None) -> None:
        import ray.train

        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(folder)) if folder else None)


class LocalWorker(WorkerContext):
    """One rank in this process; each checkpoint is copied to ``root/checkpoint_<n>``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.reports: list[dict] = []
        self.checkpoints: list[Path] = []

    @contextmanager
    def latest_checkpoint(self) -> Iterator[Path | None]:
        yield self.checkpoints[-1] if self.checkpoints else None

    def report(self, metrics: dict, folder: Path | None) -> None:
        self.reports.append(dict(metrics))
        if folder is not None:
            target = self.root / f"checkpoint_{len(self.checkpoints):06d}"
            shutil.copytree(folder, target)
            self.checkpoints.append(target)
