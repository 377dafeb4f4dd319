"""bench/gpu_check.py's logic on the CPU (CI has no GPU; the numbers come from a lent one)."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("peft", reason="the LoRA case needs the 'large' extra (pip install -e '.[large]')")
SPEC = importlib.util.spec_from_file_location("gpu_check", Path(__file__).parents[1] / "bench" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(SPEC)
sys.modules["gpu_check"] = gpu_check  # its dataclasses look their module up
SPEC.loader.exec_module(gpu_check)


def test_model_flop_utilisation_by_hand():
    # 1e9 non-embedding parameters, 1,000 tokens, 6e12 FLOPs in 1 s on a 60 TFLOP/s device: 10 %
    assert gpu_check.mfu(10**9, 1000, 1.0, 60e12, checkpointing=False) == pytest.approx(0.1)
    assert gpu_check.mfu(10**9, 1000, 1.0, 60e12, checkpointing=True) == pytest.approx(8 / 60)


def test_the_7b_case_is_shaped_like_a_7b_model():
    import torch
    from transformers import AutoModel

    with torch.device("meta"):
        model = AutoModel.from_config(gpu_check.llama_config("7b"))
    assert 7.0e9 < sum(p.numel() for p in model.parameters()) < 7.3e9  # Mistral-7B without its LM head: 7.1B


def test_smoke_cases_train_and_report_every_number():
    rows = gpu_check.main(["--smoke", "--steps", "1", "--peak-tflops", "1"])
    assert [r["case"] for r in rows] == [c.name for c in gpu_check.SMOKE_CASES]
    full, levers = rows
    assert "error" not in full and "error" not in levers
    for row in rows:
        assert row["step_s"] > 0 and row["samples_per_s"] == pytest.approx(4 / row["step_s"])
        assert row["planned_gb"] > 0 and row["encode_texts_per_s"] > 0 and 0 < row["mfu"] < 1
    assert levers["trainable_params"] < full["trainable_params"]  # LoRA trains the adapter only
    assert levers["planned_gb"] < full["planned_gb"]
