"""Run one training configuration on Ray Train (TorchTrainer, Train V2).

Everything that can be wrong with a configuration is checked here, on the driver, before any
worker starts: the corpus and languages, the sampler against the corpus, the model path. Tiny
random models (``tiny:hidden=32,layers=2``) are built once on the driver and saved next to the
run, so every worker starts from the same weights and tokenizer.

``run.storage_path`` may be a cloud URI (``s3://bucket/runs``): Ray Train then keeps checkpoints
there, which a multi-node cluster needs, and the driver keeps its own files (the tiny initial
model, the final model it evaluates) in a local scratch folder under the system temp directory.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow.fs as pafs

from scaling.data.remote import offline
from scaling.models.offline_e5 import HUB_NAME, OFFLINE_NAMES, packaged_files
from scaling.samplers import make_sampler
from scaling.training.config import TrainConfig
from scaling.training.loop import load_training_corpus, train_loop_per_worker


@dataclass
class TrainResult:
    model_dir: Path  # Hugging Face folder + encoder.json of the final model
    metrics: dict
    history: list[dict]
    batch_counts: dict
    parameters: dict
    run_dir: Path  # local: the run's configuration and final model
    checkpoints: tuple[str, pafs.FileSystem] | None = None  # where Ray Train wrote its checkpoints

    def remove_checkpoints(self) -> None:
        """Drop the resume checkpoints (GBs for a pretrained model) once results are recorded."""
        if self.checkpoints is None:
            return
        path, fs = self.checkpoints
        for info in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
            if info.type == pafs.FileType.Directory and info.base_name.startswith("checkpoint_"):
                fs.delete_dir(info.path)


def prepare(cfg: TrainConfig) -> tuple[TrainConfig, Path]:
    """Validate on the driver and materialise what workers need; returns the config workers get."""
    name = f"{cfg.run.name}-{uuid.uuid4().hex[:8]}"  # a fresh name: Ray would reuse an old run's checkpoints
    if "://" in cfg.run.storage_path:
        run_dir = Path(tempfile.gettempdir()) / "hybrid-scaling-runs" / name
        storage_path = cfg.run.storage_path
    else:
        run_dir = Path(cfg.run.storage_path).expanduser().resolve() / name
        storage_path = str(run_dir.parent)
    data_dir = cfg.data.data_dir or os.environ.get("SCALING_DATA_DIR")
    cfg = replace(cfg, data=replace(cfg.data, data_dir=str(Path(data_dir).resolve()) if data_dir else None),
                  run=replace(cfg.run, name=name, storage_path=storage_path))
    corpus = load_training_corpus(cfg)
    make_sampler(cfg.sampler, corpus, cfg.data.languages)  # raises on any bad sampler setting
    if cfg.sampler.batch_size % cfg.run.num_workers:
        raise ValueError(f"sampler.batch_size {cfg.sampler.batch_size} must be divisible by run.num_workers "
                         f"{cfg.run.num_workers} (each worker takes an equal slice of the global batch)")
    model = cfg.encoder.model
    if model.startswith("tiny:"):
        from scaling.models.tiny import parse_tiny_spec, tiny_encoder

        texts = corpus.table.column("query").to_pylist() + corpus.table.column("passage").to_pylist()
        enc = tiny_encoder(texts, seed=cfg.sampler.seed, **parse_tiny_spec(model),
                           pooling=cfg.encoder.pooling, max_length=cfg.encoder.max_length,
                           query_prefix=cfg.encoder.query_prefix, passage_prefix=cfg.encoder.passage_prefix)
        init = run_dir / "init_model"
        enc.save(init)
        cfg = replace(cfg, encoder=replace(cfg.encoder, model=str(init)))
    elif model in OFFLINE_NAMES and (model != HUB_NAME or offline()):
        packaged_files()  # OfflineModelMissing says how to install the offline extra
    elif not Path(model).expanduser().exists() and model not in OFFLINE_NAMES:
        if model.startswith(("/", ".", "~")) or offline():
            raise ValueError(f"encoder.model {model!r} is not a local folder"
                             + (", and downloads are off (SCALING_OFFLINE/HF_HUB_OFFLINE)" if offline() else ""))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=1, default=str))
    return cfg, run_dir


def fit(cfg: TrainConfig) -> TrainResult:
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    cfg, run_dir = prepare(cfg)
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True, log_to_driver=True)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=cfg.to_dict(),
        torch_config=TorchConfig(backend="nccl" if cfg.run.use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=cfg.run.num_workers, use_gpu=cfg.run.use_gpu,
                                     resources_per_worker={"CPU": cfg.run.cpus_per_worker}),
        run_config=RunConfig(name=cfg.run.name, storage_path=cfg.run.storage_path,
                             failure_config=FailureConfig(max_failures=cfg.run.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=2)),
    )
    result = trainer.fit()
    if result.error:
        raise result.error
    with result.checkpoint.as_directory() as d:
        progress = json.loads((Path(d) / "progress.json").read_text())
        final = run_dir / "final_model"
        if not final.exists():
            import shutil

            shutil.copytree(Path(d) / "model", final)
    return TrainResult(final, progress["metrics"], progress["history"], progress["batch_counts"],
                       progress["parameters"], run_dir, (result.path, result.filesystem))
