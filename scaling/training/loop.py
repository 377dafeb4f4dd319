"""The training function each Ray Train worker runs (thin: build, loop, checkpoint).

Rows are tokenised once before the loop; each batch is padded only to its own longest sequence,
and the encoder's block linears skip even that padding (``encoder.skip_padding``); batches are
never regrouped by length (batch composition is what the study varies). Queries and
passages take separate forward passes, so gradients are averaged over workers explicitly after
backward (one flat all-reduce) instead of through DDP hooks, which allow one forward per backward.
Metrics go to ``ray.train.report`` only with checkpoints (Ray 2.60 keeps nothing else, and each
report blocks); the full training curve travels inside every checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from scaling.data import ParallelCorpus, check_overlap, drop_overlaps, load_benchmark, load_corpus
from scaling.models.encoder import DualEncoder, pad_batch
from scaling.samplers import CorpusIndex, SamplerConfig, make_sampler
from scaling.training.config import TrainConfig
from scaling.training.loss import InfoNCELoss, LossConfig


@dataclass
class TokenizedCorpus:
    queries: list[list[int]]
    passages: list[list[int]]
    pad_id: int

    def batch(self, rows: np.ndarray, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        source = self.queries if which == "query" else self.passages
        return pad_batch([source[int(r)] for r in rows], self.pad_id)


def tokenize_corpus(encoder: DualEncoder, corpus: ParallelCorpus) -> TokenizedCorpus:
    tok, cfg = encoder.tokenizer, encoder.config
    q = tok([cfg.query_prefix + t for t in corpus.table.column("query").to_pylist()], truncation=True,
            max_length=cfg.max_length)["input_ids"]
    p = tok([cfg.passage_prefix + t for t in corpus.table.column("passage").to_pylist()], truncation=True,
            max_length=cfg.max_length)["input_ids"]
    return TokenizedCorpus(q, p, tok.pad_token_id or 0)


def load_training_corpus(cfg: TrainConfig, dropped: dict[str, int] | None = None) -> ParallelCorpus:
    """The training corpora, without groups that overlap ``data.exclude_overlap_with`` benchmarks
    (counts of dropped groups per benchmark go into ``dropped``)."""
    corpora = [load_corpus(s, data_dir=cfg.data.data_dir, passage=cfg.data.passage) for s in cfg.data.train]
    corpus = corpora[0] if len(corpora) == 1 else ParallelCorpus.concat(corpora)
    for source in cfg.data.exclude_overlap_with:
        bench = load_benchmark(source, data_dir=cfg.data.data_dir)
        for b in bench.values() if isinstance(bench, dict) else [bench]:
            corpus, n = drop_overlaps(corpus, check_overlap(corpus, b))
            if dropped is not None:
                dropped[b.name] = dropped.get(b.name, 0) + n
    return corpus


def linear_schedule(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))
    return factor


def _average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    grads = [p.grad for p in params if p.grad is not None]
    if world == 1 or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


class HeldoutSet:
    """Fixed held-out batches (X-X and X-Y, seed 12345), tokenised once, for the held-out
    contrastive loss: a smooth quantity for scaling fits, where ranking metrics are step-like."""

    def __init__(self, encoder: DualEncoder, cfg: TrainConfig):
        self.batches: dict[str, list] = {}
        self.notes: dict[str, str | int] = {}
        self.temperature = cfg.loss.temperature
        if not cfg.data.heldout:
            return
        corpus = load_corpus(cfg.data.heldout, data_dir=cfg.data.data_dir, passage=cfg.data.passage)
        self.tokens = tokenize_corpus(encoder, corpus)
        index = CorpusIndex(corpus)
        smallest_language = min((len(g) for g in index.mono_groups.values() if len(g)), default=0)
        available = {"xx": smallest_language, "xy": len(index.multi_groups)}
        for kind in ("xx", "xy"):
            batch_size = min(cfg.sampler.batch_size, available[kind])
            if batch_size < 2:
                self.notes[f"heldout_loss_{kind}_skipped"] = f"{cfg.data.heldout} has no {kind} pairs"
                continue
            self.batches[kind] = list(make_sampler(SamplerConfig(strategy=kind, batch_size=batch_size, seed=12345,
                                                                 steps_per_epoch=cfg.run.heldout_steps), corpus))
            self.notes[f"heldout_batch_{kind}"] = batch_size

    @torch.no_grad()
    def losses(self, encoder: DualEncoder, device: torch.device) -> dict[str, float | str]:
        """Mean loss per batch kind, in eval mode (no dropout); the RNG state is left untouched."""
        loss_fn = InfoNCELoss(LossConfig(self.temperature, gather=False))
        out: dict[str, float | str] = dict(self.notes)
        was_training = encoder.training
        encoder.eval()
        for kind, batches in self.batches.items():
            values = []
            for batch in batches:
                q = encoder(*(t.to(device) for t in self.tokens.batch(batch.query_rows, "query")))
                p = encoder(*(t.to(device) for t in self.tokens.batch(batch.passage_rows, "passage")))
                values.append(float(loss_fn(q.float(), p.float())))
            out[f"heldout_loss_{kind}"] = float(np.mean(values))
        encoder.train(was_training)
        return out


def train_loop_per_worker(raw_config: dict) -> None:
    import ray.train
    import ray.train.torch

    cfg = TrainConfig.from_dict(raw_config)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    torch.manual_seed(cfg.sampler.seed)
    if cfg.run.torch_threads:
        torch.set_num_threads(cfg.run.torch_threads)

    corpus = load_training_corpus(cfg)
    sampler = make_sampler(cfg.sampler, corpus, cfg.data.languages)
    encoder = DualEncoder.from_config(cfg.encoder).to(device)
    tokens = tokenize_corpus(encoder, corpus)
    params = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                                  fused=cfg.optim.fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_schedule(cfg.optim.warmup_steps, cfg.optim.max_steps))
    loss_fn = InfoNCELoss(cfg.loss)
    if world > 1:  # identical start on every worker
        for p in encoder.parameters():
            dist.broadcast(p.data, src=0)

    heldout = HeldoutSet(encoder, cfg) if rank == 0 else None
    step, history, counts, resumed_from = 0, [], {}, None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            if not (Path(d) / "state.pt").is_file():
                return  # the final checkpoint (model only): this run already finished
            state = torch.load(Path(d) / "state.pt", map_location=device, weights_only=False)
            rng = Path(d) / f"rng-{rank}.pt"
            if rng.is_file():  # this worker's dropout RNG: a resumed run repeats the same masks
                saved = torch.load(rng, weights_only=False)
                torch.set_rng_state(saved["cpu"])
                if saved["cuda"] is not None and device.type == "cuda":
                    torch.cuda.set_rng_state(saved["cuda"], device)
        encoder.backbone.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["sampler"])
        step, history, counts = state["step"], state["history"], state["batch_counts"]
        resumed_from = step

    def batches():
        while True:
            yield from sampler

    # from_pretrained returns the backbone in eval mode: without this, training runs without dropout
    encoder.train()
    use_bf16 = device.type == "cuda"
    forward = torch.compile(encoder, dynamic=True) if cfg.run.compile else encoder
    phases = ("data", "forward", "backward", "optimizer")
    empty = lambda: {"loss": [], "time": 0.0, "samples": 0, "tokens": 0, **{p: 0.0 for p in phases}}  # noqa: E731
    window = empty()
    reporting = 0.0  # seconds in held-out losses, checkpoints and ray.train.report since the last record
    stream = batches()
    while step < cfg.optim.max_steps:
        if cfg.run.fail_at_step is not None and step == cfg.run.fail_at_step and resumed_from is None:
            if cfg.run.fail_by == "kill" and rank == world - 1:
                os.kill(os.getpid(), signal.SIGKILL)  # a worker dies without a word, as on a lost node
            if cfg.run.fail_by == "raise":
                raise RuntimeError(f"simulated worker failure at step {step} (run.fail_at_step)")
        start = time.perf_counter()
        batch = next(stream)
        local = batch.slice(rank, world)
        q_ids, q_mask = tokens.batch(local.query_rows, "query")
        p_ids, p_mask = tokens.batch(local.passage_rows, "passage")
        n_tokens = int(q_mask.sum() + p_mask.sum())  # counted on the CPU copy: no device sync
        q_ids, q_mask, p_ids, p_mask = (t.to(device) for t in (q_ids, q_mask, p_ids, p_mask))
        t_data = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
            q, p = forward(q_ids, q_mask), forward(p_ids, p_mask)
        loss = loss_fn(q.float(), p.float())
        t_forward = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        _average_gradients(params, world)
        if cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
        t_backward = time.perf_counter()
        optimizer.step()
        scheduler.step()
        t_end = time.perf_counter()
        for name, seconds in zip(phases, (t_data - start, t_forward - t_data, t_backward - t_forward, t_end - t_backward)):
            window[name] += seconds
        step += 1
        key = f"{batch.kind}:{'+'.join(batch.languages) if batch.kind != 'xy' else 'mixed'}"
        counts[key] = counts.get(key, 0) + 1
        window["loss"].append(loss.detach())  # read at the report: no device sync per step on GPU
        window["time"] += t_end - start
        window["samples"] += len(batch.query_rows)
        window["tokens"] += n_tokens * world

        last = step == cfg.optim.max_steps
        t_report = time.perf_counter()
        if step % cfg.run.report_every == 0 or last:
            record = {"step": step, "loss": float(torch.stack(window["loss"]).mean()), "lr": scheduler.get_last_lr()[0],
                      "samples_per_s": window["samples"] / window["time"], "tokens_per_s": window["tokens"] / window["time"],
                      "step_time_s": window["time"] / len(window["loss"]),
                      **{f"{p}_s": window[p] / len(window["loss"]) for p in phases}, "reporting_s": reporting}
            reporting = 0.0
            # rank 0 only, once per step: in the curve every heldout_every steps, and for the final metrics
            in_curve = bool(cfg.run.heldout_every) and step % cfg.run.heldout_every == 0
            held = heldout.losses(encoder, device) if rank == 0 and (in_curve or last) else {}
            if in_curve:
                record.update({k: v for k, v in held.items() if k.startswith("heldout_loss")})
            history.append(record)
            window = empty()
            if rank == 0:
                print(json.dumps({"progress": record}), flush=True)
        if step % cfg.run.checkpoint_every == 0 or last:
            metrics = {"step": step, "loss": history[-1]["loss"] if history else math.nan,
                       "resumed_from": resumed_from if resumed_from is not None else -1}
            with tempfile.TemporaryDirectory() as tmp:
                ckpt = None
                if not last:  # every worker's RNG (Ray merges the workers' files into one checkpoint)
                    torch.save({"cpu": torch.get_rng_state(),
                                "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None},
                               Path(tmp) / f"rng-{rank}.pt")
                    ckpt = ray.train.Checkpoint.from_directory(tmp)
                if rank == 0:
                    if last:
                        metrics.update(held)  # computed at this (last) step's report
                        encoder.save(Path(tmp) / "model")
                    else:  # resume state; the final checkpoint holds only the model
                        torch.save({"model": encoder.backbone.state_dict(), "optimizer": optimizer.state_dict(),
                                    "scheduler": scheduler.state_dict(), "sampler": sampler.state_dict(),
                                    "step": step, "history": history, "batch_counts": counts}, Path(tmp) / "state.pt")
                    (Path(tmp) / "progress.json").write_text(json.dumps(
                        {"metrics": metrics, "history": history, "batch_counts": counts,
                         "parameters": encoder.parameter_counts()}, indent=1))
                    ckpt = ray.train.Checkpoint.from_directory(tmp)
                ray.train.report(metrics, checkpoint=ckpt)
        reporting += time.perf_counter() - t_report
