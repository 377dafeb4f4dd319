"""The loop every training worker runs, in small parts: build from the plan, restore, step,
report (throughput window and held-out loss), checkpoint.

It reads only the trial plan, and talks to its surroundings through a ``WorkerContext`` (Ray
Train's, or a local one in tests). Batches are never regrouped by length (batch composition is
what the study varies). Metrics go to the context only with checkpoints (Ray 2.60 keeps nothing
else, and each report blocks).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.distributed as dist

from scaling.models.encoder import DualEncoder
from scaling.models.families import family_for
from scaling.models.precision import check_runs_on
from scaling.plan import TrialPlan
from scaling.samplers import make_sampler
from scaling.samplers.counts import tally
from scaling.training import checkpoint as ckpt
from scaling.training import sharding
from scaling.training.context import WorkerContext
from scaling.training.faults import FaultInjection
from scaling.training.heldout import HeldoutSet
from scaling.training.loss import InfoNCELoss
from scaling.training.outcome import MODEL_FOLDER, TrainOutcome
from scaling.training.progress import ProgressWriter, run_location
from scaling.training.step import make_step
from scaling.training.throughput import ThroughputWindow
from scaling.training.tokens import tokenize_corpus

StepHook = Callable[[int, int, int, bool], None]  # (step, rank, world, resumed) before each step


class WorkerRun:
    def __init__(self, plan: TrialPlan, ctx: WorkerContext, hooks: Sequence[StepHook] = ()) -> None:
        cfg = plan.config
        self.cfg, self.ctx, self.plan_location = cfg, ctx, plan.location
        torch.manual_seed(cfg.sampler.seed)
        if cfg.run.torch_threads:
            torch.set_num_threads(cfg.run.torch_threads)
        corpus = plan.read_corpus()
        if cfg.data.languages:  # the study's corpus file serves every language subset: tokenise only this trial's
            corpus = corpus.select_languages(cfg.data.languages)
        self.sampler = make_sampler(cfg.sampler, corpus, cfg.data.languages, cfg.data.source_weights())
        self.family = family_for(cfg.encoder.model)
        check_runs_on(cfg.encoder.dtype, ctx.device)  # torch's capability check, on the worker's own device
        self.sharded = cfg.run.sharding == "fsdp"
        self.encoder: DualEncoder = self.family.build(cfg.encoder)
        if self.sharded:  # before the optimizer exists; the same initial weights are built on every worker
            sharding.shard(self.encoder)  # moves each block to the worker's device as it shards it
        else:
            self.encoder.to(ctx.device)
        self.tokens = tokenize_corpus(self.encoder, corpus)
        self.step_fn = make_step(self.encoder, cfg.optim, InfoNCELoss(cfg.loss), world=ctx.world, device=ctx.device,
                                 compile=cfg.run.compile, sharded=self.sharded)
        if ctx.world > 1 and not self.sharded:  # identical start on every worker
            for p in self.encoder.parameters():
                dist.broadcast(p.data, src=0)
        # sharded, every worker takes part in each forward pass: all compute the held-out loss
        self.heldout = HeldoutSet(self.encoder, plan.read_heldout(), name=str(cfg.data.heldout),
                                  batch_size=cfg.sampler.batch_size, steps=cfg.run.heldout_steps,
                                  temperature=cfg.loss.temperature) if ctx.rank == 0 or self.sharded else None
        self.hooks = list(hooks)
        if cfg.run.fail_at_step is not None:
            self.hooks.append(FaultInjection(cfg.run.fail_at_step, cfg.run.fail_by))
        self.progress = ckpt.Progress()
        self.progress_file = ProgressWriter(plan.location) if ctx.rank == 0 else None

    # ---- parts ----------------------------------------------------------------------------
    def restore(self) -> bool:
        """Resume from the newest readable checkpoint; False when the newest is the final one
        (the run already finished). Unreadable ones are skipped, naming why; none readable is an error."""
        unreadable = []
        for candidate in self.ctx.checkpoints():
            with candidate as folder:
                try:
                    state = ckpt.load_state(folder, self.ctx.device)
                    if state is not None and state.get(sharding.STATE_KEY):  # model and optimizer: this worker's shards
                        sharding.load_resume(folder, self.encoder, self.step_fn.optimizer)
                except Exception as exc:  # truncated or damaged: torch raises several kinds
                    unreadable.append(f"{Path(folder).name}: {type(exc).__name__}: {exc}")
                    print(f"checkpoint {Path(folder).name} is unreadable ({type(exc).__name__}); trying the one before",
                          flush=True)
                    continue
                if state is None:
                    return False
                ckpt.restore_rng(folder, self.ctx.rank, self.ctx.device)
            break
        else:
            if unreadable:
                raise RuntimeError(f"no checkpoint of this run can be read ({'; '.join(unreadable)}); delete the run "
                                   f"folder {run_location(self.plan_location)} to start the trial over")
            return True
        if state.get(sharding.STATE_KEY):
            self.step_fn.scheduler.load_state_dict(state["scheduler"])
        else:
            self.family.load_trainable_state(self.encoder, state["model"])
            self.step_fn.load_state_dict(state)
        self.sampler.load_state_dict(state["sampler"])
        self.progress = ckpt.Progress(state["step"], state["history"], state["batch_counts"], state["step"],
                                      state.get("sampling", {}))
        if self.progress_file is not None:  # the file goes on from the records so far
            self.progress_file.lines = [json.dumps(h) for h in self.progress.history]
        return True

    def _report(self, window: ThroughputWindow, reporting_s: float, last: bool) -> dict:
        """One curve record; rank 0 adds held-out losses every ``heldout_every`` steps and at the end."""
        step, run = self.progress.step, self.cfg.run
        record = window.record(step, self.step_fn.lr, reporting_s)
        in_curve = bool(run.heldout_every) and step % run.heldout_every == 0
        held = self.heldout.losses(self.encoder, self.ctx.device) if self.heldout and (in_curve or last) else {}
        if in_curve:
            record.update(HeldoutSet.curve_values(held))
        self.progress.history.append(record)
        if self.progress_file is not None:
            self.progress_file.add(record)
        return held

    def _checkpoint(self, last: bool, held: dict) -> None:
        p = self.progress
        metrics = {"step": p.step, "loss": p.history[-1]["loss"] if p.history else math.nan,
                   "resumed_from": p.resumed_from if p.resumed_from is not None else -1}
        with tempfile.TemporaryDirectory() as tmp:
            folder = None
            if not last:  # every worker's RNG (Ray merges the workers' files into one checkpoint)
                ckpt.save_rng(Path(tmp), self.ctx.rank, self.ctx.device)
                if self.sharded:  # and every worker's shards
                    sharding.save_resume(Path(tmp), self.encoder, self.step_fn.optimizer)
                folder = Path(tmp)
            final = sharding.full_state(self.encoder) if last and self.sharded else None  # collective
            if self.ctx.rank == 0:
                if last:
                    metrics.update(held)  # computed at this (last) step's report
                    model = self.encoder if final is None else sharding.unsharded(self.family, self.cfg.encoder, final)
                    self.family.save(model, Path(tmp) / MODEL_FOLDER)
                    TrainOutcome(metrics, p.history, p.batch_counts, model.parameter_counts(),
                                 p.sampling).write(Path(tmp))
                elif self.sharded:  # the rest of the resume state; model and optimizer are in the shards
                    ckpt.save_state(Path(tmp), model={}, step_state={"scheduler": self.step_fn.scheduler.state_dict(),
                                                                     sharding.STATE_KEY: True},
                                    sampler=self.sampler.state_dict(), progress=p)
                else:  # resume state; the final checkpoint holds only the model and the outcome
                    ckpt.save_state(Path(tmp), model=self.family.trainable_state(self.encoder),
                                    step_state=self.step_fn.state_dict(), sampler=self.sampler.state_dict(), progress=p)
                folder = Path(tmp)
            self.ctx.report(metrics, folder)

    # ---- the loop -------------------------------------------------------------------------
    def run(self) -> None:
        if not self.restore():
            return
        cfg, ctx, p = self.cfg, self.ctx, self.progress
        # from_pretrained returns the backbone in eval mode: without this, training runs without dropout
        self.encoder.train()
        window, reporting = ThroughputWindow(), 0.0  # reporting: seconds in reports and checkpoints
        stream = self._batches()
        resumed = p.resumed_from is not None
        while p.step < cfg.optim.max_steps:
            for hook in self.hooks:
                hook(p.step, ctx.rank, ctx.world, resumed)
            start = time.perf_counter()
            batch = next(stream)
            local = batch.slice(ctx.rank, ctx.world)
            q_ids, q_mask = self.tokens.batch(local.query_rows, "query")
            p_ids, p_mask = self.tokens.batch(local.passage_rows, "passage")
            n_tokens = int(q_mask.sum() + p_mask.sum())  # counted on the CPU copy: no device sync
            q_ids, q_mask, p_ids, p_mask = (t.to(ctx.device) for t in (q_ids, q_mask, p_ids, p_mask))
            result = self.step_fn(q_ids, q_mask, p_ids, p_mask, start)
            p.step += 1
            key = f"{batch.kind}:{'+'.join(batch.languages) if batch.kind != 'xy' else 'mixed'}"
            p.batch_counts[key] = p.batch_counts.get(key, 0) + 1
            tally(p.sampling, batch, self.sampler.index)
            window.add(result.loss, result.seconds, len(batch.query_rows), n_tokens * ctx.world)

            last = p.step == cfg.optim.max_steps
            t_report = time.perf_counter()
            held = {}
            if p.step % cfg.run.report_every == 0 or last:
                held = self._report(window, reporting, last)
                window, reporting = ThroughputWindow(), 0.0
            if p.step % cfg.run.checkpoint_every == 0 or last:
                self._checkpoint(last, held)
            reporting += time.perf_counter() - t_report

    def _batches(self):
        while True:
            yield from self.sampler


def run_worker(plan: TrialPlan, ctx: WorkerContext, hooks: Sequence[StepHook] = ()) -> None:
    WorkerRun(plan, ctx, hooks).run()
