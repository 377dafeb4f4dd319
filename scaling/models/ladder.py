"""Size ladders: a model family and a list of sizes, expanded into encoder configurations.

Two kinds: random models of growing width and depth (``tiny:hidden=H,layers=L``, for
from-scratch ladders and tests), and a pretrained model cut to its first k layers (keeping the
vocabulary and embeddings, so non-embedding parameters carry the size axis). Parameter counts,
the x-axis of scaling curves, are measured on the built model, never estimated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from scaling.models.encoder import EncoderConfig


@dataclass(frozen=True)
class SizeLadder:
    family: str  # "tiny", or a pretrained name/path (e.g. offline:multilingual-e5-small)
    sizes: tuple  # tiny: (hidden, layers) pairs; pretrained: layer counts

    def __post_init__(self) -> None:
        if not self.sizes:
            raise ValueError(f"ladder of {self.family!r} has no sizes")
        if self.family == "tiny":
            bad = [s for s in self.sizes if not (isinstance(s, (tuple, list)) and len(s) == 2
                                                 and all(isinstance(v, int) and v > 0 for v in s))]
            if bad:
                raise ValueError(f"tiny ladder sizes must be [hidden, layers] pairs of positive integers, got {bad}")
        elif any(not isinstance(k, int) or k < 1 for k in self.sizes):
            raise ValueError(f"pretrained ladder sizes must be layer counts >= 1, got {list(self.sizes)}")

    def encoder_configs(self, base: EncoderConfig = EncoderConfig()) -> list[EncoderConfig]:
        if self.family == "tiny":
            return [replace(base, model=f"tiny:hidden={h},layers={k},heads={max(1, h // 32)}", num_layers=None)
                    for h, k in self.sizes]
        return [replace(base, model=self.family, num_layers=k) for k in self.sizes]

    def labels(self) -> list[str]:
        return [f"h{s[0]}-l{s[1]}" if self.family == "tiny" else f"{s} layers" for s in self.sizes]


def measure(configs: Sequence[EncoderConfig], texts: Sequence[str] = ("a", "b")) -> list[dict[str, int]]:
    """Build each rung and count its parameters (total, non-embedding, trainable)."""
    from scaling.models.families import family_for

    out = []
    for cfg in configs:
        out.append(family_for(cfg.model).instantiate(cfg, texts, 0).parameter_counts())
    return out
