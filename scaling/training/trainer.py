"""Run one planned training on Ray Train (TorchTrainer, Train V2).

``plan_run`` turns a training configuration into a trial plan (every check runs there, on the
driver, before any worker starts); ``fit`` trains a plan. ``run.storage_path`` may be a cloud
URI (``s3://bucket/runs``): Ray Train then keeps checkpoints and the plan there, which a
multi-node cluster needs, and the driver keeps its own files (a tiny model's initial weights,
the final model it evaluates) in a local scratch folder under the system temp directory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import pyarrow.fs as pafs

from scaling.plan import PlanBuilder, TrialPlan
from scaling.records import HELDOUT_COLUMNS
from scaling.store import attempt_name
from scaling.training.config import TrainConfig
from scaling.training.loop import train_loop_per_worker
from scaling.training.outcome import MODEL_FOLDER, TrainOutcome
from scaling.training.progress import ProgressWatcher, run_location


@dataclass
class TrainResult:
    model_dir: Path  # Hugging Face folder + encoder.json of the final model (local)
    outcome: TrainOutcome
    run_dir: Path  # local: the run's configuration and final model
    checkpoint: object  # Ray Train's final checkpoint (the model on the run's storage)
    checkpoints: tuple[str, pafs.FileSystem] | None = None  # where Ray Train wrote its checkpoints

    @property
    def metrics(self) -> dict:
        return self.outcome.metrics

    @property
    def history(self) -> list[dict]:
        return self.outcome.history

    @property
    def batch_counts(self) -> dict:
        return self.outcome.batch_counts

    @property
    def sampling(self) -> dict:
        return self.outcome.sampling

    @property
    def parameters(self) -> dict:
        return self.outcome.parameters

    def remove_checkpoints(self) -> None:
        """Drop the resume checkpoints (GBs for a pretrained model) once results are recorded."""
        if self.checkpoints is None:
            return
        path, fs = self.checkpoints
        for info in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
            if info.type == pafs.FileType.Directory and info.base_name.startswith("checkpoint_"):
                fs.delete_dir(info.path)


def new_run(cfg: TrainConfig) -> tuple[TrainConfig, Path, str]:
    """A fresh run folder (Ray would reuse an old run's checkpoints): the configuration naming it,
    the local run folder, and the run's location on its storage (a path or a URI)."""
    name = attempt_name(cfg.run.name)
    if "://" in cfg.run.storage_path:
        run_dir = Path(tempfile.gettempdir()) / "hybrid-scaling-runs" / name
        storage_path = cfg.run.storage_path.rstrip("/")
        location = f"{storage_path}/{name}"
    else:
        run_dir = Path(cfg.run.storage_path).expanduser().resolve() / name
        storage_path, location = str(run_dir.parent), str(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return replace(cfg, run=replace(cfg.run, name=name, storage_path=storage_path)), run_dir, location


def plan_run(cfg: TrainConfig, builder: PlanBuilder | None = None, **plan_args) -> TrialPlan:
    """Check ``cfg`` and write its plan into a fresh run folder (``plan_args``: trial id, axes,
    resources, as ``PlanBuilder.plan`` takes them)."""
    builder = builder or PlanBuilder(data_dir=cfg.data.data_dir)
    cfg, run_dir, location = new_run(cfg)
    plan = builder.plan(cfg, run_location=location, scratch=run_dir, **plan_args)
    (run_dir / "train_config.json").write_text(json.dumps(plan.config.to_dict(), indent=1, default=str))
    return plan


def run_dir_of(plan: TrialPlan) -> Path:
    run = plan.config.run
    if "://" in run.storage_path:
        return Path(tempfile.gettempdir()) / "hybrid-scaling-runs" / run.name
    return Path(run.storage_path) / run.name


def progress_line(record: dict, max_steps: int) -> str:
    """One line of training progress, as the consoles print it."""
    held = "".join(f", {k} {v:.4f}" for k, v in record.items() if k in HELDOUT_COLUMNS and v is not None)
    return (f"step {record['step']}/{max_steps}: loss {record['loss']:.4f}{held}, {record['samples_per_s']:.1f} samples/s, "
            f"{record['step_time_s']:.2f} s/step")


def fit(plan: TrialPlan, show: Callable[[str], None] | None = None) -> TrainResult:
    """Train ``plan`` on Ray Train; ``show`` gets one line per progress record while it runs."""
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    run, res = plan.config.run, plan.resources
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True, log_to_driver=True)
    per_worker = {"CPU": res.cpus_per_worker, **({"GPU": res.gpus_per_worker} if res.gpus_per_worker else {})}
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"plan": plan.location},
        torch_config=TorchConfig(backend="nccl" if res.gpus_per_worker else "gloo"),
        scaling_config=ScalingConfig(num_workers=res.num_workers, use_gpu=res.gpus_per_worker > 0,
                                     resources_per_worker=per_worker),
        run_config=RunConfig(name=run.name, storage_path=run.storage_path,
                             failure_config=FailureConfig(max_failures=run.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=2)),
    )
    watch = ProgressWatcher({"run": run_location(plan.location)},
                            lambda _, record: show(progress_line(record, plan.config.optim.max_steps))) if show else nullcontext()
    with watch:
        result = trainer.fit()
    if result.error:
        raise result.error
    run_dir = run_dir_of(plan)
    with result.checkpoint.as_directory() as d:
        outcome = TrainOutcome.read(Path(d))
        final = run_dir / "final_model"
        if not final.exists():
            shutil.copytree(Path(d) / MODEL_FOLDER, final)
    return TrainResult(final, outcome, run_dir, result.checkpoint, (result.path, result.filesystem))
