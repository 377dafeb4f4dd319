"""Hybrid minus each baseline, paired across seeds, with a bootstrap interval per grid cell.

Pairing: a hybrid trial and a baseline trial are compared only when they share every grid
coordinate (model size, languages, benchmark, setting, query and candidate language, metric) and
the seed, so seed effects on data order and initialisation cancel in each difference.
"""

from __future__ import annotations

import pandas as pd

from analysis.uncertainty import DEFAULT_RESAMPLES, mean_ci
from scaling.eval.metrics import lower_is_better

NOT_KEYS = ("trial_id", "value", "study", "recipe", "strategy", "alpha", "seed")


def compare_recipes(frame: pd.DataFrame, *, treatment: str | None = None, baselines: list[str] | None = None,
                    confidence: float = 0.95, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """One row per (cell, treatment, baseline): ``n_pairs``, ``diff`` (mean of treatment minus
    baseline over paired seeds), ``ci_low``/``ci_high``, ``excludes_zero`` and ``better`` (which
    recipe the interval favours, taking the metric's direction into account, or "neither").

    ``treatment``: a recipe name (default: every hybrid recipe); ``baselines``: recipe names
    (default: every other recipe)."""
    if frame.empty:
        raise ValueError("compare_recipes: no rows (check the select() filters)")
    recipes = sorted(frame["recipe"].unique())
    treatments = [treatment] if treatment else [r for r in recipes if r.startswith("hybrid")]
    if not treatments or any(t not in recipes for t in treatments):
        raise ValueError(f"compare_recipes: treatment {treatment or 'hybrid'!r} not among the recipes {recipes}")
    keys = [c for c in frame.columns if c not in NOT_KEYS and not c.endswith("_params")]
    rows = []
    for t in treatments:
        for b in baselines or [r for r in recipes if r not in treatments]:
            if b not in recipes:
                raise ValueError(f"compare_recipes: baseline {b!r} not among the recipes {recipes}")
            left = frame[frame["recipe"] == t].set_index(keys + ["seed"])["value"]
            right = frame[frame["recipe"] == b].set_index(keys + ["seed"])["value"]
            paired = pd.concat({"t": left, "b": right}, axis=1, join="inner").reset_index()
            for cell, group in paired.groupby(keys, dropna=False, sort=True):
                diffs = (group["t"] - group["b"]).to_numpy(dtype=float)
                low, high = mean_ci(diffs, confidence=confidence, n_resamples=n_resamples, seed=seed)
                excludes = bool(low > 0 or high < 0)
                cell = dict(zip(keys, cell if isinstance(cell, tuple) else (cell,)))
                lower_better = lower_is_better(str(cell.get("metric")))
                better = "neither"
                if excludes:
                    better = t if (diffs.mean() < 0) == lower_better else b
                rows.append({**cell, "treatment": t, "baseline": b, "n_pairs": len(diffs), "diff": diffs.mean(),
                             "ci_low": low, "ci_high": high, "excludes_zero": excludes, "better": better})
    if not rows:
        raise ValueError("compare_recipes: no trial pairs share their grid cell and seed")
    return pd.DataFrame(rows)
