"""Run a study on Ray Tune: one Tune function per trial, which fits a TorchTrainer and evaluates.

Results go to a ``ResultStore`` (``scaling.sweep.store``: a local folder or a cloud URI) under
``<storage>/<study name>/``; see that module for the layout and why a crash never leaves half a
trial. ``--resume`` re-runs exactly the trials without a manifest; ``load_results`` reads all
finished trials while the study runs.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from scaling.provenance import provenance
from scaling.sweep.store import ResultStore
from scaling.sweep.study import Study, StudyConfigError, Trial


def study_store(study: Study) -> ResultStore:
    try:
        return ResultStore(study.storage.rstrip("/") + "/" + study.name)
    except ValueError as exc:
        raise StudyConfigError(str(exc)) from None


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


def _progress_counter(total: int, already: int):
    """A Tune callback printing a running count as trials end (Tune's own table is per-trial)."""
    from ray.tune import Callback

    class ProgressCounter(Callback):
        def __init__(self):
            self.finished, self.failed = already, 0

        def _line(self, trial, what: str) -> None:
            print(f"[study] trial {trial.config.get('trial_id')} {what}: {self.finished} of {total} finished, "
                  f"{self.failed} failed, {total - self.finished - self.failed} to go", flush=True)

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.finished += 1
            self._line(trial, "finished")

        def on_trial_error(self, iteration, trials, trial, **info):
            self.failed += 1
            self._line(trial, "FAILED")

    return ProgressCounter()


def inspect_training_data(study: Study) -> dict[str, dict]:
    """Per distinct training-data setting: the groups each benchmark shares with it (``refuse``
    stops the study here, before Ray starts; ``drop`` records what training loses) and what is
    left to train on (rows, groups, languages, content hash), recorded in every manifest."""
    from scaling.training.loop import load_training_corpus

    out: dict[str, dict] = {}
    for trial in study.trials:
        key = json.dumps(trial.config.data.train)
        if key in out:
            continue
        dropped: dict[str, int] = {}
        cfg = trial.config
        corpus = load_training_corpus(replace(cfg, data=replace(cfg.data, exclude_overlap_with=study.benchmarks)), dropped)
        out[key] = {"sources": list(cfg.data.train), "dropped_groups": dropped, "rows": len(corpus),
                    "groups": corpus.num_groups, "languages": list(corpus.languages),
                    "content_hash": corpus.fingerprint()}
    overlapping = {k: v["dropped_groups"] for k, v in out.items() if any(v["dropped_groups"].values())}
    if study.zero_shot == "refuse" and overlapping:
        raise StudyConfigError(f"zero_shot: refuse, but training data overlaps the benchmarks (groups per "
                               f"benchmark): {overlapping}; set zero_shot: drop or change the data")
    return out


def run_trial(trial: Trial, study: Study, store: ResultStore, training_data: dict[str, dict] | None = None) -> dict:
    """Train, evaluate and record one trial (the manifest, written last, marks it finished)."""
    from scaling.data import load_benchmark
    from scaling.eval.embeddings import model_fingerprint
    from scaling.eval.evaluate import EvalConfig, EvalResult, evaluate_benchmark, evaluate_tatoeba
    from scaling.models.encoder import DualEncoder
    from scaling.training.trainer import fit

    start = time.perf_counter()
    for stale in store.remove_stale_runs(trial.trial_id):
        print(f"trial {trial.trial_id}: removed {stale} (an earlier attempt that never finished)", flush=True)
    config = replace(trial.config, run=replace(trial.config.run, storage_path=store.location.rstrip("/") + "/runs",
                                               name=f"trial-{trial.trial_id}"))
    if study.zero_shot == "drop":
        config = replace(config, data=replace(config.data, exclude_overlap_with=tuple(study.benchmarks)))
    result = fit(config)
    trained = time.perf_counter()
    encoder = DualEncoder.load(result.model_dir)
    evaluation = EvalResult()
    model_key = model_fingerprint(encoder)
    benchmarks = {}
    for source in study.benchmarks:
        bench = load_benchmark(source, data_dir=config.data.data_dir)
        for b in bench.values() if isinstance(bench, dict) else [bench]:
            benchmarks[b.name] = {"source": source, "queries": len(b.queries), "candidates": len(b.candidates),
                                  "content_hash": b.fingerprint()}
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
    train_data = (training_data or {}).get(json.dumps(trial.config.data.train), {})
    trained_on = list(config.data.languages) if config.data.languages else train_data.get("languages")
    manifest = {"trial_id": trial.trial_id, "axes": trial.axes, "config": config.to_dict(),
                "seed": config.sampler.seed, "languages": list(config.data.languages) if config.data.languages else None,
                "training_languages": trained_on,
                "data": {"train": train_data or list(config.data.train), "benchmarks": benchmarks,
                         "zero_shot": study.zero_shot},
                "parameters": result.parameters, "final_metrics": result.metrics,
                "batch_counts": result.batch_counts, "eval_notes": evaluation.notes,
                **provenance(),
                "wall_s": {"train": trained - start, "evaluate": evaluated - trained}}
    store.write_trial(trial.trial_id, records, curve, manifest)
    result.remove_checkpoints()  # the trial is recorded; its resume checkpoints are GBs for a real model
    if study.keep_models and not store.is_local:  # the driver's copy is local scratch: keep it with the results
        store.upload_folder(result.model_dir, f"runs/{result.run_dir.name}/final_model")
    if not study.keep_models or not store.is_local:
        shutil.rmtree(result.model_dir, ignore_errors=True)
    return {"trial_id": trial.trial_id, **{k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}}


class TrialsFailed(RuntimeError):
    """Some trials raised; their errors are in Tune's output, and ``--resume`` retries them."""


def run_study(study: Study, *, resume: bool = False) -> ResultStore:
    """Run every unfinished trial; raises ``TrialsFailed`` (after the others finish) if any fail."""
    import ray
    from ray import tune

    store = study_store(study)
    done = set(store.finished())
    if done and not resume:
        raise StudyConfigError(f"{store.location} already holds {len(done)} finished trial(s); pass --resume to "
                               "finish the study, or choose another study.name")
    from scaling.models.offline_e5 import OFFLINE_NAMES, packaged_files

    if any(t.config.encoder.model in OFFLINE_NAMES for t in study.trials):
        packaged_files()  # before Ray starts: OfflineModelMissing says how to install the extra
    training_data = inspect_training_data(study)
    store.write_json("study.json", {"config": study.raw, "training_data": list(training_data.values()),
                                    "trials": [{"trial_id": t.trial_id, "axes": t.axes} for t in study.trials]})
    pending = [t for t in study.trials if t.trial_id not in done]
    print(f"{len(done)} trial(s) already finished, {len(pending)} to run", flush=True)
    if not pending:
        return store
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True)
    by_id = {t.trial_id: t for t in pending}

    def trainable(params: dict) -> None:
        trial = by_id[params["trial_id"]]
        print(f"trial {trial.trial_id} start: {trial.axes}", flush=True)
        metrics = run_trial(trial, study, store, training_data)
        print(f"trial {trial.trial_id} finished: {metrics}", flush=True)
        tune.report(metrics)

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"trial_id": tune.grid_search(list(by_id))},
        tune_config=tune.TuneConfig(max_concurrent_trials=study.resources.concurrent_trials),
        run_config=tune.RunConfig(name=f"tune-{uuid.uuid4().hex[:8]}", storage_path=store.location.rstrip("/") + "/tune",
                                  failure_config=tune.FailureConfig(max_failures=0), verbose=1,
                                  callbacks=[_progress_counter(len(study.trials), len(done))]),
    )
    grid = tuner.fit()
    failed = [r for r in grid if r.error]
    print(f"{len(pending) - len(failed)} trial(s) finished, {len(failed)} failed", flush=True)
    if failed:
        errors = "; ".join(f"{r.config.get('trial_id')}: {type(r.error).__name__}: "
                           f"{(str(r.error).splitlines() or [''])[-1][:200]}" for r in failed)
        raise TrialsFailed(f"{len(failed)} of {len(pending)} trial(s) failed ({errors}); fix the cause and run again "
                           f"with --resume to run only the unfinished trials (results so far: {store.location})")
    return store


def load_results(location: str | Path | ResultStore) -> pa.Table:
    """All finished trials' metric rows (readable while the study runs); ``analysis`` builds on it."""
    store = location if isinstance(location, ResultStore) else ResultStore(location)
    return store.trial_tables("metrics.parquet")


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
