"""Hub names and local folders (the fallback family): checked for existence before Ray starts."""

from __future__ import annotations

from pathlib import Path

from scaling.data.remote import offline
from scaling.models.encoder import EncoderConfig
from scaling.models.families.base import ModelFamily, check_model_settings


class HuggingFaceFamily(ModelFamily):
    name = "huggingface"

    def check(self, config: EncoderConfig) -> None:
        model = config.model
        if Path(model).expanduser().exists():
            check_model_settings(config, path=model)
            return
        looks_like_path = model.startswith(("/", ".", "~")) or model.count("/") > 1 or (
            "/" in model and Path(model.split("/")[0]).is_dir())
        if looks_like_path:
            raise ValueError(f"encoder.model {model!r} is not a local folder (no such path); hub names are owner/name")
        if offline():
            raise ValueError(f"encoder.model {model!r} is not a local folder, and downloads are off "
                             "(SCALING_OFFLINE/HF_HUB_OFFLINE)")
        check_model_settings(config, path=model)


def _register() -> None:
    from scaling.models.families import register_family

    register_family(HuggingFaceFamily())


_register()
