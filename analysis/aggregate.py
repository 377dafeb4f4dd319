"""Aggregate metric rows over seeds: mean, standard deviation and a bootstrap interval per cell."""

from __future__ import annotations

import pandas as pd

from analysis.uncertainty import DEFAULT_RESAMPLES, mean_ci

# Columns that differ between seeds of one grid cell, and so are never grouping keys.
PER_SEED = ("trial_id", "seed", "value", "study")


def aggregate_seeds(frame: pd.DataFrame, by: list[str] | None = None, *, value: str = "value",
                    confidence: float = 0.95, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """One row per cell (``by``; default: every column except trial id, seed and value) with
    ``n`` (seeds), ``mean``, ``std`` (sample, ddof=1), ``ci_low`` and ``ci_high``."""
    if frame.empty:
        raise ValueError("aggregate_seeds: no rows (check the select() filters)")
    by = list(by) if by is not None else [c for c in frame.columns if c not in PER_SEED and c != value]
    missing = [c for c in by + [value] if c not in frame]
    if missing:
        raise KeyError(f"aggregate_seeds: no column(s) {missing}; columns are {sorted(frame.columns)}")
    rows = []
    for key, group in frame.groupby(by, dropna=False, sort=True):
        values = group[value].to_numpy(dtype=float)
        low, high = mean_ci(values, confidence=confidence, n_resamples=n_resamples, seed=seed)
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "n": len(values),
                     "mean": values.mean(), "std": values.std(ddof=1) if len(values) > 1 else float("nan"),
                     "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)
