"""Evaluation as a stage of its own: a trained model and the plan's benchmark suites in, metric
records out. Run in this process (``evaluate_plan``) or as a Ray task with the plan's own
reservation (``run_evaluation``), after training has released its workers."""

from __future__ import annotations

from pathlib import Path

from scaling.eval.embeddings import model_fingerprint
from scaling.eval.evaluate import EvalResult, evaluate_suite
from scaling.eval.mteb_tasks import evaluate_mteb
from scaling.models.encoder import DualEncoder
from scaling.plan import TrialPlan


def evaluate_plan(plan: TrialPlan, model_dir: str | Path) -> EvalResult:
    encoder = DualEncoder.load(model_dir)
    model_key = model_fingerprint(encoder)  # the weights are fixed for the whole stage: once
    result = EvalResult()
    for suite in plan.read_benchmarks():
        evaluate_suite(encoder, suite, plan.eval, result, model_key)
    for source in plan.mteb_sources():
        evaluate_mteb(encoder, source, plan.eval, result, model_key)
    return result


def _evaluate_checkpoint(plan_location: str, checkpoint, model_folder: str) -> EvalResult:
    plan = TrialPlan.read(plan_location)
    with checkpoint.as_directory() as folder:
        return evaluate_plan(plan, Path(folder) / model_folder)


def run_evaluation(plan: TrialPlan, checkpoint, model_folder: str) -> EvalResult:
    """A Ray task reserving ``plan.resources.eval_cpus``/``eval_gpus``; the model is read from
    the run's final checkpoint (on the run's storage), wherever the task lands."""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    # placement_group=None: outside the trial's placement group (Tune's), in resources of its own
    task = ray.remote(_evaluate_checkpoint).options(
        num_cpus=plan.resources.eval_cpus, num_gpus=plan.resources.eval_gpus, max_retries=0,
        scheduling_strategy=PlacementGroupSchedulingStrategy(placement_group=None))
    return ray.get(task.remote(plan.location, checkpoint, model_folder))
