"""What every model family provides, with the Hugging Face behaviour as the default.

The driver calls ``check`` (cheap: can this name be found?) before Ray starts and
``materialise`` once per trial (build what workers must share, e.g. random initial weights);
workers call ``build`` on the configuration ``materialise`` returned. Resume state, saving and
the embedding-cache fingerprint go through the family too, so a LoRA family can keep only its
adapter in each.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Sequence

import torch

from scaling.models.encoder import DualEncoder, EncoderConfig

log = logging.getLogger(__name__)
_SAMPLES_PER_TENSOR = 4096
FINGERPRINT_FILE = "fingerprint.json"  # beside a saved model: its weights' fingerprint and the folder's file sizes


def ensure_pad_token(tokenizer, model: str) -> int:
    """The pad id; a tokenizer without one pads with its EOS token (decoder embedders: the mask
    excludes it), and one with neither is an error naming the model, never a silent id 0."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    if tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
        log.info("%s has no pad token; padding with its EOS token %r (masked out)", model, tokenizer.eos_token)
        return int(tokenizer.pad_token_id)
    raise ValueError(f"encoder.model {model!r}: its tokenizer has neither a pad nor an EOS token; add a pad token "
                     "to the tokenizer (tokenizer.add_special_tokens({'pad_token': ...})) and save it with the model")


def weights_fingerprint(module: torch.nn.Module) -> str:
    """A cheap identity of the weights: every tensor's name, shape, dtype, sum, absolute sum and
    up to 4,096 evenly spaced values. Seconds for a 7B model where hashing every byte takes
    minutes; any training step changes the sums of every tensor it updates."""
    h = hashlib.blake2b(digest_size=16)
    with torch.no_grad():
        for name, tensor in sorted(module.state_dict().items()):
            t = tensor.detach()
            flat = t.reshape(-1)
            sample = flat[:: max(1, flat.numel() // _SAMPLES_PER_TENSOR)].float().cpu()
            sums = torch.stack([t.double().sum(), t.double().abs().sum()]).cpu() if t.numel() else torch.zeros(2)
            h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
            h.update(sample.numpy().tobytes())
            h.update(sums.numpy().tobytes())
    return h.hexdigest()


def _folder_digest(folder: Path) -> dict[str, str]:
    """Each file's size and a hash of 16 evenly spaced 64 KiB pieces: about 1 MiB read per file,
    whatever the model's size, and weights written over the folder change it."""
    out = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name == FINGERPRINT_FILE or path.name.startswith("."):
            continue
        size, h = path.stat().st_size, hashlib.blake2b(digest_size=16)
        with open(path, "rb") as f:
            for offset in sorted({(size - 65536) * i // 15 for i in range(16)} if size > 65536 else {0}):
                f.seek(offset)
                h.update(f.read(65536))
        out[path.name] = f"{size}:{h.hexdigest()}"
    return out


def write_saved_fingerprint(folder: str | Path, fingerprint: str) -> None:
    """Record ``fingerprint`` beside the model just saved in ``folder``, with a digest of its
    files, so the evaluation stage can key the embedding cache without loading a 7B model."""
    folder = Path(folder)
    tmp = folder / f".{FINGERPRINT_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "files": _folder_digest(folder)}, indent=1))
    os.replace(tmp, folder / FINGERPRINT_FILE)


def saved_fingerprint(folder: str | Path) -> str | None:
    """The fingerprint ``write_saved_fingerprint`` recorded, or None when there is none or the
    folder's files changed since (one replaced, added or removed): the caller then loads the
    model and computes it."""
    folder = Path(folder)
    try:
        saved = json.loads((folder / FINGERPRINT_FILE).read_text())
        files = _folder_digest(folder)
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or files != saved.get("files") or not isinstance(saved.get("fingerprint"), str):
        return None
    return saved["fingerprint"]


def check_model_settings(config: EncoderConfig, *, path: str | None = None, model_class: type | None = None) -> None:
    """The loading settings every family checks before Ray: the attention implementation is
    installed, a folder needing its own code has ``trust_remote_code``, and ``bidirectional`` can
    be honoured by the architecture (``model_class``, or read from ``path``'s configuration)."""
    from scaling.models.attention import (
        check_attention_available,
        check_bidirectional_class,
        check_bidirectional_of,
        check_causal_flag,
        check_remote_code,
    )

    check_attention_available(config.attn_implementation)
    if path is not None:
        check_remote_code(path, config.trust_remote_code, config.model)
        check_causal_flag(path, config.bidirectional, config.model)
    if config.bidirectional:
        if model_class is not None:
            check_bidirectional_class(model_class, config.model)
        elif path is not None:
            check_bidirectional_of(path, config.model, config.trust_remote_code)


class ModelFamily:
    """The default family: a Hugging Face hub name or a local model folder."""

    name = "huggingface"

    def matches(self, model: str) -> bool:
        return True

    def check(self, config: EncoderConfig) -> None:
        """Refuse, before Ray starts, a model that cannot be found or loaded as configured
        (the message names the setting)."""
        check_model_settings(config, path=config.model)

    def materialise(self, config: EncoderConfig, *, texts: Sequence[str], seed: int, folder: Path) -> EncoderConfig:
        """Driver side, once per trial: prepare what every worker must share; returns the
        configuration workers build from (``folder`` is the trial's scratch folder)."""
        return config

    def weights_path(self, config: EncoderConfig) -> str:
        """Where the (materialised) model's Hugging Face files are: a folder or a hub name."""
        return config.model

    def build(self, config: EncoderConfig) -> DualEncoder:
        from scaling.models.encoder import load_hf_encoder

        return load_hf_encoder(config.model, config)

    def instantiate(self, config: EncoderConfig, texts: Sequence[str] = (), seed: int = 0) -> DualEncoder:
        """An encoder in memory; families of random models build it from ``texts`` and ``seed``."""
        return self.build(config)

    # ---- state ----------------------------------------------------------------------------
    def trainable_state(self, encoder: DualEncoder) -> dict:
        """What a resume checkpoint keeps of the model (only the adapter under LoRA)."""
        return encoder.trainable_state()

    def load_trainable_state(self, encoder: DualEncoder, state: dict) -> None:
        encoder.load_trainable_state(state)

    def save(self, encoder: DualEncoder, folder: str | Path) -> Path:
        """The final model: a Hugging Face folder plus ``encoder.json`` (``DualEncoder.load`` reads
        it) and ``fingerprint.json`` (``saved_fingerprint``: the cache key without loading it)."""
        folder = encoder.save(folder)
        write_saved_fingerprint(folder, self.fingerprint(encoder))
        return folder

    def fingerprint(self, encoder: DualEncoder) -> str:
        """Identity of the weights for the embedding cache."""
        return weights_fingerprint(encoder.backbone)
