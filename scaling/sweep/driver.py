"""Run a study on Ray Tune: plans first (on the driver, before Ray), then one Tune function per
trial, which trains its plan on Ray Train and evaluates it in a Ray task of its own.

Results go to a ``ResultStore`` (``scaling.store``: a local folder or a cloud URI) under
``<storage>/<study name>/``; see that module for the layout and why a crash never leaves half a
trial. ``--resume`` re-runs exactly the trials without a manifest; ``load_results`` reads all
finished trials while the study runs.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, replace

import pyarrow as pa

from scaling.data import DataError
from scaling.plan import PlanBuilder, TrialPlan
from scaling.provenance import provenance
from scaling.records import TrialRecord, axis_types, metric_rows
from scaling.samplers import SamplerConfigError
from scaling.store import RUNS, ResultStore, trial_run_name
from scaling.sweep.study import Study, StudyConfigError, Trial


def study_store(study: Study) -> ResultStore:
    try:
        return ResultStore(study.storage.rstrip("/") + "/" + study.name)
    except ValueError as exc:
        raise StudyConfigError(str(exc)) from None


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


def plan_trials(study: Study, store: ResultStore, trials: list[Trial]) -> dict[str, TrialPlan]:
    """One plan per trial, written before Ray starts: each source loaded once for the study,
    every check run (``refuse`` stops the study here). Errors name the trial and the setting."""
    from scaling.training.trainer import plan_run

    builder = PlanBuilder(data_dir=study.trials[0].config.data.data_dir, overlap_with=study.benchmarks,
                          zero_shot=study.zero_shot, evaluate_on=study.benchmarks, eval_config=study.eval, shared=store)
    def named(trial: Trial, exc: Exception) -> StudyConfigError:
        where = "" if str(exc).startswith("zero_shot") else f"trial {trial.trial_id} ({trial.axes['size']}, " \
                                                             f"{trial.axes['recipe']}): "
        return StudyConfigError(f"{where}{exc}")

    configs = {}
    for trial in trials:  # every check first: a study that cannot run writes nothing
        config = replace(trial.config, run=replace(trial.config.run, storage_path=store.uri(RUNS),
                                                   name=trial_run_name(trial.trial_id)))
        try:
            builder.check(config)
        except (DataError, SamplerConfigError, ValueError) as exc:
            raise named(trial, exc) from None
        configs[trial.trial_id] = config
    plans = {}
    for trial in trials:
        for stale in store.remove_stale_runs(trial_run_name(trial.trial_id)):
            print(f"trial {trial.trial_id}: removed {stale} (an earlier attempt that never finished)", flush=True)
        try:
            plans[trial.trial_id] = plan_run(configs[trial.trial_id], builder, trial_id=trial.trial_id,
                                             axes=trial.axes, resources=study.resources.for_trial())
        except (DataError, SamplerConfigError, ValueError) as exc:
            raise named(trial, exc) from None
    return plans


@dataclass(frozen=True)
class StudyContext:
    """What a trial needs of its study, in plain values: Tune ships it to the trial's process,
    which must unpickle it before the plan's plugins (a lab's own strategy) are imported."""

    name: str
    zero_shot: str
    keep_models: bool
    axis_types: dict[str, pa.DataType]

    @classmethod
    def of(cls, study: Study) -> "StudyContext":
        return cls(study.name, study.zero_shot, study.keep_models, axis_types([t.axes for t in study.trials]))


def run_trial(plan: TrialPlan, study: StudyContext, store: ResultStore) -> dict:
    """Train, evaluate and record one trial (the manifest, written last, marks it finished)."""
    from scaling.eval.stage import run_evaluation
    from scaling.training.outcome import MODEL_FOLDER
    from scaling.training.trainer import fit

    start = time.perf_counter()
    result = fit(plan)
    trained = time.perf_counter()
    evaluation = run_evaluation(plan, result.checkpoint, MODEL_FOLDER)
    evaluated = time.perf_counter()
    config = plan.config
    manifest = {"config": config.to_dict(), "seed": config.sampler.seed,
                "languages": list(config.data.languages) if config.data.languages else None,
                "training_languages": list(config.data.languages or plan.corpus.languages),
                "data": {"train": plan.corpus.describe(),
                         "benchmarks": {name: info for b in plan.benchmarks for name, info in b.members.items()},
                         "zero_shot": study.zero_shot},
                "evaluation": asdict(plan.eval), "resources": asdict(plan.resources),
                "batch_counts": result.batch_counts, "eval_notes": evaluation.notes, **provenance()}
    record = TrialRecord(study.name, plan.trial_id, plan.axes, result.parameters, metric_rows(evaluation.records),
                         result.history, result.metrics, {"train": trained - start, "evaluate": evaluated - trained},
                         manifest)
    store.write_record(record, study.axis_types)
    result.remove_checkpoints()  # the trial is recorded; its resume checkpoints are GBs for a real model
    if study.keep_models and not store.is_local:  # the driver's copy is local scratch: keep it with the results
        store.upload_folder(result.model_dir, f"{RUNS}/{result.run_dir.name}/final_model")
    if not study.keep_models or not store.is_local:
        shutil.rmtree(result.model_dir, ignore_errors=True)
    return {"trial_id": plan.trial_id, **{k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}}


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
    pending = [t for t in study.trials if t.trial_id not in done]
    plans = plan_trials(study, store, pending)
    training_data = {tuple(p.corpus.sources): p.corpus.describe() for p in plans.values()}
    store.write_json("study.json", {"config": study.raw, "training_data": list(training_data.values()),
                                    "trials": [{"trial_id": t.trial_id, "axes": t.axes} for t in study.trials]})
    print(f"{len(done)} trial(s) already finished, {len(pending)} to run", flush=True)
    if not pending:
        return store
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True)
    locations = {trial_id: plan.location for trial_id, plan in plans.items()}
    context = StudyContext.of(study)

    def trainable(params: dict) -> None:
        plan = TrialPlan.read(locations[params["trial_id"]])
        print(f"trial {plan.trial_id} start: {plan.axes}", flush=True)
        metrics = run_trial(plan, context, store)
        print(f"trial {plan.trial_id} finished: {metrics}", flush=True)
        tune.report(metrics)

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"trial_id": tune.grid_search(list(locations))},
        tune_config=tune.TuneConfig(max_concurrent_trials=study.resources.concurrent_trials),
        run_config=tune.RunConfig(name=f"tune-{uuid.uuid4().hex[:8]}", storage_path=store.uri("tune"),
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


def load_results(location) -> pa.Table:
    """All finished trials' metric rows (readable while the study runs); ``analysis`` builds on it."""
    store = location if isinstance(location, ResultStore) else ResultStore(location)
    return store.trial_tables("metrics.parquet")


def summary(table: pa.Table, benchmark: str | None = None) -> str:
    """Macro mAP per setting for each (size, recipe), and hybrid minus each baseline."""
    rows = [r for r in table.to_pylist() if r["metric"] in ("map", "rank_distance") and r["query_lang"] == "*"
            and (benchmark is None or r["benchmark"] == benchmark)]
    cells: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        key = (r["benchmark"], r["size"], r["recipe"])
        cells.setdefault(key, {}).setdefault(f"{r['setting']}/{r['metric']}", []).append(r["value"])
    cols = ["mono/map", "cross/map", "multi/map", "multi/rank_distance"]
    widths = [max([len(k[i]) for k in cells] + [len(h)]) + 2 for i, h in enumerate(("benchmark", "size", "recipe"))]
    head = "".join(f"{h:<{w}}" for h, w in zip(("benchmark", "size", "strategy"), widths))
    lines = [head + "".join(f"{c:>21}" for c in cols)]
    for key, values in sorted(cells.items()):
        mean = {c: sum(v) / len(v) for c, v in values.items()}
        lines.append("".join(f"{k:<{w}}" for k, w in zip(key, widths)) + "".join(
            f"{mean[c]:>21.3f}" if c in mean else f"{'-':>21}" for c in cols))
    by_size: dict[tuple, dict[str, float]] = {}
    for (bench, size, recipe), values in cells.items():
        if "multi/map" in values:
            by_size.setdefault((bench, size), {})[recipe.split()[0]] = sum(values["multi/map"]) / len(values["multi/map"])
    deltas = []
    for (bench, size), strategies in sorted(by_size.items()):
        if "hybrid" in strategies:
            deltas += [f"{bench} {size}: hybrid - {b} = {strategies['hybrid'] - v:+.3f}"
                       for b, v in sorted(strategies.items()) if b != "hybrid"]
    if deltas:
        lines.append("multilingual mAP, hybrid minus each baseline (seed means; see the analysis package for intervals):")
        lines += ["  " + d for d in deltas]
    return "\n".join(lines)
