"""Checkpoints of a worker: resume state (model's trainable state, optimizer, schedule, sampler
position, curve so far, and every worker's RNG so a resumed run repeats the same dropout masks)
and the final one (the model and the run's outcome only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

STATE_FILE = "state.pt"


def rng_file(rank: int) -> str:
    return f"rng-{rank}.pt"


@dataclass
class Progress:
    """Where a run stands: what a resume restores besides the model and optimizer."""

    step: int = 0
    history: list[dict] = field(default_factory=list)
    batch_counts: dict[str, int] = field(default_factory=dict)
    resumed_from: int | None = None
    sampling: dict = field(default_factory=dict)  # realised batches and pairs (scaling.samplers.counts)


def save_rng(folder: Path, rank: int, device: torch.device) -> None:
    torch.save({"cpu": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None},
               Path(folder) / rng_file(rank))


def restore_rng(folder: Path, rank: int, device: torch.device) -> None:
    path = Path(folder) / rng_file(rank)
    if path.is_file():  # this worker's dropout RNG
        saved = torch.load(path, weights_only=False)
        torch.set_rng_state(saved["cpu"])
        if saved["cuda"] is not None and device.type == "cuda":
            torch.cuda.set_rng_state(saved["cuda"], device)


def save_state(folder: Path, *, model: dict, step_state: dict, sampler: dict, progress: Progress) -> None:
    torch.save({"model": model, **step_state, "sampler": sampler, "step": progress.step,
                "history": progress.history, "batch_counts": progress.batch_counts, "sampling": progress.sampling},
               Path(folder) / STATE_FILE)


def load_state(folder: Path, device: torch.device) -> dict | None:
    """The resume state, or None in the final checkpoint (the run already finished)."""
    path = Path(folder) / STATE_FILE
    return torch.load(path, map_location=device, weights_only=False) if path.is_file() else None
