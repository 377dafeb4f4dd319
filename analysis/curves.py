"""Scaling curves as tables: a metric against model size, number of training languages or
training steps, one line per recipe, each point a mean over seeds with its interval."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.aggregate import aggregate_seeds
from analysis.fits import FitError, PowerLawFit, fit_power_law
from analysis.results import StudyResults
from scaling.eval.metrics import lower_is_better
from scaling.records import HELDOUT_COLUMNS, HELDOUT_KINDS, heldout_column

# x axes a curve can use, and the column each reads
X_AXES = {"size": "non_embedding_params", "languages": "num_languages", "steps": "step"}


def _lines(frame: pd.DataFrame, x: str, value: str = "value") -> pd.DataFrame:
    """Aggregate over seeds into one row per (line, x); lines are recipes (and any other axis that
    varies, so two language counts never share a size curve)."""
    varying = [c for c in ("recipe", "num_languages", "size", "languages")
               if c in frame and c != x and frame[c].astype(str).nunique() > 1]
    if "recipe" not in varying and "recipe" in frame:
        varying.insert(0, "recipe")
    if x == "non_embedding_params":  # size labels travel with the parameter count
        varying = [c for c in varying if c != "size"]
    agg = aggregate_seeds(frame, by=varying + [x], value=value)
    agg["line"] = agg[varying].astype(str).agg(", ".join, axis=1) if varying else "all"
    return agg.sort_values(["line", x]).reset_index(drop=True)


def metric_curve(results: StudyResults, *, x: str = "size", benchmark: str | None = None, setting: str = "multi",
                 metric: str = "map", query_lang: str = "*", candidate_lang: str = "*") -> pd.DataFrame:
    """A metric from the evaluation (e.g. multilingual mAP) against ``x`` ("size" or "languages")."""
    column = X_AXES[x]
    benchmark = benchmark or results.metrics["benchmark"].iloc[0]
    frame = results.select(benchmark=benchmark, setting=setting, metric=metric, query_lang=query_lang,
                           candidate_lang=candidate_lang)
    if frame.empty:
        raise ValueError(f"no {setting}/{metric} rows for benchmark {benchmark!r} "
                         f"(benchmarks: {sorted(results.metrics['benchmark'].unique())})")
    if column not in frame or frame[column].isna().all():
        raise ValueError(f"this study has no {column!r} values (the {x} axis was not varied)")
    keep = [c for c in frame.columns if c not in ("benchmark", "setting", "metric", "query_lang", "candidate_lang",
                                                  "languages", "model", "num_layers", "strategy", "alpha",
                                                  "total_params", "study")]
    curve = _lines(frame[keep], column)
    curve.attrs["benchmark"] = benchmark
    return curve


def heldout_curve(results: StudyResults, *, kind: str = "xy", x: str = "size") -> pd.DataFrame:
    """Held-out contrastive loss at the end of training (X-X or X-Y batches) against ``x``."""
    column = heldout_column(kind)
    if column not in HELDOUT_COLUMNS:
        raise ValueError(f"kind must be one of {list(HELDOUT_KINDS)}, not {kind!r}")
    trials = results.trials.dropna(subset=[column])
    if trials.empty:
        raise ValueError(f"no trial recorded {column} (set train.data.heldout in the study)")
    keep = [c for c in ("trial_id", "seed", "recipe", "size", "num_languages", X_AXES[x], column) if c in trials]
    return _lines(trials[keep].drop_duplicates(), X_AXES[x], value=column)


def step_curve(results: StudyResults, *, column: str = "loss") -> pd.DataFrame:
    """A training-curve column (``loss``, ``samples_per_s``, ...) against step, per recipe and size."""
    curves = results.curves
    if curves.empty or column not in curves:
        raise ValueError(f"no training curves with a {column!r} column")
    keep = [c for c in ("trial_id", "seed", "recipe", "size", "num_languages", "step", column) if c in curves]
    return _lines(curves[keep].dropna(subset=[column]), "step", value=column)


def as_error(metric: str, values) -> np.ndarray:
    """What a power law fits: something that falls with size, 1 - x for scores (mAP, nDCG)."""
    values = np.asarray(values, dtype=float)
    return values if lower_is_better(metric) else 1 - values


def line_rows(points: pd.DataFrame, curve: pd.DataFrame, line: str) -> pd.DataFrame:
    """The seed-level rows behind one line of an aggregated curve."""
    group = curve[curve["line"] == line]
    mask = pd.Series(True, index=points.index)
    for col in ("recipe", "num_languages", "size", "languages"):
        if col in group and col in points and group[col].nunique() == 1:
            mask &= points[col].astype(str) == str(group[col].iloc[0])
    return points[mask]


def fit_lines(curve: pd.DataFrame, points: pd.DataFrame, *, value: str = "value", metric: str = "map",
              n_bootstrap: int = 1000, seed: int = 0) -> dict[str, PowerLawFit | FitError]:
    """A power law per line of a size curve, fitted to every seed's point (not to the means);
    a line that cannot be fitted maps to the ``FitError`` that says why. A line of exactly three
    sizes is fitted without the floor E (two parameters), which its description says; the
    saturating law needs four."""
    fits: dict[str, PowerLawFit | FitError] = {}
    for line in curve["line"].unique():
        mine = line_rows(points, curve, line)
        saturating = mine["non_embedding_params"].nunique() != 3
        try:
            fits[line] = fit_power_law(mine["non_embedding_params"], as_error(metric, mine[value]),
                                       saturating=saturating, n_bootstrap=n_bootstrap, seed=seed)
        except FitError as exc:
            fits[line] = exc
    return fits


def size_fits(results: StudyResults, *, benchmark: str | None = None, setting: str = "multi", metric: str = "map",
              n_bootstrap: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, dict[str, PowerLawFit | FitError]]:
    """The size curve of a metric and a power-law fit of its error per recipe."""
    curve = metric_curve(results, x="size", benchmark=benchmark, setting=setting, metric=metric)
    points = results.select(benchmark=curve.attrs["benchmark"], setting=setting, metric=metric, query_lang="*",
                            candidate_lang="*")
    return curve, fit_lines(curve, points, metric=metric, n_bootstrap=n_bootstrap, seed=seed)


def heldout_fits(results: StudyResults, *, kind: str = "xy", n_bootstrap: int = 1000,
                 seed: int = 0) -> tuple[pd.DataFrame, dict[str, PowerLawFit | FitError]]:
    """The held-out loss against size, and a power law per recipe."""
    curve = heldout_curve(results, kind=kind)
    column = heldout_column(kind)
    return curve, fit_lines(curve, results.trials.dropna(subset=[column]), value=column, metric=column,
                            n_bootstrap=n_bootstrap, seed=seed)
