"""Per-language views: the query-language x candidate-language matrix, and per-language scores
split into languages seen in training and zero-shot languages."""

from __future__ import annotations

import json

import pandas as pd

from analysis.results import StudyResults


def language_matrix(frame: pd.DataFrame, metric: str = "map") -> pd.DataFrame:
    """Mean ``metric`` over the given trials for every (query language, candidate language): the
    diagonal from the mono setting, the rest from the cross setting. Rows are query languages."""
    rows = frame[(frame["metric"] == metric) & frame["setting"].isin(["mono", "cross"])
                 & (frame["query_lang"] != "*") & (frame["candidate_lang"] != "*")]
    if rows.empty:
        raise ValueError(f"language_matrix: no per-language {metric!r} rows in the mono/cross settings")
    matrix = rows.groupby(["query_lang", "candidate_lang"])["value"].mean().unstack("candidate_lang")
    order = sorted(set(matrix.index) | set(matrix.columns))
    return matrix.reindex(index=order, columns=order)


def per_language_scores(results: StudyResults, frame: pd.DataFrame, *, setting: str = "multi",
                        metric: str = "map") -> pd.DataFrame:
    """Mean ``metric`` per query language (over the given trials), with ``seen``: True when every
    one of those trials trained on the language, False when none did, None when they differ or
    a trial's training languages are unknown."""
    rows = frame[(frame["metric"] == metric) & (frame["setting"] == setting) & (frame["query_lang"] != "*")]
    if rows.empty:
        raise ValueError(f"per_language_scores: no per-language {metric!r} rows in the {setting!r} setting")
    trained = {t: results.training_languages(t) for t in rows["trial_id"].unique()}
    out = rows.groupby("query_lang")["value"].agg(["mean", "std", "count"]).reset_index()

    def seen(lang: str):
        if any(v is None for v in trained.values()):
            return None
        flags = {lang in v for v in trained.values()}
        return flags.pop() if len(flags) == 1 else None

    out["seen"] = [seen(lang) for lang in out["query_lang"]]
    out["trials"] = json.dumps(sorted(trained))
    return out.sort_values(["seen", "mean"], ascending=[False, False], na_position="last").reset_index(drop=True)
