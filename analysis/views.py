"""A benchmark's metric rows in the shape the report reads: macro rows (query and candidate
language "*") and per-language rows (a query language against "*").

Most benchmarks are written that way. A suite scored against a pivot language (Tatoeba:
accuracy@1 for X->en and en->X per language, macro rows *->en and en->*) is not: its view gives
each direction a metric name of its own (``accuracy@1 to en``, ``accuracy@1 from en``), makes the
language that is not the pivot the row's query language and the other side "*". Values are not
averaged or invented; only the labels move. ``headline`` names the (setting, metric) the report
leads with: multilingual mAP where there is one.
"""

from __future__ import annotations

import pandas as pd

ALL = "*"
MAIN_SETTINGS = (("mono", "map"), ("cross", "map"), ("multi", "map"), ("multi", "rank_distance"))


def pivot_of(frame: pd.DataFrame) -> str | None:
    """The pivot language of a benchmark's rows, or None when it has (*, *) macro rows."""
    if ((frame["query_lang"] == ALL) & (frame["candidate_lang"] == ALL)).any():
        return None
    pivots = set(frame.loc[frame["query_lang"] == ALL, "candidate_lang"]) | set(
        frame.loc[frame["candidate_lang"] == ALL, "query_lang"])
    return pivots.pop() if len(pivots) == 1 else None


def benchmark_view(frame: pd.DataFrame) -> pd.DataFrame:
    """One benchmark's rows with pivot directions relabelled (see the module docstring)."""
    pivot = pivot_of(frame)
    if pivot is None:
        return frame
    out = frame.copy()
    to_pivot = (out["candidate_lang"] == pivot) & (out["query_lang"] != pivot)
    from_pivot = (out["query_lang"] == pivot) & (out["candidate_lang"] != pivot)
    out.loc[to_pivot, "metric"] = out.loc[to_pivot, "metric"] + f" to {pivot}"
    out.loc[to_pivot, "candidate_lang"] = ALL
    out.loc[from_pivot, "metric"] = out.loc[from_pivot, "metric"] + f" from {pivot}"
    out.loc[from_pivot, "query_lang"] = out.loc[from_pivot, "candidate_lang"]
    out.loc[from_pivot, "candidate_lang"] = ALL
    return out


def with_views(metrics: pd.DataFrame) -> pd.DataFrame:
    """Every benchmark's rows through ``benchmark_view``."""
    if metrics.empty:
        return metrics
    return pd.concat([benchmark_view(rows) for _, rows in metrics.groupby("benchmark", sort=False)],
                     ignore_index=True)


def macro_pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """The (setting, metric) pairs a benchmark's results table shows: the main ones it has, else
    every pair with macro rows."""
    macro = frame[(frame["query_lang"] == ALL) & (frame["candidate_lang"] == ALL)]
    present = set(zip(macro["setting"], macro["metric"]))
    main = [p for p in MAIN_SETTINGS if p in present]
    return main or sorted(present, key=lambda p: (" to " not in p[1], p))


def headline(frame: pd.DataFrame) -> tuple[str, str]:
    """The (setting, metric) the report leads with: multilingual mAP, else the first macro pair."""
    pairs = macro_pairs(frame)
    if not pairs:
        raise ValueError(f"no macro rows for benchmark {frame['benchmark'].iloc[0]!r}" if len(frame)
                         else "no metric rows")
    return ("multi", "map") if ("multi", "map") in pairs else next(p for p in pairs if p[1] != "rank_distance")
