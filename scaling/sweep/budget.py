"""Each trial's memory and time estimate (``scaling.plan.memory``) against the study's
``resources.gpu_memory_gb``: printed by ``--dry-run``, and a trial that cannot fit is refused
before Ray starts, naming the lever that would make it fit."""

from __future__ import annotations

from dataclasses import dataclass

from scaling.plan.memory import GB, Estimate, ModelShape, estimate, lever_for, shape_for
from scaling.sweep.study import Study, Trial


def trial_shape(trial: Trial) -> ModelShape | str:
    """The model's shape, or why it is unknown (a hub name without network or model card, say)."""
    try:
        return shape_for(trial.config.encoder)
    except (OSError, ValueError) as exc:
        return f"unknown ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"


def trial_gpu_hours(trial: Trial, seconds_per_step: float) -> float:
    """Accelerator-hours of a trial's training: steps x time per step x its GPUs."""
    res = trial.resources
    return trial.config.optim.max_steps * seconds_per_step * res.workers_per_trial * res.gpus_per_worker / 3600


@dataclass(frozen=True)
class TrialBudget:
    trial: Trial
    shape: ModelShape | str  # or why the size is unknown
    estimate: Estimate | None  # None when the size is unknown
    gpu_hours: float


def trial_budgets(study: Study) -> list[TrialBudget]:
    """Every trial's estimate at the study's assumed accelerator (shapes computed once per model)."""
    shapes: dict[tuple, ModelShape | str] = {}
    out = []
    for trial in study.trials:
        key = (trial.config.encoder.model, trial.config.encoder.num_layers)
        if key not in shapes:
            shapes[key] = trial_shape(trial)
        shape = shapes[key]
        if isinstance(shape, str):
            out.append(TrialBudget(trial, shape, None, 0.0))
            continue
        est = estimate(shape, trial.config, tflops=study.resources.gpu_tflops)
        out.append(TrialBudget(trial, shape, est, trial_gpu_hours(trial, est.step_seconds)))
    return out


def budget_lines(study: Study) -> tuple[list[str], list[str]]:
    """(one line per trial and a total, refusals for trials over ``resources.gpu_memory_gb``)."""
    res = study.resources
    lines, refusals = [], []
    budgets = trial_budgets(study)
    for b in budgets:
        trial, own = b.trial, b.trial.resources
        where = f"{own.workers_per_trial} worker(s) x {own.gpus_per_worker:g} GPU"
        if b.estimate is None:
            lines.append(f"  {trial.trial_id}  {where}; memory {b.shape}")
            continue
        lines.append(f"  {trial.trial_id}  {b.shape.non_embedding / 1e6:.1f}M non-embedding parameters, {where}: "
                     f"{b.estimate.describe()}; {b.gpu_hours:.2f} GPU-hours")
        if res.gpu_memory_gb is not None and b.estimate.total / GB > res.gpu_memory_gb:
            refusals.append(f"trial {trial.trial_id} ({trial.axes['size']}, {trial.axes['recipe']}) needs "
                            f"~{b.estimate.total / GB:.1f} GB per worker, more than resources.gpu_memory_gb "
                            f"{res.gpu_memory_gb:g}: "
                            f"{lever_for(trial.config, b.shape, res.gpu_memory_gb, tflops=res.gpu_tflops)}")
    unknown = sum(b.estimate is None for b in budgets)
    lines.append(f"  study: {sum(b.gpu_hours for b in budgets):.1f} GPU-hours of training at the assumed utilisation"
                 + (f" ({unknown} trial(s) of unknown size not counted)" if unknown else ""))
    return lines, refusals


def study_gpu_hours(study: Study) -> float:
    """The planner's total, as ``--dry-run`` prints it (a study file's header quotes it)."""
    return sum(b.gpu_hours for b in trial_budgets(study))
