"""``run.sharding: fsdp`` (FSDP2 per transformer block) on 2 gloo CPU ranks: one step's loss,
gradients and updated weights equal one process stepping on the whole batch (also with LoRA,
gradient checkpointing and gradient caching together); the consolidated final folder loads with
the family's loader and encodes as the sharded model did; a Ray Train run that fails at a step
resumes from its DCP checkpoint and ends with the weights of an uninterrupted run; bad settings
are refused before Ray starts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from scaling.models.encoder import DualEncoder, EncoderConfig, pad_batch
from scaling.models.lora import LoraSettings
from scaling.training.config import OptimConfig, RunConfig, TrainConfig
from scaling.training.loss import InfoNCELoss, LossConfig

pytest.importorskip("peft")

WORDS = "bees rivers stars ice wheat glass salt iron clouds owls maple sand".split()
QUERIES = [f"question number {i} about {w}" for i, w in enumerate(WORDS)]
PASSAGES = [f"the answer about {w} is in passage {i} with more words" for i, w in enumerate(WORDS)]
ENCODE = ["owls and maple", "a passage about salt and iron and glass"]
DEVICE = torch.device("cpu")
GRAD_CLIP = 1e-3  # small enough to bind: clipping on sharded (DTensor) gradients is exercised
LR, WEIGHT_DECAY, ADAMW_EPS = 1e-2, OptimConfig().weight_decay, 1e-8  # the step's AdamW (torch's default eps)
CASES = {
    "plain": {},
    "checkpointing+chunks": {"gradient_checkpointing": True, "chunk_size": 2},
    "lora+checkpointing+chunks": {"lora": LoraSettings(r=4, alpha=8.0), "gradient_checkpointing": True,
                                  "chunk_size": 2},
    # the large-model setting: a bf16 base (frozen) beside an fp32 adapter in one FSDP group
    "lora+bf16+checkpointing+chunks": {"lora": LoraSettings(r=4, alpha=8.0), "gradient_checkpointing": True,
                                       "chunk_size": 2, "dtype": "bf16"},
}


def _config(init: Path, case: dict) -> EncoderConfig:
    return EncoderConfig(model=str(init), pooling="last", query_prefix="", passage_prefix="", max_length=32,
                         lora=case.get("lora"), gradient_checkpointing=case.get("gradient_checkpointing", False),
                         dtype=case.get("dtype", "fp32"))


def _build(init: Path, case: dict):
    """The encoder and its step, as the worker builds them (LoRA's initialisation from the seed)."""
    from scaling.models.families import family_for

    torch.manual_seed(0)
    family = family_for(str(init))
    encoder = family.build(_config(init, case))
    with torch.no_grad():  # peft starts lora_B at zero, which leaves lora_A without gradient in a first step
        for n, p in encoder.backbone.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.1)
    return family, encoder


def _step(encoder, case: dict, world: int, sharded: bool):
    from scaling.training.step import make_step

    return make_step(encoder, OptimConfig(lr=LR, warmup_steps=0, max_steps=5, grad_clip=GRAD_CLIP),
                     InfoNCELoss(LossConfig(chunk_size=case.get("chunk_size"))), world=world, device=DEVICE,
                     sharded=sharded)


def _batch(encoder, rows):
    q = encoder.tokenizer([QUERIES[i] for i in rows], truncation=True, max_length=32)["input_ids"]
    p = encoder.tokenizer([PASSAGES[i] for i in rows], truncation=True, max_length=32)["input_ids"]
    return (*pad_batch(q, encoder.pad_id), *pad_batch(p, encoder.pad_id))


@torch.no_grad()
def _embed(encoder):
    """What ``DualEncoder.encode`` computes, one text at a time (its ``.to(device)`` cannot move an
    FSDP module: torch raises "Couldn't swap Embedding.weight")."""
    was = encoder.training
    encoder.eval()
    rows = []
    for text in ENCODE:
        ids, mask = pad_batch([encoder.tokenizer([text], truncation=True, max_length=32)["input_ids"][0]], encoder.pad_id)
        rows.append(encoder(ids, mask).float())
    encoder.train(was)
    return torch.cat(rows).numpy()


def _full(t: torch.Tensor) -> torch.Tensor:
    return (t.full_tensor() if hasattr(t, "full_tensor") else t).detach().clone()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sharded_worker(rank, world, port, init, out):
    from scaling.training import sharding

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    results = {}
    for name, case in CASES.items():
        family, encoder = _build(Path(init), case)
        sharding.shard(encoder)
        step = _step(encoder, case, world, sharded=True)
        rows = range(rank * 6, (rank + 1) * 6)
        result = step(*_batch(encoder, rows), 0.0)
        loss = result.loss.clone()
        dist.all_reduce(loss)
        grads = {n: _full(p.grad) for n, p in encoder.backbone.named_parameters() if p.grad is not None}
        weights = {n: _full(p) for n, p in encoder.backbone.named_parameters()}
        encoded = _embed(encoder)  # on every rank: each forward gathers the shards
        final = sharding.full_state(encoder)
        if rank == 0:
            folder = Path(out) / name / "model"
            family.save(sharding.unsharded(family, _config(Path(init), case), final), folder)
            results[name] = {"loss": float(loss) / world, "grads": grads, "weights": weights, "encoded": encoded,
                             "sharded_types": sorted({type(p).__name__ for p in encoder.parameters()}),
                             "full_keys": sorted(final)}
        else:
            results[name] = {"full_keys": sorted(final)}
    torch.save(results, Path(out) / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One spawn of 2 gloo ranks runs every case; the single-process references run here."""
    from scaling.models.tiny import tiny_decoder

    root = tmp_path_factory.mktemp("fsdp")
    init = tiny_decoder(QUERIES + PASSAGES, hidden=32, layers=3, heads=2, seed=5, pooling="last", query_prefix="",
                        passage_prefix="", max_length=32).save(root / "init")
    mp.start_processes(_sharded_worker, args=(2, _free_port(), str(init), str(root)), nprocs=2, start_method="spawn")
    got = torch.load(root / "rank0.pt", weights_only=False)
    other = torch.load(root / "rank1.pt", weights_only=False)
    references = {}
    for name, case in CASES.items():
        _, encoder = _build(init, case)
        step = _step(encoder, case, 1, sharded=False)
        initial = {n: p.detach().clone() for n, p in encoder.backbone.named_parameters()}
        result = step(*_batch(encoder, range(12)), 0.0)
        references[name] = {"loss": float(result.loss), "initial": initial,
                            "grads": {n: p.grad.clone() for n, p in encoder.backbone.named_parameters()
                                      if p.grad is not None},
                            "weights": {n: p.detach().clone() for n, p in encoder.backbone.named_parameters()},
                            "encoded": _embed(encoder)}
    return root, got, other, references


def _adamw_first_update(g: torch.Tensor) -> torch.Tensor:
    """AdamW's first step without weight decay, per unit of lr: m_hat / (sqrt(v_hat) + eps) = g / (|g| + eps)."""
    return g / (g.abs() + ADAMW_EPS)


def _same_first_adamw_step(run: dict, ref: dict, name: str) -> None:
    """The sharded step's weights are the reference weights moved by exactly what the two runs'
    gradient differences explain. AdamW's first update g / (|g| + eps) is ill-conditioned where
    |g| is near eps (1e-8), and the binding clip of 1e-3 puts many gradients there: gradients
    equal to 1e-4 relative then move the update by up to a quarter of lr, by the CPU's rounding
    (CI saw it on one weight). So the comparison adds lr * (u(g_sharded) - u(g_reference)) to the
    reference, and first checks that the reference itself is w0 (1 - lr wd) - lr u(g)."""
    want, initial, grad = ref["weights"][name], ref["initial"][name], ref["grads"].get(name)
    got = run["weights"][name]
    if grad is None:  # frozen: neither run may move it
        torch.testing.assert_close(got, want, rtol=0, atol=0, msg=name)
        return
    by_hand = initial * (1 - LR * WEIGHT_DECAY) - LR * _adamw_first_update(grad)
    torch.testing.assert_close(want, by_hand, rtol=1e-5, atol=1e-6, msg=f"reference AdamW step of {name}")
    explained = want - LR * (_adamw_first_update(run["grads"][name]) - _adamw_first_update(grad))
    torch.testing.assert_close(got, explained, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("name", list(CASES))
def test_one_sharded_step_equals_the_single_process_full_batch_step(runs, name):
    _, got, _, references = runs
    mine, ref = got[name], references[name]
    assert mine["sharded_types"] == ["DTensor"]  # every parameter really is sharded
    assert mine["loss"] == pytest.approx(ref["loss"], rel=1e-5)
    assert mine["grads"].keys() == ref["grads"].keys() and len(ref["grads"]) >= 6
    clipped = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in ref["grads"].values()]))
    assert float(clipped) == pytest.approx(GRAD_CLIP, rel=1e-3)  # the clip bound the step
    for n in ref["grads"]:
        torch.testing.assert_close(mine["grads"][n], ref["grads"][n], rtol=1e-4, atol=1e-8, msg=n)
    for n in ref["weights"]:  # AdamW's first step moves each trained weight by about lr (1e-2)
        _same_first_adamw_step(mine, ref, n)
        moved = float((ref["weights"][n] - ref["initial"][n]).abs().max())
        assert moved > 5e-3 if n in ref["grads"] else moved == 0, n


def test_lora_under_fsdp_trains_only_the_adapter(runs):
    _, got, _, references = runs
    grads = got["lora+checkpointing+chunks"]["grads"]
    assert grads and all("lora_" in n for n in grads)
    assert any("lora_" not in n for n in references["lora+checkpointing+chunks"]["weights"])


@pytest.mark.parametrize("name", list(CASES))
def test_the_consolidated_folder_loads_and_encodes_as_the_sharded_model(runs, name):
    root, got, other, references = runs
    assert other[name]["full_keys"] == []  # only rank 0 receives the full state (cpu_offload)
    model = DualEncoder.load(root / name / "model")
    assert model.config.pooling == "last" and type(model.backbone.get_base_model()
                                                     if name.startswith("lora") else model.backbone).__name__ == "LlamaModel"
    encoded = model.encode(ENCODE, "query", batch_size=1)
    torch.testing.assert_close(torch.from_numpy(encoded), torch.from_numpy(got[name]["encoded"]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.from_numpy(encoded), torch.from_numpy(references[name]["encoded"]),
                               rtol=1e-4, atol=1e-6)
    if name.startswith("lora"):  # what evaluation reads today: the adapter and a reference to its base
        assert (root / name / "model" / "adapter_model.safetensors").is_file()
        assert not (root / name / "model" / "model.safetensors").exists()


# ---- bad input, before Ray --------------------------------------------------------------------

def test_bad_sharding_settings_are_named():
    with pytest.raises(ValueError, match="run.sharding must be one of"):
        RunConfig(sharding="deepspeed")
    with pytest.raises(ValueError, match="run.sharding: fsdp .* run.num_workers is 1"):
        TrainConfig.from_dict({"run": {"sharding": "fsdp", "num_workers": 1}})
    assert RunConfig(sharding="fsdp", num_workers=2).sharding == "fsdp" and RunConfig().sharding == "none"


def test_a_model_without_findable_blocks_is_refused_for_fsdp_before_ray(tmp_path):
    from transformers import DistilBertConfig, DistilBertModel

    from scaling.models.tiny import tiny_tokenizer
    from scaling.training.trainer import plan_run

    folder = tmp_path / "distilbert"  # its blocks live at transformer.layer
    DistilBertModel(DistilBertConfig(vocab_size=60, dim=16, n_layers=1, n_heads=2, hidden_dim=32)).save_pretrained(folder)
    tiny_tokenizer(QUERIES).save_pretrained(folder)
    cfg = TrainConfig.from_dict({"encoder": {"model": str(folder)}, "sampler": {"batch_size": 4},
                                 "run": {"storage_path": str(tmp_path / "runs"), "sharding": "fsdp", "num_workers": 2}})
    with pytest.raises(ValueError, match="run.sharding: fsdp needs the transformer blocks of .*distilbert"):
        plan_run(cfg)
    plan_run(cfg.with_overrides(["run.sharding=none"]))  # the same model plans without sharding


# ---- the worker loop on 2 ranks: DCP resume state, held-out loss on every rank, final folder --------

LOOP = {"encoder": {"model": "tiny-llama:hidden=32,layers=2", "pooling": "last", "query_prefix": "",
                    "passage_prefix": "", "max_length": 24},
        "sampler": {"strategy": "hybrid", "batch_size": 8, "seed": 3},
        "optim": {"lr": 1e-2, "warmup_steps": 1, "max_steps": 5},
        "data": {"train": ["parallel-qa:train"], "heldout": "parallel-qa:eval"},
        "run": {"num_workers": 2, "sharding": "fsdp", "report_every": 1, "checkpoint_every": 2, "heldout_steps": 1,
                "heldout_every": 2}}
LOOP_CASES = {"full": {}, "lora": {"lora": {"r": 4, "target_modules": ["q_proj", "v_proj", "down_proj"]}}}


def _loop_worker(rank, world, port, plans, root):
    from scaling.plan import TrialPlan
    from scaling.training.context import LocalWorker
    from scaling.training.worker import run_worker

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    for name, runs in plans.items():
        for label, location in runs.items():
            ctx = LocalWorker(Path(root) / name / label, rank, world)
            try:  # run.fail_at_step raises on every worker; then the run restarts, as Ray Train restarts it
                run_worker(TrialPlan.read(location), ctx)
            except RuntimeError as exc:
                assert label == "broken" and "simulated worker failure" in str(exc)
                run_worker(TrialPlan.read(location), ctx)
            dist.barrier()
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def loops(tmp_path_factory):
    from scaling.training.trainer import plan_run

    root = tmp_path_factory.mktemp("fsdp-loop")
    plans = {}
    for name, extra in LOOP_CASES.items():
        cfg = TrainConfig.from_dict({**LOOP, "encoder": {**LOOP["encoder"], **extra},
                                     "run": {**LOOP["run"], "storage_path": str(root / "runs" / name)}})
        plans[name] = {"straight": plan_run(cfg).location,
                       "broken": plan_run(cfg.with_overrides(["run.fail_at_step=3"])).location}
        if name == "full":  # the same run replicated (all-reduced gradients), for reference
            plans[name]["replicated"] = plan_run(cfg.with_overrides(["run.sharding=none"])).location
    mp.start_processes(_loop_worker, args=(2, _free_port(), plans, str(root)), nprocs=2, start_method="spawn")
    return root


def _checkpoints(folder: Path) -> list[Path]:
    return sorted(folder.glob("checkpoint_*"))


def _final_weights(folder: Path) -> dict:
    from scaling.training.outcome import MODEL_FOLDER

    return DualEncoder.load(_checkpoints(folder)[-1] / MODEL_FOLDER).backbone.state_dict()


def test_a_sharded_run_through_the_worker_loop_equals_the_replicated_run(loops):
    from scaling.training.outcome import TrainOutcome

    sharded, replicated = (TrainOutcome.read(_checkpoints(loops / "full" / k)[-1]) for k in ("straight", "replicated"))
    assert [h["loss"] for h in sharded.history] == pytest.approx([h["loss"] for h in replicated.history], rel=1e-4)
    assert sharded.metrics["heldout_loss_xy"] == pytest.approx(replicated.metrics["heldout_loss_xy"], rel=1e-4)
    assert sharded.metrics["heldout_loss_xx"] == pytest.approx(replicated.metrics["heldout_loss_xx"], rel=1e-4)
    assert sharded.parameters == replicated.parameters
    w1, w2 = _final_weights(loops / "full" / "straight"), _final_weights(loops / "full" / "replicated")
    assert w1.keys() == w2.keys()
    for key in w1:
        torch.testing.assert_close(w1[key], w2[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.parametrize("name", list(LOOP_CASES))
def test_a_sharded_run_failing_at_a_step_resumes_from_its_dcp_checkpoint(loops, name):
    import torch.distributed.checkpoint as dcp

    from scaling.training.outcome import MODEL_FOLDER, TrainOutcome
    from scaling.training.sharding import DCP_FOLDER

    straight, broken = _checkpoints(loops / name / "straight"), _checkpoints(loops / name / "broken")
    a, b = TrainOutcome.read(straight[-1]), TrainOutcome.read(broken[-1])
    assert a.metrics["resumed_from"] == -1 and b.metrics["resumed_from"] == 2
    assert [h["step"] for h in b.history] == [1, 2, 3, 4, 5]
    assert [h["loss"] for h in a.history] == pytest.approx([h["loss"] for h in b.history], rel=1e-5)
    assert a.history[-1]["loss"] != a.history[0]["loss"]
    # the held-out loss (every rank takes part in its forward passes) in the curve and at the end
    assert [h["step"] for h in a.history if "heldout_loss_xy" in h] == [2, 4]
    assert a.metrics["heldout_loss_xy"] == pytest.approx(b.metrics["heldout_loss_xy"], rel=1e-5)
    # the resume state: both ranks' shards, their RNG, no model or optimizer in state.pt
    resume = straight[0]
    state = torch.load(resume / "state.pt", weights_only=False)
    assert state["model"] == {} and "optimizer" not in state and state["step"] == 2
    assert {p.name for p in (resume / DCP_FOLDER).glob("*.distcp")} == {"__0_0.distcp", "__1_0.distcp"}
    assert (resume / "rng-0.pt").is_file() and (resume / "rng-1.pt").is_file()
    keys = dcp.FileSystemReader(str(resume / DCP_FOLDER)).read_metadata().state_dict_metadata
    model_keys = [k for k in keys if k.startswith("model.")]
    assert model_keys and any(k.startswith("optimizer.state.") for k in keys)
    if name == "lora":  # the adapter and its optimizer only
        assert all("lora_" in k for k in model_keys)
    # the final folders: the family's format, equal weights
    first, second = (DualEncoder.load(c / MODEL_FOLDER) for c in (straight[-1], broken[-1]))
    if name == "lora":
        assert (straight[-1] / MODEL_FOLDER / "adapter_model.safetensors").is_file()
        assert a.parameters["adapter"] == a.parameters["trainable"] < a.parameters["total"]
    else:
        assert a.parameters["trainable"] == a.parameters["total"]
    w1, w2 = first.backbone.state_dict(), second.backbone.state_dict()
    assert w1.keys() == w2.keys()
    for key in w1:
        torch.testing.assert_close(w1[key], w2[key], rtol=1e-5, atol=1e-6, msg=key)


# ---- the memory planner -------------------------------------------------------------------------

def test_the_planner_divides_weights_gradients_and_optimizer_states_by_the_workers():
    from scaling.plan.memory import GB, ModelShape, estimate, lever_for

    shape = ModelShape(total=1_000_000, embedding=200_000, hidden=64, layers=4, heads=4)
    base = TrainConfig.from_dict({"sampler": {"batch_size": 4}, "encoder": {"max_length": 8},
                                  "run": {"num_workers": 4}})
    fsdp = base.with_overrides(["run.sharding=fsdp"])
    whole, sharded = estimate(shape, base), estimate(shape, fsdp)
    assert (whole.weights, whole.gradients, whole.optimizer) == (4e6, 4e6, 8e6)  # fp32 weights, grads, 2 moments
    block = 800_000 / 4  # non-embedding parameters per block; two are gathered at a time
    assert sharded.weights == 4e6 / 4 + 2 * block * 4
    assert sharded.gradients == 4e6 / 4 + 2 * 4e6 / 4
    assert sharded.optimizer == 8e6 / 4 and sharded.activations == whole.activations
    budget = (sharded.total + whole.total) / 2 / GB  # chunks or checkpointing cannot close this gap; sharding does
    assert lever_for(base, shape, budget) == "set run.sharding: fsdp"
    alone = base.with_overrides(["run.num_workers=1"])
    assert "run.num_workers >= 2 and run.sharding: fsdp" in lever_for(alone, shape, budget / 4)
    assert "more than 4 workers" in lever_for(fsdp, shape, 1e6 / GB)  # below the sharded weights alone
