"""A synthetic study of known shape, written in exactly the format ``jobs/sweep.py`` writes
(through the same ``ResultStore``), for tests, the notebook and trying the report without a GPU.

Multilingual error (1 - mAP) follows ``E + A / N**alpha`` in non-embedding parameters N, minus a
planted advantage per recipe, plus ``language_slope`` (negative: degradation) per training language beyond
``slope_from`` languages (``language_gain`` per language before it; with ``language_scale="log"``
both are per doubling of the languages), with Gaussian seed noise. Zero-shot languages score
0.08 below seen ones and ``language_offsets`` shifts chosen languages, both centred so that the
macro stays as planted. Mono and cross-lingual mAP, per-language
rows, training curves and held-out losses follow from it, so every view of the report has data.

``python -m analysis.synthetic OUT`` writes the default study to ``OUT/synthetic``.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field

import numpy as np

from scaling.records import HELDOUT_COLUMNS, TrialRecord, axis_types
from scaling.records import trial_id as study_trial_id
from scaling.samplers import SamplerConfig
from scaling.store import ResultStore

LANGUAGES = ("en", "de", "es", "fr", "ru", "zh", "ar", "hi", "th", "tr", "vi", "el")


@dataclass(frozen=True)
class SyntheticStudy:
    name: str = "synthetic"
    sizes: tuple[tuple[str, int], ...] = (("xs", 2_000_000), ("s", 8_000_000), ("m", 30_000_000),
                                          ("l", 120_000_000), ("xl", 400_000_000))
    recipes: tuple[str, ...] = ("xx", "xy", "hybrid")
    advantage: dict[str, float] = field(default_factory=lambda: {"hybrid": 0.03, "xx": 0.0, "xy": 0.0})
    language_counts: tuple[int, ...] = (8,)
    language_slope: float = 0.0  # change in multilingual mAP per language beyond slope_from
    slope_from: int = 8
    language_gain: float = 0.0  # change per language below slope_from
    language_scale: str = "linear"  # "log": slopes per doubling of the number of languages
    languages: tuple[str, ...] = LANGUAGES  # the training order: the first k, then the zero-shot ones
    language_offsets: dict[str, float] = field(default_factory=dict)  # planted per-language shifts
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    E: float = 0.25
    A: float = 40.0
    alpha: float = 0.3
    noise: float = 0.01  # standard deviation of seed noise on mAP
    zero_shot_languages: int = 2  # evaluated, never trained on
    steps: int = 100
    seed: int = 0
    training_rows: dict[str, int] = field(default_factory=dict)  # rows per language recorded as the training data


def write_synthetic_study(location: str, spec: SyntheticStudy = SyntheticStudy()) -> ResultStore:
    store = ResultStore(location.rstrip("/") + "/" + spec.name)
    rng = np.random.default_rng(spec.seed)
    if spec.language_scale not in ("linear", "log"):
        raise ValueError(f"language_scale must be 'linear' or 'log', not {spec.language_scale!r}")
    max_k = max(spec.language_counts)
    if max_k + spec.zero_shot_languages > len(spec.languages):
        raise ValueError(f"at most {len(spec.languages) - spec.zero_shot_languages} training languages")
    evaluated = tuple(spec.languages[:max_k + spec.zero_shot_languages])
    cells = []
    for (label, params) in spec.sizes:
        for k in spec.language_counts:
            languages = list(spec.languages[:k])
            for recipe in spec.recipes:
                for seed in spec.seeds:
                    sampler = SamplerConfig.of(recipe, alpha=0.5) if recipe == "hybrid" else SamplerConfig.of(recipe)
                    axes = {"model": "synthetic", "size": label, "num_layers": None, "strategy": recipe,
                            "alpha": 0.5 if recipe == "hybrid" else None, "recipe": sampler.recipe,
                            "languages": languages, "num_languages": k, "seed": seed}
                    cells.append((axes, params, recipe, k, languages))
    types = axis_types([c[0] for c in cells])
    trials = []
    for axes, params, recipe, k, languages in cells:
        trial_id = study_trial_id(axes)
        trials.append({"trial_id": trial_id, "axes": axes})
        error = spec.E + spec.A * params ** -spec.alpha
        multi = 1 - error + spec.advantage.get(recipe, 0.0) + language_effect(spec, k) + rng.normal(0, spec.noise)
        _write_trial(store, trial_id, axes, params, multi, languages, evaluated, spec, rng, types)
    study = {"config": {"study": {"name": spec.name, "description": "synthetic study"}, "synthetic": asdict(spec)},
             "trials": trials}
    if spec.training_rows:
        study["training_data"] = [{"sources": ["synthetic"], "languages": list(spec.training_rows),
                                   "composition": {"synthetic": dict(spec.training_rows)}}]
    store.write_json("study.json", study)
    return store


def language_effect(spec: SyntheticStudy, k: int) -> float:
    """The planted change of multilingual mAP at k training languages (0 at ``slope_from``)."""
    d = np.log2(k / spec.slope_from) if spec.language_scale == "log" else k - spec.slope_from
    return float(spec.language_gain * min(d, 0) + spec.language_slope * max(d, 0))


def _write_trial(store: ResultStore, trial_id: str, axes: dict, params: int, multi: float, languages: list[str],
                 evaluated: tuple[str, ...], spec: SyntheticStudy, rng: np.random.Generator, types: dict) -> None:
    rows = []

    def add(setting: str, q: str, c: str, metric: str, value: float) -> None:
        rows.append({"benchmark": "synthetic-qa", "setting": setting, "query_lang": q, "candidate_lang": c,
                     "metric": metric, "value": float(value)})

    # zero-shot languages score 0.08 below seen ones, centred so the macro average stays ``multi``
    penalty = {lang: (0.0 if lang in languages else -0.08) + spec.language_offsets.get(lang, 0.0) for lang in evaluated}
    centre = np.mean(list(penalty.values()))
    per_lang = {lang: np.clip(multi + penalty[lang] - centre + rng.normal(0, spec.noise / 2), 0, 1)
                for lang in evaluated}
    for lang, value in per_lang.items():
        add("multi", lang, "*", "map", value)
        add("mono", lang, lang, "map", np.clip(value + 0.3 + rng.normal(0, spec.noise / 2), 0, 1))
        for other in evaluated:
            if other != lang:
                add("cross", lang, other, "map",
                    np.clip((value + per_lang[other]) / 2 + 0.15 + rng.normal(0, spec.noise / 2), 0, 1))
    add("multi", "*", "*", "map", np.mean(list(per_lang.values())))
    add("multi", "*", "*", "rank_distance", 400 * (1 - multi))
    add("mono", "*", "*", "map", np.mean([r["value"] for r in rows if r["setting"] == "mono"]))
    add("cross", "*", "*", "map", np.mean([r["value"] for r in rows if r["setting"] == "cross"]))
    final = 1.2 - multi
    xx, xy = HELDOUT_COLUMNS
    curve = [{"step": int(s), "loss": float(final + 2.0 * np.exp(-s / 30)), "samples_per_s": 100.0,
              # held-out loss every 50 steps, as run.heldout_every records it
              xy: float(final + 0.5 + 2.0 * np.exp(-s / 30)) if s % 50 == 0 else None}
             for s in np.arange(10, spec.steps + 1, 10)]
    record = TrialRecord(spec.name, trial_id, axes, {"non_embedding": params, "total": params + 100_000_000}, rows,
                         curve, final={xx: float(final), xy: float(final + 0.5)}, wall_s={"train": 1.0, "evaluate": 0.1},
                         manifest_extra={"seed": axes["seed"], "languages": languages, "training_languages": languages,
                                         "synthetic": True})
    store.write_record(record, types)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.synthetic", description=__doc__.split("\n")[0])
    p.add_argument("out", help="folder (or URI) under which the study folder is written")
    p.add_argument("--name", default="synthetic")
    args = p.parse_args(argv)
    store = write_synthetic_study(args.out, SyntheticStudy(name=args.name))
    print(f"wrote {len(store.finished())} trials to {store.location}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
