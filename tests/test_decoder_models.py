"""Decoder LLM embedders on CPU with ``tiny-llama``: bidirectional attention, mixed precision
(fp32 master weights, frozen weights in encoder.dtype, autocast), fp16 loss scaling, left padding
and EOS for last-token pooling, the query instruction, and the settings' errors before Ray."""

from __future__ import annotations

import copy
import json
from dataclasses import fields

import numpy as np
import pytest
import torch

from conftest import crash_at, crashed_run
from scaling.models.encoder import DualEncoder, EncoderConfig, pad_batch
from scaling.models.tiny import tiny_decoder, tiny_encoder
from scaling.training.config import OptimConfig, RunConfig, TrainConfig
from scaling.training.loss import InfoNCELoss, LossConfig
from scaling.training.step import CachedTrainStep, TrainStep

TEXTS = [f"question number {i} about {w}" for i, w in enumerate(
    "bees rivers stars ice wheat glass salt iron clouds owls maple sand".split())]
PASSAGES = [f"the answer about {w} is in passage {i} with more words" for i, w in enumerate(
    "bees rivers stars ice wheat glass salt iron clouds owls maple sand".split())]
MIXED = [TEXTS[0], PASSAGES[1], "bees", TEXTS[3] + " " + PASSAGES[4], "ice"]  # of different lengths
CPU = torch.device("cpu")


def _decoder(**settings) -> DualEncoder:
    settings.setdefault("pooling", "last")
    return tiny_decoder(TEXTS + PASSAGES, hidden=32, layers=2, seed=3, **settings)


def _first_token_states(encoder: DualEncoder, padded: bool) -> torch.Tensor:
    """States of the first token of two texts that differ only in their last token."""
    ids = [[5, 6, 7, 8], [5, 6, 7, 9]] + ([[5, 6]] if padded else [])
    batch, mask = pad_batch(ids, encoder.pad_id)
    with torch.no_grad():
        hidden = encoder.eval().backbone(input_ids=batch, attention_mask=mask).last_hidden_state
    return hidden[:2, 0]


@pytest.mark.parametrize("padded", [False, True])
def test_bidirectional_lets_the_first_token_see_later_tokens(tmp_path, padded):
    causal = _first_token_states(_decoder(), padded)
    torch.testing.assert_close(causal[0], causal[1], rtol=0, atol=0)  # causal: a later token cannot matter
    both = _first_token_states(_decoder(bidirectional=True), padded)
    assert (both[0] - both[1]).abs().max() > 1e-3
    folder = _decoder().save(tmp_path / "m")  # through from_pretrained too (the configuration reloads causal)
    loaded = DualEncoder.from_config(EncoderConfig(model=str(folder), pooling="last", bidirectional=True))
    states = _first_token_states(loaded, padded)
    assert (states[0] - states[1]).abs().max() > 1e-3
    eager = _first_token_states(_decoder(bidirectional=True, attn_implementation="eager"), padded)
    torch.testing.assert_close(eager, both, atol=1e-5, rtol=1e-4)  # the same attention, another kernel


def test_a_folder_saved_bidirectional_must_be_loaded_bidirectional(tmp_path):
    from scaling.models.families import family_for

    enc = _decoder(bidirectional=True)
    folder = tmp_path / "bidi"
    enc.backbone.save_pretrained(folder)
    enc.tokenizer.save_pretrained(folder)
    assert json.loads((folder / "config.json").read_text())["is_causal"] is False
    causal = EncoderConfig(model=str(folder), pooling="last")
    with pytest.raises(ValueError, match="sets is_causal: false .*set encoder.bidirectional: true"):
        family_for(causal.model).check(causal)
    with pytest.raises(ValueError, match="set encoder.bidirectional: true"):
        DualEncoder.from_config(causal)
    back = DualEncoder.from_config(EncoderConfig(model=str(folder), pooling="last", bidirectional=True))
    torch.testing.assert_close(_first_token_states(back, False), _first_token_states(enc, False), rtol=0, atol=0)
    saved = DualEncoder.load(enc.save(tmp_path / "saved"))  # encoder.json keeps bidirectional
    assert saved.config.bidirectional


def test_bidirectional_that_cannot_be_honoured_is_an_error(tmp_path):
    from transformers import XLNetConfig

    from scaling.models.attention import make_bidirectional
    from scaling.models.families import family_for

    folder = tmp_path / "xlnet"
    XLNetConfig(vocab_size=50, d_model=16, n_layer=1, n_head=2, d_inner=32).save_pretrained(folder)
    config = EncoderConfig(model=str(folder), bidirectional=True)
    with pytest.raises(ValueError, match="encoder.bidirectional: .*cannot be made non-causal"):
        family_for(config.model).check(config)
    family_for(config.model).check(EncoderConfig(model=str(folder)))  # causal as it is: fine
    family_for("tiny-llama:hidden=32,layers=2").check(EncoderConfig(model="tiny-llama:hidden=32,layers=2",
                                                                    bidirectional=True))

    class OwnCausalMask(torch.nn.Module):  # builds its mask its own way: the probe catches it
        def __init__(self):
            super().__init__()
            self.config = type("C", (), {"vocab_size": 10})()
            self.embed = torch.nn.Embedding(10, 4)

        def forward(self, input_ids, attention_mask):
            return type("O", (), {"last_hidden_state": self.embed(input_ids).cumsum(1)})()

    with pytest.raises(ValueError, match="encoder.bidirectional: 'own' .*still attends causally"):
        make_bidirectional(OwnCausalMask(), "own")


def test_a_folder_with_its_own_code_needs_trust_remote_code(tmp_path):
    from scaling.models.families import family_for

    folder = _decoder().save(tmp_path / "remote")
    config_file = folder / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()),
                                       "auto_map": {"AutoModel": "modeling_x.XModel"}}))
    config = EncoderConfig(model=str(folder), pooling="last")
    with pytest.raises(ValueError, match="needs its own code .*encoder.trust_remote_code: true"):
        family_for(config.model).check(config)
    with pytest.raises(ValueError, match="encoder.trust_remote_code"):
        DualEncoder.from_config(config)  # the same refusal where the model loads


def test_flash_attention_without_the_package_names_the_setting():
    import importlib.util

    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn is installed here: the missing-package error cannot be shown")
    from scaling.models.families import family_for

    for model in ("tiny-llama:hidden=32,layers=2", "tiny:hidden=32,layers=2"):
        config = EncoderConfig(model=model, attn_implementation="flash_attention_2")
        with pytest.raises(ValueError, match="encoder.attn_implementation: flash_attention_2 needs the flash-attn"):
            family_for(model).check(config)


def test_bad_settings_are_named():
    from scaling.models.precision import check_runs_on

    with pytest.raises(ValueError, match="encoder.dtype must be one of"):
        EncoderConfig(dtype="int8")
    assert EncoderConfig(dtype="bfloat16").dtype == "bf16"  # one spelling, one trial identity
    with pytest.raises(ValueError, match="encoder.attn_implementation must be one of"):
        EncoderConfig(attn_implementation="flash")
    with pytest.raises(ValueError, match="encoder.instruction_template .* must contain"):
        EncoderConfig(instruction="find it", instruction_template="Instruct: {task}\nQuery: ")
    with pytest.raises(ValueError, match="encoder.instruction_template .* must contain"):
        EncoderConfig(instruction="find it", instruction_template="Query: ")
    with pytest.raises(ValueError, match="encoder.dtype: fp16 needs a GPU .run.gpus_per_worker is 0"):
        TrainConfig.from_dict({"encoder": {"dtype": "fp16"}})
    TrainConfig.from_dict({"encoder": {"dtype": "fp16"}, "run": {"gpus_per_worker": 1}})
    TrainConfig(encoder=EncoderConfig(dtype="bf16"), run=RunConfig(gpus_per_worker=0))  # bf16 runs on CPU
    with pytest.raises(RuntimeError, match="encoder.dtype: fp16 needs a GPU"):
        check_runs_on("fp16", CPU)
    check_runs_on("bf16", CPU)
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['encoder.dtpye'\]"):
        TrainConfig.from_dict({"encoder": {"dtpye": "bf16"}})


def test_parameter_dtypes_follow_the_storage_rule(tmp_path):
    pytest.importorskip("peft", reason='LoRA needs the peft library: pip install -e ".[large]"')
    enc = _decoder(dtype="bf16", freeze_word_embeddings=True)
    dtypes = {n: p.dtype for n, p in enc.backbone.named_parameters()}
    assert dtypes.pop("embed_tokens.weight") == torch.bfloat16  # frozen: stored in encoder.dtype
    assert set(dtypes.values()) == {torch.float32}  # trainable: fp32 master weights
    step = TrainStep(enc, OptimConfig(warmup_steps=0), InfoNCELoss(LossConfig(gather=False)), world=1, device=CPU)
    step(*_batch(enc, range(6)), 0.0)
    states = [t for s in step.optimizer.state.values() for k, t in s.items() if k in ("exp_avg", "exp_avg_sq")]
    assert states and {t.dtype for t in states} == {torch.float32}  # AdamW moments fp32

    folder = _decoder().save(tmp_path / "base")
    lora = DualEncoder.from_config(EncoderConfig(model=str(folder), pooling="last", dtype="bf16", lora={"r": 4}))
    named = dict(lora.backbone.named_parameters())
    assert {p.dtype for n, p in named.items() if "lora_" in n} == {torch.float32}
    assert {p.dtype for n, p in named.items() if "lora_" not in n} == {torch.bfloat16}  # the frozen base, loaded so
    assert all(p.requires_grad == ("lora_" in n) for n, p in named.items())


def test_a_bf16_checkpoint_loads_as_fp32_master_weights(tmp_path):
    enc = _decoder()
    enc.backbone.to(torch.bfloat16)
    folder = enc.save(tmp_path / "bf16")
    assert json.loads((folder / "config.json").read_text()).get("dtype") == "bfloat16"
    loaded = DualEncoder.from_config(EncoderConfig(model=str(folder), pooling="last", dtype="bf16"))
    assert {p.dtype for p in loaded.backbone.parameters()} == {torch.float32}  # not "auto": trainable stays fp32
    for (name, a), b in zip(enc.backbone.state_dict().items(), loaded.backbone.state_dict().values()):
        torch.testing.assert_close(a.float(), b, rtol=0, atol=0, msg=name)


def _batch(encoder, rows, *, left: bool = False):
    q = encoder.token_ids([TEXTS[i] for i in rows], "query")
    p = encoder.token_ids([PASSAGES[i] for i in rows], "passage")
    return (*pad_batch(q, encoder.pad_id, left=left), *pad_batch(p, encoder.pad_id, left=left))


def _grads(step, batch):
    step.optimizer.zero_grad(set_to_none=True)
    loss, _ = step.backward(*batch)
    return float(loss.detach()), {n: p.grad.clone() for n, p in step.encoder.named_parameters() if p.grad is not None}


def test_fp32_master_weights_keep_updates_that_pure_bf16_adamw_loses():
    optim = OptimConfig(lr=1e-6, warmup_steps=0, weight_decay=0.0, grad_clip=0.0, max_steps=10)
    mixed = _decoder(dtype="bf16")
    pure = copy.deepcopy(mixed)
    pure.backbone.to(torch.bfloat16)  # the naive way: bf16 weights, so bf16 AdamW
    before = {n: p.detach().clone() for n, p in mixed.backbone.named_parameters()}
    batch = _batch(mixed, range(8))
    for enc in (mixed, pure):
        TrainStep(enc, optim, InfoNCELoss(LossConfig(gather=False)), world=1, device=CPU)(*batch, 0.0)
    name = "layers.0.mlp.up_proj.weight"
    old = before[name]
    mixed_moved = (mixed.backbone.get_parameter(name).detach() != old).float().mean()
    pure_moved = (pure.backbone.get_parameter(name).detach().float() != old.bfloat16().float()).float().mean()
    # AdamW's first step moves each weight by about lr = 1e-6: in bf16 (8 significant bits) that is lost
    # for every weight above 256 lr = 2.6e-4 in size, nearly all of them (std 0.02)
    assert mixed_moved > 0.95 and pure_moved < 0.05, (float(mixed_moved), float(pure_moved))
    assert mixed.backbone.get_parameter(name).dtype == torch.float32


def test_bf16_autocast_gradients_are_close_to_fp32():
    full = _decoder()
    bf16 = _decoder(dtype="bf16")
    batch = _batch(full, range(8))
    results = [_grads(TrainStep(e.eval(), OptimConfig(), InfoNCELoss(LossConfig(gather=False)), world=1, device=CPU),
                      batch) for e in (full, bf16)]
    (l32, g32), (l16, g16) = results
    assert l16 == pytest.approx(l32, rel=2e-2) and g32.keys() == g16.keys()
    flat32, flat16 = (torch.cat([g[n].reshape(-1) for n in sorted(g32)]) for g in (g32, g16))
    assert flat16.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(flat32, flat16, dim=0) > 0.99
    assert (flat16 - flat32).norm() / flat32.norm() < 0.1
    assert (flat16 != flat32).any()  # bf16 compute really ran


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_gradient_caching_with_left_padding_and_autocast(dtype):
    enc = _decoder(dtype=dtype)
    enc.tokenizer.padding_side = "left"
    enc = DualEncoder(enc.backbone, enc.tokenizer, enc.config)
    assert enc.left_padding
    batch = _batch(enc, range(10), left=True)
    whole = TrainStep(enc.eval(), OptimConfig(), InfoNCELoss(LossConfig(gather=False)), world=1, device=CPU)
    cached = CachedTrainStep(copy.deepcopy(enc), OptimConfig(), InfoNCELoss(LossConfig(gather=False, chunk_size=3)),
                             world=1, device=CPU, chunk_size=3)
    (l1, g1), (l2, g2) = _grads(whole, batch), _grads(cached, batch)
    tol = dict(atol=1e-5, rtol=1e-4) if dtype == "fp32" else dict(atol=2e-3, rtol=5e-2)
    assert l1 == pytest.approx(l2, rel=1e-5 if dtype == "fp32" else 1e-2) and g1.keys() == g2.keys()
    flat1, flat2 = (torch.cat([g[n].reshape(-1) for n in sorted(g1)]) for g in (g1, g2))
    if dtype == "fp32":
        torch.testing.assert_close(flat1, flat2, **tol)
    else:  # chunks are cut to their own width: bf16 rounds differently, gradients agree closely
        assert torch.nn.functional.cosine_similarity(flat1, flat2, dim=0) > 0.995


def test_fp16_scales_the_loss_and_unscales_the_gradients():
    """fp16 trains through torch.amp.GradScaler (CPU autocast runs fp16 too, so the logic is
    tested here; training refuses fp16 without a GPU at the configuration)."""
    ref = _decoder()
    half = _decoder(dtype="fp16")
    batch = _batch(ref, range(8))
    optim = OptimConfig(grad_clip=0.0, warmup_steps=0)
    s32 = TrainStep(ref.eval(), optim, InfoNCELoss(LossConfig(gather=False)), world=1, device=CPU)
    s16 = TrainStep(half.eval(), optim, InfoNCELoss(LossConfig(gather=False)), world=1, device=CPU)
    assert s16.scaler is not None and s32.scaler is None and s16.scaler.get_scale() == 65536.0
    s32(*batch, 0.0)
    start = [p.detach().clone() for p in s16.params]
    for _ in range(30):  # an overflow skips the step and halves the scale, until the gradients fit
        scale = s16.scaler.get_scale()
        s16(*batch, 0.0)
        unchanged = all(torch.equal(a, p.detach()) for a, p in zip(start, s16.params))
        if s16.scaler.get_scale() == scale:
            break
        assert s16.scaler.get_scale() == scale / 2 and unchanged  # skipped: the weights did not move
    assert not unchanged  # finally a step was taken, from the same starting weights as the fp32 one
    flat32, flat16 = (torch.cat([p.grad.reshape(-1) for p in s.params]) for s in (s32, s16))
    assert (flat16 - flat32).norm() / flat32.norm() < 0.05  # unscaled before the optimizer (else scale x)
    assert "scaler" in s16.state_dict() and "scaler" not in s32.state_dict()
    restored = TrainStep(copy.deepcopy(half), optim, InfoNCELoss(LossConfig(gather=False)), world=1, device=CPU)
    restored.load_state_dict(s16.state_dict())  # a resume goes on at the scale reached
    assert restored.scaler.get_scale() == s16.scaler.get_scale() < 65536.0


def _left_twin(enc: DualEncoder) -> DualEncoder:
    tok = copy.deepcopy(enc.tokenizer)
    tok.padding_side = "left"
    return DualEncoder(copy.deepcopy(enc.backbone), tok, enc.config)


@pytest.mark.parametrize("skip_padding,checkpointing", [(True, False), (False, False), (True, True)])
def test_left_padding_gives_the_right_padding_embeddings_and_gradients(skip_padding, checkpointing):
    right = _decoder(skip_padding=skip_padding, gradient_checkpointing=checkpointing).train()
    left = _left_twin(right).train()
    assert left.left_padding and not right.left_padding
    ids = right.token_ids(MIXED, "passage")
    assert len({len(s) for s in ids}) > 1  # really padded
    outs = []
    for enc in (right, left):
        batch, mask = enc.pad(ids)
        assert (mask[:, 0] == 0).any() if enc is left else (mask[:, -1] == 0).any()
        out = enc(batch, mask)
        (out * torch.linspace(-1, 1, out.shape[1])).sum().backward()
        outs.append((out.detach(), {n: p.grad for n, p in enc.named_parameters() if p.grad is not None}))
    torch.testing.assert_close(outs[0][0], outs[1][0], atol=1e-5, rtol=1e-4)
    for name, grad in outs[0][1].items():
        torch.testing.assert_close(grad, outs[1][1][name], atol=1e-5, rtol=1e-4, msg=name)
    np.testing.assert_allclose(right.encode(MIXED, "query"), left.encode(MIXED, "query"), atol=1e-5)


def test_eos_is_appended_once_where_the_tokenizer_does_not_add_it():
    from tokenizers import processors

    adds = _decoder()
    eos = adds.tokenizer.eos_token_id
    assert adds.eos_id is None  # the tiny tokenizer already ends every text with [SEP] (its EOS)
    plain = _decoder()
    plain.tokenizer._tokenizer.post_processor = processors.TemplateProcessing(single="$A", special_tokens=[])
    plain = DualEncoder(plain.backbone, plain.tokenizer, plain.config)
    assert plain.tokenizer(["a b"])["input_ids"][0][-1] != eos and plain.eos_id == eos
    for enc in (adds, plain):
        for seq in enc.token_ids(TEXTS + ["word " * 200], "query"):
            assert seq[-1] == eos and seq.count(eos) == 1 and len(seq) <= enc.config.max_length
    mean = tiny_decoder(TEXTS, pooling="mean")
    mean.tokenizer._tokenizer.post_processor = processors.TemplateProcessing(single="$A", special_tokens=[])
    mean = DualEncoder(mean.backbone, mean.tokenizer, mean.config)
    assert mean.eos_id is None  # only last-token pooling reads the EOS state


def test_the_instruction_reaches_queries_only_in_training_evaluation_and_mteb():
    import pyarrow as pa

    from scaling.data import ParallelCorpus
    from scaling.eval.mteb_adapter import MtebEncoder
    from scaling.training.tokens import tokenize_corpus

    words = TEXTS + PASSAGES + ["instruct", "find", "the", "answer", "query"]
    config = dict(instruction="find the answer", query_prefix="", passage_prefix="", pooling="mean")
    enc = tiny_encoder(words, **config)
    assert enc.prefix("query") == "Instruct: find the answer\nQuery: " and enc.prefix("passage") == ""
    plain = DualEncoder(enc.backbone, enc.tokenizer, EncoderConfig(**{**config, "instruction": ""}))
    want = plain.encode(["Instruct: find the answer\nQuery: " + t for t in TEXTS], "query")
    np.testing.assert_allclose(enc.encode(TEXTS, "query"), want, atol=1e-6)
    np.testing.assert_allclose(enc.encode(PASSAGES, "passage"), plain.encode(PASSAGES, "passage"), atol=1e-6)
    assert not np.allclose(enc.encode(TEXTS, "query"), plain.encode(TEXTS, "query"), atol=1e-3)
    table = pa.table({"group_id": list(range(4)), "language": ["en"] * 4, "query": TEXTS[:4], "passage": PASSAGES[:4]})
    tokens = tokenize_corpus(enc, ParallelCorpus(table))
    assert tokens.queries == plain.token_ids(["Instruct: find the answer\nQuery: " + t for t in TEXTS[:4]], "query")
    assert tokens.passages == plain.token_ids(PASSAGES[:4], "passage")
    mteb = MtebEncoder(enc)
    np.testing.assert_allclose(mteb.encode([{"text": TEXTS}], prompt_type="query"), want, atol=1e-6)
    np.testing.assert_allclose(mteb.encode([{"text": PASSAGES}], prompt_type="document"),
                               plain.encode(PASSAGES, "passage"), atol=1e-6)
    task = type("Task", (), {"name": "BeesRetrieval"})()
    per_task = MtebEncoder(enc, instructions={"BeesRetrieval": "the answer"})
    np.testing.assert_allclose(per_task.encode([{"text": TEXTS}], task_metadata=task, prompt_type="query"),
                               plain.encode(["Instruct: the answer\nQuery: " + t for t in TEXTS], "query"), atol=1e-6)


def test_every_encoder_setting_reaches_the_trials():
    from conftest import TINY_STUDY
    from scaling.sweep.study import build_study

    chosen = {"model": "tiny-llama:hidden=32,layers=2", "pooling": "last", "normalize": False, "query_prefix": "q: ",
              "passage_prefix": "p: ", "max_length": 24, "num_layers": 1, "freeze_word_embeddings": True,
              "skip_padding": False, "lora": {"r": 2, "alpha": 4.0, "dropout": 0.0, "target_modules": ["q_proj"]},
              "gradient_checkpointing": True, "dtype": "bf16", "attn_implementation": "eager",
              "trust_remote_code": True, "bidirectional": True, "instruction": "find it",
              "instruction_template": "Task: {instruction}\n"}
    defaults = EncoderConfig()
    assert set(chosen) == {f.name for f in fields(EncoderConfig)}  # a new setting must be added here too
    assert all(chosen[k] != getattr(defaults, k) for k in chosen if k != "lora")
    raw = json.loads(json.dumps(TINY_STUDY))
    raw["axes"]["model"] = [chosen, {"model": "tiny:hidden=32,layers=2"}]
    study = build_study(raw, [])
    trial = next(t for t in study.trials if t.config.encoder.model == chosen["model"])
    for key, value in chosen.items():
        got = getattr(trial.config.encoder, key)
        if key == "lora":
            got = {k: list(v) if isinstance(v, tuple) else v for k, v in got.__dict__.items()}
        assert got == value, key
    other = next(t for t in study.trials if t.config.encoder.model != chosen["model"])
    assert other.config.encoder.dtype == "fp32" and other.config.encoder.instruction == ""


def test_the_memory_planner_follows_the_storage_rule():
    from scaling.models.lora import LoraSettings
    from scaling.plan.memory import ModelShape, estimate

    shape = ModelShape(total=1000, embedding=200, hidden=8, layers=2, heads=2)
    base = TrainConfig()
    fp32 = estimate(shape, base)
    assert (fp32.weights, fp32.gradients, fp32.optimizer) == (4000, 4000, 8000)
    bf16 = estimate(shape, TrainConfig(encoder=EncoderConfig(dtype="bf16")))
    # trainable weights stay fp32 (the master copy) plus autocast's 16-bit copy; fp32 moments
    assert (bf16.weights, bf16.gradients, bf16.optimizer) == (1000 * 4 + 1000 * 2, 4000, 8000)
    assert bf16.activations == fp32.activations / 2  # activations in the compute dtype
    frozen = estimate(shape, TrainConfig(encoder=EncoderConfig(dtype="bf16", freeze_word_embeddings=True)))
    assert (frozen.weights, frozen.gradients) == (200 * 2 + 800 * 4 + 800 * 2, 800 * 4)
    lora = estimate(shape, TrainConfig(encoder=EncoderConfig(dtype="bf16", lora=LoraSettings(r=1))))
    adapter = 3 * 2 * 1 * 2 * 8
    assert (lora.weights, lora.gradients, lora.optimizer) == (1000 * 2 + adapter * 6, adapter * 4, adapter * 8)


def test_a_bf16_lora_decoder_trains_and_resumes_through_the_worker_loop(tmp_path):
    """bf16 storage and compute, LoRA, gradient caching, bidirectional, an instruction and
    held-out losses through the worker loop: a run killed at step 2 resumes and matches."""
    pytest.importorskip("peft", reason='LoRA needs the peft library: pip install -e ".[large]"')
    from scaling.training.context import LocalWorker
    from scaling.training.outcome import MODEL_FOLDER, TrainOutcome
    from scaling.training.trainer import plan_run
    from scaling.training.worker import run_worker

    raw = {"encoder": {"model": "tiny-llama:hidden=32,layers=2", "pooling": "last", "query_prefix": "",
                       "passage_prefix": "", "max_length": 24, "dtype": "bf16", "lora": {"r": 4},
                       "bidirectional": True, "instruction": "find the answer"},
           "sampler": {"strategy": "hybrid", "batch_size": 8}, "loss": {"chunk_size": 3},
           "optim": {"lr": 1e-2, "warmup_steps": 1, "max_steps": 4},
           "data": {"train": ["parallel-qa:train"], "heldout": "parallel-qa:eval"},
           "run": {"storage_path": str(tmp_path / "runs"), "num_workers": 1, "report_every": 1, "checkpoint_every": 1,
                   "heldout_steps": 1}}
    plan = plan_run(TrainConfig.from_dict(raw))
    straight = LocalWorker(tmp_path / "a")
    run_worker(plan, straight)
    broken = crashed_run(plan, tmp_path / "b", 2)
    run_worker(plan, broken, hooks=[crash_at(2)])
    a, b = (TrainOutcome.read(w.saved[-1]) for w in (straight, broken))
    assert b.metrics["resumed_from"] == 2
    assert [h["loss"] for h in a.history] == pytest.approx([h["loss"] for h in b.history], rel=1e-6)
    assert a.history[-1]["loss"] != a.history[0]["loss"] and np.isfinite(a.metrics["heldout_loss_xy"])
    final = DualEncoder.load(straight.saved[-1] / MODEL_FOLDER)
    assert final.config.dtype == "bf16" and final.config.bidirectional and final.config.instruction
    assert {p.dtype for n, p in final.backbone.named_parameters() if "lora_" not in n} == {torch.bfloat16}
    assert np.isfinite(final.encode(TEXTS, "query")).all()
