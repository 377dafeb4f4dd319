"""What a finished training run hands back: written by rank 0 into the final checkpoint as
``outcome.json`` beside the model, read by ``trainer.fit``. The one contract between them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

OUTCOME_FILE = "outcome.json"
MODEL_FOLDER = "model"


@dataclass
class TrainOutcome:
    metrics: dict  # final: step, loss, resumed_from, held-out losses and their notes
    history: list[dict] = field(default_factory=list)  # the training curve
    batch_counts: dict[str, int] = field(default_factory=dict)  # "<kind>:<languages>" -> batches
    parameters: dict[str, int] = field(default_factory=dict)
    sampling: dict = field(default_factory=dict)  # realised batch types and pairs (scaling.samplers.counts)

    def write(self, folder: Path) -> None:
        (Path(folder) / OUTCOME_FILE).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def read(cls, folder: Path) -> "TrainOutcome":
        return cls(**json.loads((Path(folder) / OUTCOME_FILE).read_text()))
