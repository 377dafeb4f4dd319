"""LoRA adapters (peft): exact with skipped padding, only the adapter trains and is saved (with
its base's depth), merged export, resume from adapter-only state, bad targets refused early."""

from __future__ import annotations

import pytest
import torch

from conftest import crash_at, crashed_run
from scaling.models.encoder import DualEncoder, EncoderConfig
from scaling.models.tiny import tiny_encoder

peft = pytest.importorskip("peft", reason='LoRA needs the peft library: pip install -e ".[large]"')

TEXTS = ["bees have four wings", "the nile flows into the sea", "ice floats on water because it is light",
         "a short one", "owls hunt at night in the quiet forest"]


def _perturb_adapters(encoder: DualEncoder, seed: int = 5) -> None:
    """LoRA's B starts at zero (a no-op adapter); give every adapter weight a value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in encoder.backbone.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def test_lora_with_skipped_padding_equals_lora_with_padding():
    twins = []
    for skip in (True, False):
        enc = tiny_encoder(TEXTS, hidden=32, layers=2, seed=1, skip_padding=skip, lora={"r": 4})
        _perturb_adapters(enc)
        twins.append(enc.train())
    batch = twins[0].tokenize(TEXTS, "passage")
    assert 0 < int(batch["attention_mask"].sum()) < batch["attention_mask"].numel()
    grads, outs = [], []
    for enc in twins:
        torch.manual_seed(7)
        out = enc(batch["input_ids"], batch["attention_mask"])
        (out * torch.linspace(-1, 1, out.shape[1])).sum().backward()
        outs.append(out.detach())
        grads.append({n: p.grad for n, p in enc.named_parameters() if p.grad is not None})
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)
    assert grads[0].keys() == grads[1].keys() and all("lora_" in n for n in grads[0]) and len(grads[0]) == 12
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-5, rtol=1e-4, msg=name)


def test_adapter_saves_with_its_base_depth_and_merges(tmp_path):
    base = tiny_encoder(TEXTS, hidden=32, layers=4, seed=2).save(tmp_path / "base")
    enc = DualEncoder.from_config(EncoderConfig(model=str(base), num_layers=2, lora={"r": 4, "alpha": 8}))
    _perturb_adapters(enc)
    counts = enc.parameter_counts()
    plain = DualEncoder.from_config(EncoderConfig(model=str(base), num_layers=2))
    assert counts["non_embedding"] == plain.parameter_counts()["non_embedding"]  # the scaling axis: the base's
    assert counts["trainable"] == counts["adapter"] > 0 and counts["total"] == plain.parameter_counts()["total"]
    assert set(enc.trainable_state()) and all("lora_" in k for k in enc.trainable_state())
    want = enc.encode(TEXTS, "query")
    folder = enc.save(tmp_path / "adapter")
    assert (folder / "adapter_model.safetensors").is_file() and not (folder / "model.safetensors").exists()
    back = DualEncoder.load(folder)
    assert len(back.backbone.get_base_model().encoder.layer) == 2  # not the base's full depth
    torch.testing.assert_close(torch.from_numpy(back.encode(TEXTS, "query")), torch.from_numpy(want), atol=1e-6, rtol=0)
    merged = DualEncoder.load(enc.save(tmp_path / "merged", merged=True))
    assert merged.config.lora is None and (tmp_path / "merged" / "model.safetensors").is_file()
    torch.testing.assert_close(torch.from_numpy(merged.encode(TEXTS, "query")), torch.from_numpy(want), atol=1e-5, rtol=0)


def test_the_fingerprint_saved_with_a_model_is_the_one_its_loaded_weights_give(tmp_path):
    """The evaluation stage keys the embedding cache by the fingerprint ``ModelFamily.save``
    records, without loading the model: it must equal the loaded weights' own, for a full model
    and for a LoRA adapter saved alone; a folder whose files changed since falls back to loading."""
    from scaling.eval.embeddings import folder_fingerprint, model_fingerprint
    from scaling.models.families import family_for
    from scaling.models.families.base import FINGERPRINT_FILE, saved_fingerprint

    base = tiny_encoder(TEXTS, hidden=32, layers=2, seed=3)
    full = family_for(base.config.model).save(base, tmp_path / "full")
    lora = DualEncoder.from_config(EncoderConfig(model=str(base.save(tmp_path / "base")), lora={"r": 4, "alpha": 8}))
    _perturb_adapters(lora)
    adapter = family_for(lora.config.model).save(lora, tmp_path / "adapter")
    for folder, encoder in ((full, base), (adapter, lora)):
        assert (folder / FINGERPRINT_FILE).is_file()
        loaded = model_fingerprint(DualEncoder.load(folder))
        assert saved_fingerprint(folder) == loaded == model_fingerprint(encoder)
        assert DualEncoder.saved_config(folder)[1] == (folder == adapter)
    assert model_fingerprint(lora) != model_fingerprint(DualEncoder.from_config(EncoderConfig(model=str(tmp_path / "base"),
                                                                                              lora={"r": 4, "alpha": 8})))
    assert saved_fingerprint(tmp_path / "base") is None  # saved without its family: no record
    retrained = tiny_encoder(TEXTS, hidden=32, layers=2, seed=4)
    retrained.backbone.save_pretrained(full)  # new weights over the folder: the same file names and sizes
    assert saved_fingerprint(full) is None
    assert folder_fingerprint(full) == model_fingerprint(retrained) != model_fingerprint(base)
    family_for(base.config.model).save(base, full)
    assert saved_fingerprint(full) == model_fingerprint(base)
    (full / "notes.txt").write_text("a file added after saving")
    assert saved_fingerprint(full) is None


def test_targets_that_match_nothing_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"encoder.lora.target_modules \['attn_c'\] match no linear layer"):
        tiny_encoder(TEXTS, hidden=32, layers=1, lora={"target_modules": ["attn_c"]})
    with pytest.raises(ValueError, match="unknown setting.*encoder.lora.rank"):
        EncoderConfig(lora={"rank": 4})
    with pytest.raises(ValueError, match="encoder.lora.r must be an integer >= 1"):
        EncoderConfig(lora={"r": 0})


def test_lora_trains_and_resumes_through_the_worker_loop(tmp_path):
    from scaling.training.config import TrainConfig
    from scaling.training.context import LocalWorker
    from scaling.training.outcome import TrainOutcome
    from scaling.training.trainer import plan_run
    from scaling.training.worker import run_worker

    raw = {"encoder": {"model": "tiny:hidden=32,layers=2", "query_prefix": "", "passage_prefix": "", "max_length": 24,
                       "lora": {"r": 4}},
           "sampler": {"strategy": "hybrid", "batch_size": 8}, "optim": {"lr": 1e-2, "warmup_steps": 1, "max_steps": 4},
           "data": {"train": ["parallel-qa:train"], "heldout": None},
           "run": {"storage_path": str(tmp_path / "runs"), "num_workers": 1, "report_every": 1, "checkpoint_every": 1}}
    bad = TrainConfig.from_dict({**raw, "encoder": {**raw["encoder"], "lora": {"target_modules": ["nope"]}}})
    with pytest.raises(ValueError, match="match no linear layer"):
        plan_run(bad)  # on the driver, before any worker
    plan = plan_run(TrainConfig.from_dict(raw))
    straight = LocalWorker(tmp_path / "a")
    run_worker(plan, straight)
    broken = crashed_run(plan, tmp_path / "b", 2)
    state = torch.load(broken.saved[-1] / "state.pt", weights_only=False)
    assert state["model"] and all("lora_" in k for k in state["model"])  # the adapter only
    run_worker(plan, broken, hooks=[crash_at(2)])
    a, b = (TrainOutcome.read(w.saved[-1]) for w in (straight, broken))
    assert b.metrics["resumed_from"] == 2 and a.parameters["adapter"] == a.parameters["trainable"]
    assert [h["loss"] for h in a.history] == pytest.approx([h["loss"] for h in b.history], rel=1e-6)
    assert a.history[-1]["loss"] != a.history[0]["loss"]  # the adapter learns
