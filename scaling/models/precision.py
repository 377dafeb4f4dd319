"""Mixed precision for ``encoder.dtype``: where each parameter lives and what computes in it.

The rule (fp32 master weights): parameters that train stay float32, and so do AdamW's moments,
because bf16 has 8 mantissa bits and an update smaller than 2^-8 of a weight vanishes when it is
added in bf16 (pure-bf16 AdamW loses them); frozen parameters (a LoRA base, frozen word
embeddings) are stored in ``encoder.dtype``, halving their memory; forward and backward run under
``torch.autocast(dtype)``, so activations are 16-bit. fp16 has a narrow range: its gradients are
scaled (``torch.amp.GradScaler``, in ``scaling.training.step``) and it needs a GPU.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def dtype_name(value: object) -> str:
    """``fp32``/``bf16``/``fp16`` (``float32``/``bfloat16``/``float16`` accepted), else an error."""
    name = _ALIASES.get(value, value) if isinstance(value, str) else value
    if name not in DTYPES:
        raise ValueError(f"encoder.dtype must be one of {sorted(DTYPES)} (or float32/bfloat16/float16), not {value!r}")
    return name


def torch_dtype(name: str) -> torch.dtype:
    return DTYPES[dtype_name(name)]


def check_device(name: str, gpus_per_worker: float) -> None:
    """Before Ray: fp16 needs a GPU (CPU kernels and loss scaling are for GPUs); bf16 runs on both."""
    if dtype_name(name) == "fp16" and gpus_per_worker <= 0:
        raise ValueError("encoder.dtype: fp16 needs a GPU (run.gpus_per_worker is 0); on CPU use bf16 or fp32")


def check_runs_on(name: str, device: torch.device) -> None:
    """At worker start, on the device itself: torch's own capability checks."""
    name = dtype_name(name)
    if device.type == "cuda" and name == "bf16" and not torch.cuda.is_bf16_supported():
        raise RuntimeError(f"encoder.dtype: bf16, but {torch.cuda.get_device_name(device)} has no bf16 support; "
                           "use fp16 (loss-scaled) or fp32")
    if device.type == "cpu" and name == "fp16":
        raise RuntimeError("encoder.dtype: fp16 needs a GPU, and this worker runs on the CPU; use bf16 or fp32")


def autocast(name: str, device: torch.device):
    """The compute context of ``encoder.dtype`` on ``device`` (none for fp32)."""
    dtype = torch_dtype(name)
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def place_parameters(module: nn.Module, name: str) -> None:
    """Trainable parameters in float32 (master weights), frozen ones in ``name``'s dtype."""
    dtype = torch_dtype(name)
    for p in module.parameters():
        target = torch.float32 if p.requires_grad else dtype
        if p.is_floating_point() and p.dtype != target:
            p.data = p.data.to(target)


def loading_dtype(name: str, lora: bool) -> torch.dtype:
    """What ``from_pretrained`` loads in, always explicit (transformers 5 defaults to the
    checkpoint's own dtype): under LoRA the whole base is frozen, so ``encoder.dtype``; otherwise
    float32, so trained weights start from the checkpoint's exact values."""
    return torch_dtype(name) if lora else torch.float32
