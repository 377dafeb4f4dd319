"""Evaluation as a stage of its own: a trained model and the plan's benchmark suites in, metric
records out. Run in this process (``evaluate_plan``) or as a Ray task with the plan's own
reservation (``run_evaluation``), after training has released its workers.

With ``eval.encoder: ray-data`` the benchmarks are first encoded into shard files in the
embedding cache (``scaling.eval.sharded_encoding``): by a Ray Data actor pool that holds the
evaluation's reservation, or, for a pool of one, in the stage's own task, which frees the model
before it ranks; the stage then ranks from the cache."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

from scaling.eval.embeddings import SavedModel, folder_fingerprint
from scaling.eval.evaluate import EvalResult, evaluate_suite
from scaling.eval.mteb_tasks import evaluate_mteb
from scaling.models.encoder import DualEncoder
from scaling.plan import TrialPlan


def evaluate_plan(plan: TrialPlan, model_dir: str | Path, *, prefill: bool = True) -> EvalResult:
    """``prefill=False``: the actor pool has already encoded the suites (``run_evaluation``).

    With the pool, this process ranks what the actors (or, for a pool of one, this process) wrote
    and loads the weights again only for what they did not encode (an mteb task, or an entry
    deleted meanwhile)."""
    config, suites = plan.eval, plan.read_benchmarks()
    if config.encoder == "ray-data":
        encoder = SavedModel(model_dir)
        model_key = folder_fingerprint(model_dir)  # recorded at saving: no weights loaded for the key
        if prefill:
            from scaling.eval.sharded_encoding import prefill_embeddings

            prefill_embeddings(str(model_dir), encoder.config, model_key, suites, config, plan.resources.eval_cpus,
                               plan.resources.eval_gpus)
        config = replace(config, use_cache=True)  # read what the pool wrote (use_cache=False: it encoded anew)
    else:
        encoder = DualEncoder.load(model_dir)
        model_key = folder_fingerprint(model_dir, encoder)  # the weights are fixed for the whole stage
    result = EvalResult()
    for suite in suites:
        evaluate_suite(encoder, suite, config, result, model_key)
    for source in plan.mteb_sources():
        evaluate_mteb(encoder.encoder() if isinstance(encoder, SavedModel) else encoder, source, config, result,
                      model_key)
    return result


def _load_from_checkpoint(checkpoint, model_folder: str) -> DualEncoder:
    with checkpoint.as_directory() as folder:
        return DualEncoder.load(Path(folder) / model_folder)


def _prefill_checkpoint(plan_location: str, checkpoint, model_folder: str) -> None:
    """The driver of the actor pool: it reserves nothing, so it loads no weights (the key is the
    fingerprint recorded beside the saved model; the actors load their own copies)."""
    from scaling.eval.sharded_encoding import prefill_embeddings

    plan = TrialPlan.read(plan_location)
    with checkpoint.as_directory() as folder:
        model_key = folder_fingerprint(Path(folder) / model_folder)
        encoder_config = DualEncoder.saved_config(Path(folder) / model_folder)[0]
    prefill_embeddings(partial(_load_from_checkpoint, checkpoint, model_folder), encoder_config, model_key,
                       plan.read_benchmarks(), plan.eval, plan.resources.eval_cpus, plan.resources.eval_gpus)


def _evaluate_checkpoint(plan_location: str, checkpoint, model_folder: str, prefill: bool) -> EvalResult:
    plan = TrialPlan.read(plan_location)
    with checkpoint.as_directory() as folder:
        return evaluate_plan(plan, Path(folder) / model_folder, prefill=prefill)


def pool_runs_apart(plan: TrialPlan) -> bool:
    """Whether ``eval.encoder: ray-data`` runs a Ray Data pool before the stage task (two actors
    or more); a pool of one encodes inside the stage task, with its reservation."""
    from scaling.eval.sharded_encoding import pool_config

    return plan.eval.encoder == "ray-data" and not pool_config(plan.eval, plan.resources.eval_cpus,
                                                               plan.resources.eval_gpus).in_process


def run_evaluation(plan: TrialPlan, checkpoint, model_folder: str) -> EvalResult:
    """A Ray task reserving ``plan.resources.eval_cpus``/``eval_gpus``; the model is read from
    the run's final checkpoint (on the run's storage), wherever the task lands. With
    ``eval.encoder: ray-data`` and a pool of two actors or more, an unreserved driver task first
    runs the pool (which holds the reservation while it encodes), then the stage task ranks from
    the cache; a pool of one encodes in the stage task itself."""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    # placement_group=None: outside the trial's placement group (Tune's), in resources of its own
    outside = PlacementGroupSchedulingStrategy(placement_group=None)
    apart = pool_runs_apart(plan)
    if apart:
        pool = ray.remote(_prefill_checkpoint).options(num_cpus=0, max_retries=0, scheduling_strategy=outside)
        ray.get(pool.remote(plan.location, checkpoint, model_folder))
    task = ray.remote(_evaluate_checkpoint).options(
        num_cpus=plan.resources.eval_cpus, num_gpus=plan.resources.eval_gpus, max_retries=0,
        scheduling_strategy=outside)
    return ray.get(task.remote(plan.location, checkpoint, model_folder, not apart))
