"""Each trial's memory and time estimate (``scaling.plan.memory``) against the study's
``resources.gpu_memory_gb``: printed by ``--dry-run``, and a trial that cannot fit is refused
before Ray starts, naming the lever that would make it fit."""

from __future__ import annotations

from scaling.models.families import family_for
from scaling.plan.memory import GB, ModelShape, estimate, lever_for, shape_of
from scaling.sweep.study import Study, Trial


def trial_shape(trial: Trial) -> ModelShape | str:
    """The model's shape, or why it is unknown (a hub name without network, say)."""
    encoder = trial.config.encoder
    family = family_for(encoder.model)
    try:
        if family.name.startswith("tiny"):  # random models: built (kilobytes), not read
            model = family.instantiate(encoder, ("a b c",), 0)
            counts = model.parameter_counts()
            cfg = model.backbone.config
            return ModelShape(counts["total"], counts["total"] - counts["non_embedding"], cfg.hidden_size,
                              cfg.num_hidden_layers, cfg.num_attention_heads)
        return shape_of(family.weights_path(encoder), encoder.num_layers, trust_remote_code=encoder.trust_remote_code)
    except (OSError, ValueError) as exc:
        return f"unknown ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"


def budget_lines(study: Study) -> tuple[list[str], list[str]]:
    """(one line per trial, refusals for trials over ``resources.gpu_memory_gb``)."""
    res = study.resources
    kwargs = {"tflops": res.gpu_tflops}
    lines, refusals, shapes = [], [], {}
    for trial in study.trials:
        key = (trial.config.encoder.model, trial.config.encoder.num_layers)
        if key not in shapes:
            shapes[key] = trial_shape(trial)
        shape = shapes[key]
        if isinstance(shape, str):
            lines.append(f"  {trial.trial_id}  memory {shape}")
            continue
        est = estimate(shape, trial.config, **kwargs)
        lines.append(f"  {trial.trial_id}  {shape.non_embedding / 1e6:.1f}M non-embedding parameters: {est.describe()}")
        if res.gpu_memory_gb is not None and est.total / GB > res.gpu_memory_gb:
            refusals.append(f"trial {trial.trial_id} ({trial.axes['size']}, {trial.axes['recipe']}) needs "
                            f"~{est.total / GB:.1f} GB per worker, more than resources.gpu_memory_gb "
                            f"{res.gpu_memory_gb:g}: {lever_for(trial.config, shape, res.gpu_memory_gb, **kwargs)}")
    return lines, refusals
