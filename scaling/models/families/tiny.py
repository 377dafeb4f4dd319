"""``tiny:hidden=H,layers=L[,heads=A,vocab_size=V]``: random BERT encoders (``tiny-llama:...``:
Llama-shaped decoders) with a tokenizer built
from the training texts, for tests and from-scratch ladders. Built once on the driver and saved,
so every worker (and a resumed run) starts from the same weights and vocabulary."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Sequence

from scaling.models.encoder import DualEncoder, EncoderConfig
from scaling.models.families.base import ModelFamily, check_model_settings


class TinyFamily(ModelFamily):
    name = "tiny"
    scheme = "tiny:"

    def matches(self, model: str) -> bool:
        return model.startswith(self.scheme)

    def _builder(self):
        from scaling.models.tiny import tiny_encoder

        return tiny_encoder

    def _model_class(self):
        from transformers import BertModel

        return BertModel

    def check(self, config: EncoderConfig) -> None:
        from scaling.models.tiny import parse_tiny_spec

        parse_tiny_spec(config.model)
        check_model_settings(config, model_class=self._model_class())

    def instantiate(self, config: EncoderConfig, texts: Sequence[str] = (), seed: int = 0) -> DualEncoder:
        """In memory, with every setting of ``config`` (dtype, attention, LoRA...)."""
        from scaling.models.tiny import parse_tiny_spec

        settings = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "model"}
        return self._builder()(texts, seed=seed, **parse_tiny_spec(config.model), **settings)

    def materialise(self, config: EncoderConfig, *, texts: Sequence[str], seed: int, folder: Path) -> EncoderConfig:
        """The initial weights, saved in full and in fp32 (workers apply depth, LoRA, dtype... on loading)."""
        from scaling.models.tiny import parse_tiny_spec

        plain = self._builder()(texts, seed=seed, **parse_tiny_spec(config.model), pooling=config.pooling,
                                max_length=config.max_length, query_prefix=config.query_prefix,
                                passage_prefix=config.passage_prefix)
        init = plain.save(Path(folder) / "init_model")
        return replace(config, model=str(init))

    def build(self, config: EncoderConfig) -> DualEncoder:
        raise ValueError(f"encoder.model {config.model!r}: a tiny model is built from training texts; "
                         "materialise it first (training does) or use TinyFamily.instantiate")


class TinyDecoderFamily(TinyFamily):
    """``tiny-llama:hidden=H,layers=L``: random Llama-shaped decoders (pair with ``pooling: last``)."""

    name = "tiny-llama"
    scheme = "tiny-llama:"

    def _builder(self):
        from scaling.models.tiny import tiny_decoder

        return tiny_decoder

    def _model_class(self):
        from transformers import LlamaModel

        return LlamaModel


def _register() -> None:
    from scaling.models.families import register_family

    register_family(TinyFamily())
    register_family(TinyDecoderFamily())


_register()
