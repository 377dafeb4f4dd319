"""Run a study on Ray Tune: one Tune function per trial, which fits a TorchTrainer and evaluates.

Results live in ``<storage>/<study>/``: ``study.json`` (the resolved configuration and grid), and
per trial ``trials/<id>/`` with ``metrics.parquet`` (one row per benchmark, setting, query
language, candidate language and metric, with the trial's axes as columns), ``curve.parquet``
(step, loss, throughput) and ``manifest.json`` (configuration, languages, data, parameter counts,
versions, host, timings). A trial's files are written to a temporary folder and renamed into
place as a whole, so a crash never leaves half a trial, and ``--resume`` re-runs exactly the
trials without a folder. ``load_results`` reads all finished trials while the study runs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from scaling.provenance import git_revision, host, library_versions
from scaling.sweep.study import Study, StudyConfigError, Trial


def study_dir(study: Study) -> Path:
    if "://" in study.storage:
        raise StudyConfigError(f"storage {study.storage!r}: cloud URIs are not supported yet; use a local or shared folder")
    return Path(study.storage).expanduser().resolve() / study.name


def finished_trials(folder: Path) -> set[str]:
    trials = folder / "trials"
    return {p.name for p in trials.iterdir() if (p / "manifest.json").is_file()} if trials.is_dir() else set()


def axis_types(study: Study) -> dict[str, pa.DataType]:
    """One Arrow type per axis across the whole study, so every trial's file has the same schema
    (an axis that is unset in some trials, like alpha outside hybrid, is a null of that type)."""
    types = {}
    for key in study.trials[0].axes:
        values = [t.axes[key] for t in study.trials if t.axes[key] is not None]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            types[key] = pa.int64()
        elif values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            types[key] = pa.float64()
        elif values and all(isinstance(v, bool) for v in values):
            types[key] = pa.bool_()
        else:
            types[key] = pa.string()  # text, or lists as JSON
    return types


def zero_shot_overlaps(study: Study) -> dict[str, dict[str, int]]:
    """Training groups each benchmark shares with each distinct training-data setting, checked
    before Ray starts; ``refuse`` stops the study here, ``drop`` records what training loses."""
    from scaling.training.loop import load_training_corpus

    out: dict[str, dict[str, int]] = {}
    for trial in study.trials:
        key = json.dumps(trial.config.data.train)
        if key in out:
            continue
        dropped: dict[str, int] = {}
        cfg = trial.config
        load_training_corpus(replace(cfg, data=replace(cfg.data, exclude_overlap_with=study.benchmarks)), dropped)
        out[key] = dropped
    overlapping = {k: v for k, v in out.items() if any(v.values())}
    if study.zero_shot == "refuse" and overlapping:
        raise StudyConfigError(f"zero_shot: refuse, but training data overlaps the benchmarks (groups per "
                               f"benchmark): {overlapping}; set zero_shot: drop or change the data")
    return out


def run_trial(trial: Trial, study: Study, folder: Path, overlaps: dict[str, dict[str, int]] | None = None) -> dict:
    """Train, evaluate and write one trial's results (atomically)."""
    from scaling.data import load_benchmark
    from scaling.eval.embeddings import model_fingerprint
    from scaling.eval.evaluate import EvalConfig, EvalResult, evaluate_benchmark, evaluate_tatoeba
    from scaling.models.encoder import DualEncoder
    from scaling.training.trainer import fit

    start = time.perf_counter()
    config = replace(trial.config, run=replace(trial.config.run, storage_path=str(folder / "runs"),
                                               name=f"trial-{trial.trial_id}"))
    if study.zero_shot == "drop":
        config = replace(config, data=replace(config.data, exclude_overlap_with=tuple(study.benchmarks)))
    result = fit(config)
    trained = time.perf_counter()
    encoder = DualEncoder.load(result.model_dir)
    evaluation = EvalResult()
    model_key = model_fingerprint(encoder)
    for source in study.benchmarks:
        bench = load_benchmark(source, data_dir=config.data.data_dir)
        if isinstance(bench, dict):
            evaluate_tatoeba(encoder, bench, EvalConfig(), evaluation, model_key)
        else:
            evaluate_benchmark(encoder, bench, EvalConfig(), evaluation, model_key)
    evaluated = time.perf_counter()

    types = axis_types(study)
    columns = {"study": (study.name, pa.string()), "trial_id": (trial.trial_id, pa.string()),
               **{k.replace(".", "_"): (json.dumps(v) if isinstance(v, (list, dict)) else v, types[k])
                  for k, v in trial.axes.items()},
               "non_embedding_params": (result.parameters["non_embedding"], pa.int64()),
               "total_params": (result.parameters["total"], pa.int64())}
    records = evaluation.table()
    for name, (value, kind) in reversed(list(columns.items())):
        records = records.add_column(0, pa.field(name, kind), pa.array([value] * len(records), type=kind))
    curve = pa.Table.from_pylist([{"trial_id": trial.trial_id, **h} for h in result.history])
    manifest = {"trial_id": trial.trial_id, "axes": trial.axes, "config": config.to_dict(),
                "languages": list(config.data.languages) if config.data.languages else None,
                "data": {"train": list(config.data.train), "benchmarks": list(study.benchmarks),
                         "zero_shot": study.zero_shot,
                         "dropped_groups": (overlaps or {}).get(json.dumps(trial.config.data.train), {})},
                "parameters": result.parameters, "final_metrics": result.metrics,
                "batch_counts": result.batch_counts, "eval_notes": evaluation.notes,
                "versions": library_versions(), "git_revision": git_revision(), "host": host(),
                "wall_s": {"train": trained - start, "evaluate": evaluated - trained}}
    target = folder / "trials" / trial.trial_id
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{trial.trial_id}-"))
    pq.write_table(records, tmp / "metrics.parquet")
    pq.write_table(curve, tmp / "curve.parquet")
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str))
    if target.exists():  # an earlier attempt that failed before finishing left nothing complete
        shutil.rmtree(target)
    os.replace(tmp, target)
    # The trial is recorded: its resume checkpoints are no longer needed (GBs for a pretrained model).
    for checkpoint in result.run_dir.glob("checkpoint_*"):
        if checkpoint.is_dir():
            shutil.rmtree(checkpoint, ignore_errors=True)
    if not study.keep_models:
        shutil.rmtree(result.model_dir, ignore_errors=True)
    return {"trial_id": trial.trial_id, **{k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}}


def run_study(study: Study, *, resume: bool = False) -> Path:
    import ray
    from ray import tune

    folder = study_dir(study)
    done = finished_trials(folder)
    if done and not resume:
        raise StudyConfigError(f"{folder} already holds {len(done)} finished trial(s); pass --resume to finish the "
                               "study, or choose another study.name")
    from scaling.models.offline_e5 import OFFLINE_NAMES, packaged_files

    if any(t.config.encoder.model in OFFLINE_NAMES for t in study.trials):
        packaged_files()  # before Ray starts: OfflineModelMissing says how to install the extra
    overlaps = zero_shot_overlaps(study)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "study.json.tmp"
    tmp.write_text(json.dumps({"config": study.raw, "zero_shot_dropped_groups": overlaps,
                               "trials": [{"trial_id": t.trial_id, "axes": t.axes} for t in study.trials]},
                              indent=1, default=str))
    tmp.replace(folder / "study.json")
    pending = [t for t in study.trials if t.trial_id not in done]
    print(f"{len(done)} trial(s) already finished, {len(pending)} to run", flush=True)
    if not pending:
        return folder
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True)
    by_id = {t.trial_id: t for t in pending}

    def trainable(params: dict) -> None:
        trial = by_id[params["trial_id"]]
        print(f"trial {trial.trial_id} start: {trial.axes}", flush=True)
        metrics = run_trial(trial, study, folder, overlaps)
        print(f"trial {trial.trial_id} finished: {metrics}", flush=True)
        tune.report(metrics)

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"trial_id": tune.grid_search(list(by_id))},
        tune_config=tune.TuneConfig(max_concurrent_trials=study.resources.concurrent_trials),
        run_config=tune.RunConfig(name=f"tune-{uuid.uuid4().hex[:8]}", storage_path=str(folder / "tune"),
                                  failure_config=tune.FailureConfig(max_failures=0), verbose=1),
    )
    grid = tuner.fit()
    failed = [r for r in grid if r.error]
    print(f"{len(pending) - len(failed)} trial(s) finished, {len(failed)} failed", flush=True)
    return folder


def load_results(folder: str | Path) -> pa.Table:
    """All finished trials' metric rows (readable while the study runs)."""
    files = sorted(Path(folder).glob("trials/*/metrics.parquet"))
    if not files:
        raise FileNotFoundError(f"{folder} has no finished trials")
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")


def summary(table: pa.Table, benchmark: str | None = None) -> str:
    """Macro mAP per setting for each (size, strategy), and hybrid minus each baseline."""
    rows = [r for r in table.to_pylist() if r["metric"] in ("map", "rank_distance") and r["query_lang"] == "*"
            and (benchmark is None or r["benchmark"] == benchmark)]
    cells: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        key = (r["benchmark"], r["size"], r["strategy"] + (f" a={r['alpha']}" if r.get("alpha") is not None else ""))
        cells.setdefault(key, {}).setdefault(f"{r['setting']}/{r['metric']}", []).append(r["value"])
    cols = ["mono/map", "cross/map", "multi/map", "multi/rank_distance"]
    lines = [f"{'benchmark':<18}{'size':<26}{'strategy':<16}" + "".join(f"{c:>21}" for c in cols)]
    for (bench, size, strategy), values in sorted(cells.items()):
        mean = {c: sum(v) / len(v) for c, v in values.items()}
        lines.append(f"{bench:<18}{size:<26}{strategy:<16}" + "".join(
            f"{mean[c]:>21.3f}" if c in mean else f"{'-':>21}" for c in cols))
    by_size: dict[tuple, dict[str, float]] = {}
    for (bench, size, strategy), values in cells.items():
        if "multi/map" in values:
            by_size.setdefault((bench, size), {})[strategy.split()[0]] = sum(values["multi/map"]) / len(values["multi/map"])
    deltas = []
    for (bench, size), strategies in sorted(by_size.items()):
        if "hybrid" in strategies:
            deltas += [f"{bench} {size}: hybrid - {b} = {strategies['hybrid'] - v:+.3f}"
                       for b, v in sorted(strategies.items()) if b != "hybrid"]
    if deltas:
        lines.append("multilingual mAP, hybrid minus each baseline (seed means; see the analysis package for intervals):")
        lines += ["  " + d for d in deltas]
    return "\n".join(lines)
