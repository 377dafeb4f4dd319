"""Where a worker runs: its rank, device, checkpoints and reports. ``RayWorker`` inside Ray
Train; ``LocalWorker`` in this process (one rank, checkpoints in a folder), which the tests use
to drive the same loop without Ray."""

from __future__ import annotations

import shutil
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

import torch


class WorkerContext:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    def checkpoints(self) -> Iterator:
        """Context managers giving the folders of this run's checkpoints, newest first (none
        for a fresh start): a resume falls back to an older one when the newest is unreadable."""
        return iter(())

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

    def checkpoints(self) -> Iterator:
        import pyarrow.fs as pafs
        import ray.train

        latest = ray.train.get_checkpoint()
        if latest is None:
            return
        yield _as_path(latest)
        parent = latest.path.rstrip("/").rsplit("/", 1)[0]
        infos = latest.filesystem.get_file_info(pafs.FileSelector(parent))
        older = sorted((i.path for i in infos if i.type == pafs.FileType.Directory
                        and i.base_name.startswith("checkpoint_") and i.path.rstrip("/") != latest.path.rstrip("/")),
                       reverse=True)  # Ray names them by time
        for path in older:
            yield _as_path(ray.train.Checkpoint(path, filesystem=latest.filesystem))

    def report(self, metrics: dict, folder: Path | None) -> None:
        import ray.train

        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(folder)) if folder else None)


class LocalWorker(WorkerContext):
    """One rank in this process; each checkpoint is copied to ``root/checkpoint_<n>``. Several
    processes (``rank`` of ``world``, a process group already set up) merge their files into the
    same folders, as Ray Train merges its workers'."""

    def __init__(self, root: str | Path, rank: int = 0, world: int = 1) -> None:
        self.root, self.rank, self.world = Path(root), rank, world
        self.reports: list[dict] = []
        self.saved: list[Path] = []

    def checkpoints(self) -> Iterator:
        for folder in reversed(self.saved):
            yield nullcontext(folder)

    def report(self, metrics: dict, folder: Path | None) -> None:
        self.reports.append(dict(metrics))
        if folder is not None:
            target = self.root / f"checkpoint_{len(self.saved):06d}"
            shutil.copytree(folder, target, dirs_exist_ok=self.world > 1)
            self.saved.append(target)


@contextmanager
def _as_path(checkpoint) -> Iterator[Path]:
    with checkpoint.as_directory() as folder:
        yield Path(folder)
