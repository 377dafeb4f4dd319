"""Run a study on Ray Tune: plans first (on the driver, before Ray), then one Tune function per
trial, which trains its plan on Ray Train and evaluates it in a Ray task of its own.

Results go to a ``ResultStore`` (``scaling.store``: a local folder or a cloud URI) under
``<storage>/<study name>/``; see that module for the layout and why a crash never leaves half a
trial. ``--resume`` re-runs exactly the trials without a manifest; ``load_results`` reads all
finished trials while the study runs.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
import uuid
from dataclasses import asdict, dataclass, replace

import pyarrow as pa

from scaling.data import DataError
from scaling.plan import PlanBuilder, TrialPlan
from scaling.provenance import provenance
from scaling.records import TrialRecord, axis_types, metric_rows
from scaling.samplers import SamplerConfigError
from scaling.secrets import redact
from scaling.store import RUNS, ResultStore, trial_run_name
from scaling.sweep.console import StudyConsole
from scaling.sweep.identity import describe_changes, fingerprint
from scaling.sweep.lock import StudyLock, StudyLockError
from scaling.sweep.signals import InterruptWatch, StudyInterrupted
from scaling.sweep.study import Study, StudyConfigError, Trial
from scaling.training.config import TrainConfig
from scaling.training.progress import ProgressWatcher, run_location
from scaling.training.trainer import progress_line


def study_store(study: Study) -> ResultStore:
    try:
        return ResultStore(study.storage.rstrip("/") + "/" + study.name)
    except ValueError as exc:
        raise StudyConfigError(str(exc)) from None


class StudyPlanner:
    """Checks and plans a study's trials on the driver, before Ray starts: each source loaded
    once for the study; every check (``refuse`` included) runs before anything is written."""

    def __init__(self, study: Study, store: ResultStore) -> None:
        self.study, self.store = study, store
        self.builder = PlanBuilder(data_dir=study.trials[0].config.data.data_dir, overlap_with=study.benchmarks,
                                   zero_shot=study.zero_shot, evaluate_on=study.benchmarks, eval_config=study.eval,
                                   zero_shot_languages=study.zero_shot_languages,
                                   shared=store)
        self.configs: dict[str, TrainConfig] = {}

    @staticmethod
    def _named(trial: Trial, exc: Exception) -> StudyConfigError:
        where = "" if str(exc).startswith("zero_shot") else f"trial {trial.trial_id} ({trial.axes['size']}, " \
                                                             f"{trial.axes['recipe']}): "
        return StudyConfigError(f"{where}{exc}")

    def check(self) -> None:
        """Every trial against its data and model; writes nothing."""
        for trial in self.study.trials:
            config = replace(trial.config, run=replace(trial.config.run, storage_path=self.store.uri(RUNS),
                                                       name=trial_run_name(trial.trial_id)))
            try:
                self.builder.check(config)
            except (DataError, SamplerConfigError, ValueError) as exc:
                raise self._named(trial, exc) from None
            self.configs[trial.trial_id] = config

    def identity(self) -> dict:
        """The study's identity (``scaling.sweep.identity``): trials with their settings, and the
        content hashes of the training data (after zero-shot drops) and of every benchmark."""
        data = {}
        for config in self.configs.values():
            corpus, _ = self.builder.training_corpus(replace(config, data=replace(config.data,
                                                                                  data_dir=self.builder.data_dir)))
            data[", ".join(config.data.labels)] = corpus.fingerprint()
        benchmarks = {name: digest for source in self.study.benchmarks
                      for name, digest in self.builder.benchmark_hashes(source).items()}
        first = self.study.trials[0].identity
        return {"trials": {t.trial_id: {"axes": t.axes, "settings": t.identity["settings"]} for t in self.study.trials},
                "benchmarks": first["benchmarks"], "eval": first["eval"], "zero_shot": first["zero_shot"],
                "data": {"training": data, "benchmarks": benchmarks}}

    def plan(self, trials: list[Trial]) -> dict[str, TrialPlan]:
        from scaling.training.trainer import plan_run

        if not self.configs:
            self.check()
        plans = {}
        for trial in trials:
            for stale in self.store.remove_stale_runs(trial_run_name(trial.trial_id)):
                print(f"trial {trial.trial_id}: removed {stale} (an earlier attempt that never finished)", flush=True)
            try:
                plans[trial.trial_id] = plan_run(self.configs[trial.trial_id], self.builder, trial_id=trial.trial_id,
                                                 axes=trial.axes, resources=trial.resources.for_trial())
            except (DataError, SamplerConfigError, ValueError) as exc:
                raise self._named(trial, exc) from None
        return plans


def plan_trials(study: Study, store: ResultStore, trials: list[Trial]) -> dict[str, TrialPlan]:
    """One plan per trial (see ``StudyPlanner``)."""
    return StudyPlanner(study, store).plan(trials)


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


def evaluation_languages(plan: TrialPlan) -> dict[str, dict[str, list[str]]]:
    """Per benchmark: its languages seen in this trial's training, and the zero-shot rest."""
    trained = set(plan.config.data.languages or plan.corpus.languages)
    out = {}
    for suite in plan.benchmarks:
        for name, member in suite.members.items():
            langs = member.get("languages", [])
            out[name] = {"seen": [x for x in langs if x in trained], "zero_shot": [x for x in langs if x not in trained]}
    return out


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
                "evaluation_languages": evaluation_languages(plan),
                "data": {"train": plan.corpus.describe(),
                         "benchmarks": {name: info for b in plan.benchmarks for name, info in b.members.items()},
                         "zero_shot": study.zero_shot},
                "evaluation": asdict(plan.eval), "resources": asdict(plan.resources),
                "batch_counts": result.batch_counts, "sampling": result.sampling, "eval_notes": evaluation.notes, **provenance()}
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


def run_study(study: Study, *, resume: bool = False, verbose: bool = False) -> ResultStore:
    """Run every unfinished trial; raises ``TrialsFailed`` (after the others finish) if any fail,
    ``StudyInterrupted`` after SIGINT/SIGTERM. ``verbose``: Ray's own output on the console too.
    One driver at a time per study folder (``StudyLock``)."""
    store = study_store(study)
    planner = StudyPlanner(study, store)
    planner.check()  # before anything is written
    if study.resources.gpu_memory_gb is not None:
        from scaling.sweep.budget import budget_lines

        refusals = budget_lines(study)[1]
        if refusals:
            raise StudyConfigError("; ".join(refusals))
    try:
        store.check_writable()
    except ValueError as exc:
        raise StudyConfigError(str(exc)) from None
    lock = StudyLock(store)
    try:
        note = lock.acquire()
    except StudyLockError as exc:
        raise StudyConfigError(str(exc)) from None
    if note:
        print(f"[study] {note}", flush=True)
    try:
        return _run_study(planner, resume, verbose)
    finally:
        lock.release()


def _run_study(planner: StudyPlanner, resume: bool, verbose: bool) -> ResultStore:
    study, store = planner.study, planner.store
    identity = planner.identity()
    done = set(store.finished())
    if done:
        recorded = store.read_json("study.json") if store.exists("study.json") else {}
        changes = [] if recorded.get("fingerprint") == fingerprint(identity) else \
            describe_changes(recorded.get("identity", {}), identity)
        if changes:
            raise StudyConfigError(
                f"{store.location} holds {len(done)} finished trial(s) of study {study.name!r} run with another "
                "configuration; continuing would mix them. What changed:\n  " + "\n  ".join(changes)
                + "\nRun the changed configuration as a new study (--set study.name=NEW_NAME), or restore the "
                  "original configuration to resume")
        if not resume:
            raise StudyConfigError(f"{store.location} already holds {len(done)} finished trial(s); pass --resume to "
                                   "finish the study, or choose another study.name")
    pending = [t for t in study.trials if t.trial_id not in done]
    plans = planner.plan(pending)
    training_data = list({tuple(p.corpus.sources): p.corpus.describe() for p in plans.values()}.values())
    if not training_data and store.exists("study.json"):  # nothing left to plan: keep what was recorded
        training_data = store.read_json("study.json").get("training_data", [])
    store.write_json("study.json", {"config": redact(study.raw), "fingerprint": fingerprint(identity), "identity": identity,
                                    "training_data": training_data,
                                    "trials": [{"trial_id": t.trial_id, "axes": t.axes} for t in study.trials]})
    print(f"{len(done)} trial(s) already finished, {len(pending)} to run", flush=True)
    if not pending:
        return store
    console = StudyConsole(len(study.trials), len(done))
    try:
        _run_on_tune(study, store, plans, console, verbose)
    finally:
        store.write_bytes(f"logs/console-{time.strftime('%Y%m%d-%H%M%S')}.log",
                          ("\n".join(console.lines) + "\n").encode())
    return store


def _run_on_tune(study: Study, store: ResultStore, plans: dict[str, TrialPlan], console: StudyConsole,
                 verbose: bool) -> None:
    import ray
    from ray import tune

    if not verbose:
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # the classic reporter, which verbose=0 silences
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True, log_to_driver=verbose,
                 logging_level=logging.INFO if verbose else logging.ERROR)
    if not verbose:
        try:  # a private accessor: where this session's worker logs are, when Ray started here
            console.line(f"[study] Ray's own logs: {ray._private.worker._global_node.get_session_dir_path()}/logs "
                         "(--verbose shows them here)")
        except AttributeError:
            pass
    locations = {trial_id: plan.location for trial_id, plan in plans.items()}
    context = StudyContext.of(study)
    axes = {t.trial_id: t.axes for t in study.trials}

    def trainable(params: dict) -> None:
        metrics = run_trial(TrialPlan.read(locations[params["trial_id"]]), context, store)
        tune.report(metrics)

    def show(trial_id: str, record: dict) -> None:
        console.line(f"  trial {trial_id} {progress_line(record, plans[trial_id].config.optim.max_steps)}")

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={"trial_id": tune.grid_search(list(locations))},
        tune_config=tune.TuneConfig(max_concurrent_trials=study.resources.concurrent_trials),
        run_config=tune.RunConfig(name=f"tune-{uuid.uuid4().hex[:8]}", storage_path=store.uri("tune"),
                                  failure_config=tune.FailureConfig(max_failures=0), verbose=1 if verbose else 0,
                                  callbacks=[console.tune_callback(lambda t: f"{axes[t]['size']}, {axes[t]['recipe']}")]),
    )
    watch = ProgressWatcher({t: run_location(p.location) for t, p in plans.items()}, show)
    with InterruptWatch(console.line) as interrupt, watch:
        grid = tuner.fit()
    finished = set(store.finished())
    not_finished = sorted(set(locations) - finished)
    failed = [r for r in grid if r.error]
    if interrupt.signum is not None:
        name = signal.Signals(interrupt.signum).name
        raise StudyInterrupted(interrupt.signum, (
            f"interrupted by {name}: {len(set(locations) & finished)} of {len(locations)} trial(s) of this run finished, "
            f"{len(not_finished)} did not ({', '.join(not_finished) or 'none'}); run again with --resume to continue "
            f"(results so far: {store.location})"))
    console.line(f"{len(locations) - len(not_finished)} trial(s) finished, {len(not_finished)} not")
    if failed or not_finished:
        errors = "; ".join(f"{r.config.get('trial_id')}: {type(r.error).__name__}: "
                           f"{(str(r.error).splitlines() or [''])[-1][:200]}" for r in failed)
        raise TrialsFailed(f"{len(not_finished)} of {len(locations)} trial(s) failed ({errors or 'stopped'}); fix the "
                           f"cause and run again with --resume to run only the unfinished trials (results so far: "
                           f"{store.location})")


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
