"""The throughput window: steps since the last report, summarised into one curve record."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from scaling.training.step import PHASES


@dataclass
class ThroughputWindow:
    losses: list[torch.Tensor] = field(default_factory=list)
    time: float = 0.0
    samples: int = 0
    tokens: int = 0
    phases: dict[str, float] = field(default_factory=lambda: {p: 0.0 for p in PHASES})

    def add(self, loss: torch.Tensor, seconds: dict[str, float], samples: int, tokens: int) -> None:
        self.losses.append(loss)
        for name, value in seconds.items():
            self.phases[name] += value
        self.time += sum(seconds.values())
        self.samples += samples
        self.tokens += tokens

    def record(self, step: int, lr: float, reporting_s: float) -> dict:
        n = len(self.losses)
        return {"step": step, "loss": float(torch.stack(self.losses).mean()), "lr": lr,
                "samples_per_s": self.samples / self.time, "tokens_per_s": self.tokens / self.time,
                "step_time_s": self.time / n, **{f"{p}_s": self.phases[p] / n for p in PHASES},
                "reporting_s": reporting_s}
