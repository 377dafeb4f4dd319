"""A sequence-to-sequence translation model (NLLB-200, MADLAD-400) through transformers.

Inputs are built the same way for every checkpoint: the selecting token, the text's tokens, end
of sequence. NLLB selects the source language with its first token and the target with a forced
first decoder token; MADLAD has the target tag in front of the text. Decoding is greedy or beam
search, never sampling, so a shard translated twice gives the same text on the same hardware.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Sequence

from scaling.translate.codes import ModelCodes


@dataclass(frozen=True)
class ModelSettings:
    """Which checkpoint and how to decode; ``code_overrides`` maps our code -> the model's code."""

    name: str = "facebook/nllb-200-distilled-600M"
    revision: str | None = None
    style: str = "auto"  # nllb, madlad, or auto (from the tokenizer's language tokens)
    dtype: str = "auto"  # auto (GPU: float16, bfloat16 for MADLAD; CPU: float32), float32, bfloat16, float16
    device: str = "auto"  # auto (cuda when there is one), cpu, cuda, cuda:1 ...
    batch_size: int = 32  # sentences per generate call
    max_input_tokens: int = 512  # longer inputs are cut (and counted as truncated)
    max_new_tokens: int = 256
    num_beams: int = 1
    code_overrides: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_input_tokens", "max_new_tokens", "num_beams"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"setting model.{name} should be a positive integer, got {getattr(self, name)!r}")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"setting model.dtype must be auto, float32, bfloat16 or float16, got {self.dtype!r}")


def load_codes(settings: ModelSettings) -> ModelCodes:
    """The model's language codes, from its tokenizer alone (cheap: no weights are loaded)."""
    return ModelCodes.from_vocab(_tokenizer(settings).get_vocab(), model=settings.name, style=settings.style,
                                 overrides=settings.code_overrides)


def _tokenizer(settings: ModelSettings):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(settings.name, revision=settings.revision)


class Translator:
    """Loads the checkpoint once and translates lists of texts between two canonical languages."""

    def __init__(self, settings: ModelSettings) -> None:
        import torch
        from transformers import AutoModelForSeq2SeqLM

        self.settings = settings
        self.tokenizer = _tokenizer(settings)
        self.codes = ModelCodes.from_vocab(self.tokenizer.get_vocab(), model=settings.name, style=settings.style,
                                           overrides=settings.code_overrides)
        device = settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = settings.dtype
        if dtype == "auto":  # T5-family (MADLAD) activations overflow float16; bfloat16 keeps the range
            dtype = ("bfloat16" if self.codes.style == "madlad" else "float16") if device.startswith("cuda") else "float32"
        self.device, self.dtype = device, dtype
        self.model = AutoModelForSeq2SeqLM.from_pretrained(settings.name, revision=settings.revision,
                                                           dtype=getattr(torch, dtype)).to(device).eval()
        self.revision = getattr(self.model.config, "_commit_hash", None)
        self.truncated = 0
        if self.tokenizer.eos_token_id is None or self.tokenizer.pad_token_id is None:
            raise ValueError(f"the tokenizer of {settings.name!r} has no eos or pad token")

    def fingerprint(self) -> str:
        """A hash of the loaded weights (names, dtypes, bytes): what actually translated."""
        import torch

        h = hashlib.blake2b(digest_size=16)
        for name, tensor in sorted(self.model.state_dict().items()):
            h.update(name.encode())
            h.update(str(tensor.dtype).encode())
            h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()

    def _input_ids(self, text: str, src: str, tgt: str) -> list[int]:
        lang_code = self.codes.codes[src] if self.codes.style == "nllb" else self.codes.codes[tgt]
        prefix = self.tokenizer.convert_tokens_to_ids(self.codes.token(lang_code))
        body = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        room = self.settings.max_input_tokens - 2
        if len(body) > room:
            self.truncated += 1
            body = body[:room]
        return [prefix, *body, self.tokenizer.eos_token_id]

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str]:
        """Translations of ``texts`` (canonical ``src`` -> ``tgt``) in input order.

        Texts are batched by length (less padding); each batch is one ``generate`` call.
        """
        import torch

        forced = None
        if self.codes.style == "nllb":
            forced = self.tokenizer.convert_tokens_to_ids(self.codes.token(self.codes.codes[tgt]))
        ids = [self._input_ids(t, src, tgt) for t in texts]
        order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), i))
        out: list[str | None] = [None] * len(ids)
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(order), self.settings.batch_size):
            chunk = order[start:start + self.settings.batch_size]
            width = max(len(ids[i]) for i in chunk)
            batch = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                batch[row, :len(ids[i])] = torch.tensor(ids[i])
                mask[row, :len(ids[i])] = 1
            kwargs = {"forced_bos_token_id": forced} if forced is not None else {}
            with torch.inference_mode():
                generated = self.model.generate(input_ids=batch.to(self.device), attention_mask=mask.to(self.device),
                                                max_new_tokens=self.settings.max_new_tokens,
                                                num_beams=self.settings.num_beams, do_sample=False, **kwargs)
            decoded = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
            for i, text in zip(chunk, decoded):
                out[i] = text.strip()
        return out  # type: ignore[return-value]
