"""Quality against the number of training languages: one curve per recipe for every macro
(setting, metric) of a benchmark, each point a mean over seeds with its interval, and a
breakpoint fit per recipe (``analysis.breakpoint``)."""

from __future__ import annotations

import pandas as pd

from analysis.breakpoint import BreakpointFit, fit_breakpoint
from analysis.curves import line_rows, metric_curve
from analysis.fits import FitError
from analysis.results import StudyResults
from scaling.eval.metrics import lower_is_better


def macro_metrics(results: StudyResults, benchmark: str) -> list[tuple[str, str]]:
    """The (setting, metric) pairs with macro rows (over all languages) in a benchmark."""
    rows = results.select(benchmark=benchmark, query_lang="*", candidate_lang="*")
    return sorted(set(zip(rows["setting"], rows["metric"])))


def language_curves(results: StudyResults, *, benchmark: str | None = None) -> pd.DataFrame:
    """Every macro metric of the benchmark against the number of training languages, one line per
    recipe (and size, where sizes vary), with ``setting`` and ``metric`` columns."""
    benchmark = benchmark or results.metrics["benchmark"].iloc[0]
    curves = []
    for setting, metric in macro_metrics(results, benchmark):
        curve = metric_curve(results, x="languages", benchmark=benchmark, setting=setting, metric=metric)
        curves.append(curve.assign(benchmark=benchmark, setting=setting, metric=metric))
    if not curves:
        raise ValueError(f"no macro rows for benchmark {benchmark!r}")
    return pd.concat(curves, ignore_index=True)


def breakpoint_fits(results: StudyResults, *, benchmark: str | None = None, setting: str = "multi",
                    metric: str = "map", scale: str = "log", n_bootstrap: int = 1000,
                    seed: int = 0) -> tuple[pd.DataFrame, dict[str, BreakpointFit | FitError]]:
    """The language curve of one metric and a breakpoint fit per line, fitted to every seed's
    point; a line that cannot be fitted maps to the ``FitError`` that says why."""
    curve = metric_curve(results, x="languages", benchmark=benchmark, setting=setting, metric=metric)
    points = results.select(benchmark=curve.attrs["benchmark"], setting=setting, metric=metric, query_lang="*",
                            candidate_lang="*")
    fits: dict[str, BreakpointFit | FitError] = {}
    for line in curve["line"].unique():
        mine = line_rows(points, curve, line)
        try:
            fits[line] = fit_breakpoint(mine["num_languages"], mine["value"], scale=scale, n_bootstrap=n_bootstrap,
                                        seed=seed, lower_is_better=lower_is_better(metric))
        except FitError as exc:
            fits[line] = exc
    return curve, fits
