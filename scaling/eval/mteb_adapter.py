"""Let mteb evaluate one of our checkpoints (MTEB, BEIR, MIRACL tasks for users with internet).

mteb (2.x) needs an object with ``encode(inputs, *, task_metadata, hf_split, hf_subset,
prompt_type)`` where ``inputs`` is a DataLoader of batches ``{"text": [...]}``, plus
``similarity``, ``similarity_pairwise`` and ``mteb_model_meta``. Queries get the encoder's
instruction (``encoder.instruction`` through ``encoder.instruction_template``, or a per-task one
from ``instructions``) and query prefix, everything else the passage prefix, exactly as in our
own evaluation and in training.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import torch

from scaling.models.encoder import DualEncoder


class MtebEncoder:
    def __init__(self, encoder: DualEncoder, *, name: str = "hybrid-scaling/checkpoint", batch_size: int = 64,
                 device: str | None = None, instructions: Mapping[str, str] | None = None,
                 revision: str | None = None) -> None:
        """``instructions``: task name -> query instruction, for tasks that should not get
        ``encoder.instruction`` (e5-mistral and Qwen3-Embedding use one per task)."""
        self.encoder, self.name, self.batch_size, self.device = encoder, name, batch_size, device
        self.instructions = dict(instructions or {})
        self.revision = revision  # mteb's result cache is keyed by name and revision: the weights' fingerprint

    @staticmethod
    def _texts(inputs: Iterable[Any]) -> list[str]:
        texts: list[str] = []
        for item in inputs:
            if isinstance(item, str):  # mteb 1.x and sentence-transformers style: a list of strings
                texts.append(item)
            else:  # mteb 2.x: batches {"text": [...], ...}
                texts.extend(item["text"])
        return texts

    def encode(self, inputs, *, task_metadata=None, hf_split: str | None = None, hf_subset: str | None = None,
               prompt_type=None, **kwargs) -> np.ndarray:
        kind = "query" if getattr(prompt_type, "value", prompt_type) == "query" else "passage"
        instruction = self.instructions.get(getattr(task_metadata, "name", None)) if kind == "query" else None
        return self.encoder.encode(self._texts(inputs), kind, batch_size=self.batch_size, device=self.device,
                                   instruction=instruction)

    def similarity(self, embeddings1, embeddings2) -> torch.Tensor:
        a, b = torch.as_tensor(np.asarray(embeddings1)), torch.as_tensor(np.asarray(embeddings2))
        return torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(b, dim=-1).T

    def similarity_pairwise(self, embeddings1, embeddings2) -> torch.Tensor:
        a, b = torch.as_tensor(np.asarray(embeddings1)), torch.as_tensor(np.asarray(embeddings2))
        return (torch.nn.functional.normalize(a, dim=-1) * torch.nn.functional.normalize(b, dim=-1)).sum(-1)

    @property
    def mteb_model_meta(self):
        from mteb.models import ModelMeta

        counts = self.encoder.parameter_counts()
        return ModelMeta(
            loader=None, name=self.name, revision=self.revision, release_date=None, languages=None,
            n_parameters=counts["total"], n_embedding_parameters=counts["total"] - counts["non_embedding"],
            memory_usage_mb=None, max_tokens=float(self.encoder.config.max_length),
            embed_dim=int(self.encoder.backbone.config.hidden_size), license=None, open_weights=True,
            public_training_code=None, public_training_data=None, framework=["PyTorch"],
            similarity_fn_name="cosine",
            use_instructions=bool(self.encoder.config.instruction or self.instructions), training_datasets=None)
