"""Attention settings of an encoder: ``attn_implementation``, ``bidirectional``, ``trust_remote_code``.

Decoder embedders such as gte-Qwen2 and NV-Embed attend bidirectionally. In transformers 5 a
decoder (Llama, Mistral, Qwen2...) builds its mask with ``masking_utils.create_causal_mask``,
which returns a bidirectional (padding-only) mask when ``config.is_causal`` is false; when there
is no padding that mask is ``None`` and SDPA and flash-attention fall back to each attention
module's ``is_causal`` flag. So both are switched off, and a probe then checks that the first
token's state depends on a later token: a request that cannot be honoured is an error, never a
model silently left causal.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
from pathlib import Path

import torch
from torch import nn

ATTENTION = ("sdpa", "eager", "flash_attention_2")
_MASK_BUILDERS = ("create_causal_mask", "create_bidirectional_mask")


def check_attention(name: str) -> None:
    if name not in ATTENTION:
        raise ValueError(f"encoder.attn_implementation must be one of {list(ATTENTION)}, not {name!r}")


def check_attention_available(name: str) -> None:
    """flash_attention_2 is an optional extra (``pip install flash-attn``, GPU only)."""
    if name == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise ValueError("encoder.attn_implementation: flash_attention_2 needs the flash-attn package "
                         '(pip install -e ".[flash]", on a CUDA machine); or use sdpa')


def local_config(path: str) -> dict | None:
    """A model folder's ``config.json`` (None for hub names and folders without one)."""
    file = Path(path).expanduser() / "config.json"
    return json.loads(file.read_text()) if file.is_file() else None


def check_remote_code(path: str, trust_remote_code: bool, model: str) -> None:
    """A folder whose configuration maps its classes to its own code (``auto_map``) runs that code."""
    config = local_config(path)
    if config and config.get("auto_map") and not trust_remote_code:
        raise ValueError(f"encoder.model {model!r} needs its own code (config.json has auto_map: "
                         f"{sorted(config['auto_map'])}); set encoder.trust_remote_code: true if you trust it")


def check_causal_flag(path: str, bidirectional: bool, model: str) -> None:
    """A folder saved from a bidirectional encoder has ``is_causal: false`` in its configuration;
    loaded without ``encoder.bidirectional`` its attention modules would still be causal (a mask
    bidirectional only in padded batches), so that is refused."""
    config = local_config(path)
    if config and config.get("is_causal") is False and not bidirectional:
        raise ValueError(f"encoder.model {model!r}: its config.json sets is_causal: false (saved from a bidirectional "
                         "encoder); set encoder.bidirectional: true")


def check_causal_modules(backbone: nn.Module, model: str) -> None:
    """The same at build time, for a backbone already in memory."""
    if getattr(backbone.config, "is_causal", None) is False and any(
            getattr(m, "is_causal", None) is True for m in backbone.modules()):
        raise ValueError(f"encoder.model {model!r}: its configuration sets is_causal: false but its attention modules "
                         "are causal; set encoder.bidirectional: true")


def masks_through_utils(model_class: type) -> bool:
    """Whether a model class's forward builds its mask with transformers' masking utilities
    (which honour ``config.is_causal``); read from its source, so no weights are needed."""
    try:
        source = inspect.getsource(model_class.forward)
    except (OSError, TypeError):
        return False
    return any(builder in source for builder in _MASK_BUILDERS)


def check_bidirectional_class(model_class: type, model: str) -> None:
    if not masks_through_utils(model_class):
        raise ValueError(f"encoder.bidirectional: {model!r} ({model_class.__name__}) does not build its attention "
                         "mask with transformers' masking utilities, so it cannot be made non-causal here; "
                         "set encoder.bidirectional: false")


def check_bidirectional_of(path: str, model: str, trust_remote_code: bool) -> None:
    """Before any weights load: the architecture of a folder (or hub name) can be made non-causal.
    Remote-code models (NV-Embed) bring their own attention: the probe at build time decides."""
    from transformers import AutoConfig, AutoModel

    config = local_config(path)
    if config is not None and config.get("auto_map"):
        return
    hf_config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    mapping = AutoModel._model_mapping
    if type(hf_config) not in mapping:
        raise ValueError(f"encoder.bidirectional: {model!r} has no AutoModel class to check; set it false")
    check_bidirectional_class(mapping[type(hf_config)], model)


def _attends_to_later_tokens(backbone: nn.Module) -> bool:
    """Probe: does the first position's output change when the last token changes?"""
    vocab = int(backbone.config.vocab_size)
    param = next(backbone.parameters())
    ids = torch.tensor([[1, 2, 3, 4], [1, 2, 3, 5]], device=param.device) % vocab
    mask = torch.ones_like(ids)
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            hidden = backbone(input_ids=ids, attention_mask=mask).last_hidden_state.float()
    finally:
        backbone.train(was_training)
    return not torch.allclose(hidden[0, 0], hidden[1, 0], rtol=0, atol=1e-6)


def make_bidirectional(backbone: nn.Module, model: str) -> None:
    """Switch off causal masking (``config.is_causal`` and every module's ``is_causal``), then
    prove it with the probe; an architecture that stays causal is an error."""
    backbone.config.is_causal = False
    for module in backbone.modules():
        if isinstance(getattr(module, "is_causal", None), bool):
            module.is_causal = False
    if not _attends_to_later_tokens(backbone):
        raise ValueError(f"encoder.bidirectional: {model!r} ({type(backbone).__name__}) still attends causally "
                         "after switching off is_causal (its attention builds the mask another way); "
                         "set encoder.bidirectional: false")
