"""LoRA adapters (the ``peft`` library) for encoders too large to fine-tune in full.

``encoder.lora: {r, alpha, dropout, target_modules}`` wraps the backbone before the padding-skip
conversion (after it, peft cannot wrap the converted MLP linears). Only the adapter trains, is
checkpointed and is saved (with a reference to the base model and its depth); parameter counts
keep the base model's non-embedding parameters as the scaling axis. ``pip install peft``
(the ``large`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from torch import nn

DEFAULT_TARGETS = ("query", "key", "value", "q_proj", "k_proj", "v_proj")  # BERT/XLM-R and Llama-style names


@dataclass(frozen=True)
class LoraSettings:
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = DEFAULT_TARGETS

    def __post_init__(self) -> None:
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 1:
            raise ValueError(f"encoder.lora.r must be an integer >= 1, not {self.r!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"encoder.lora.dropout must be in [0, 1), not {self.dropout!r}")
        if isinstance(self.target_modules, str) or not self.target_modules:
            raise ValueError("encoder.lora.target_modules must be a non-empty list of module names")
        object.__setattr__(self, "target_modules", tuple(self.target_modules))

    @classmethod
    def of(cls, raw: Any) -> "LoraSettings | None":
        if raw is None or isinstance(raw, cls):
            return raw
        if not isinstance(raw, dict):
            raise ValueError(f"encoder.lora should be a mapping {{r, alpha, dropout, target_modules}}, not {raw!r}")
        known = [f.name for f in fields(cls)]
        unknown = [k for k in raw if k not in known]
        if unknown:
            raise ValueError(f"unknown setting(s) {[f'encoder.lora.{k}' for k in unknown]}; encoder.lora accepts {known}")
        return cls(**raw)


def linear_names(backbone: nn.Module) -> set[str]:
    """The last name part of every linear layer (what target_modules match)."""
    return {name.rsplit(".", 1)[-1] for name, module in backbone.named_modules() if isinstance(module, nn.Linear)}


def check_targets(backbone: nn.Module, settings: LoraSettings, model: str) -> None:
    found = linear_names(backbone)
    if not set(settings.target_modules) & found:
        raise ValueError(f"encoder.lora.target_modules {list(settings.target_modules)} match no linear layer of "
                         f"{model!r}; its linear layers are named {sorted(found)}")


def check_targets_of(path: str, settings: LoraSettings, model: str, *, trust_remote_code: bool = False) -> None:
    """``check_targets`` before any weights load: the architecture built on the meta device."""
    import torch
    from transformers import AutoConfig, AutoModel

    with torch.device("meta"):
        backbone = AutoModel.from_config(AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code),
                                         trust_remote_code=trust_remote_code)
    check_targets(backbone, settings, model)


def apply_lora(backbone: nn.Module, settings: LoraSettings, model: str) -> nn.Module:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ImportError('encoder.lora needs the peft library: pip install -e ".[large]"') from None
    check_targets(backbone, settings, model)
    targets = sorted(set(settings.target_modules) & linear_names(backbone))
    return get_peft_model(backbone, LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                                               target_modules=targets))


def is_adapter_parameter(name: str) -> bool:
    return "lora_" in name


def adapter_state(backbone: nn.Module) -> dict:
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(backbone)


def load_adapter_state(backbone: nn.Module, state: dict) -> None:
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(backbone, state)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"the adapter holds weights this model lacks: {unexpected[:5]}")
