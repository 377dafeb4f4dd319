"""Per-language views: the query-language x candidate-language matrix, and per-language scores
split into languages seen in training and zero-shot languages: per language over a set of trials
(``per_language_scores``), and per trial, macro over each part (``seen_unseen_scores``), which is
what a language axis needs, since there a language is zero-shot at small k and seen at large k."""

from __future__ import annotations

import json

import pandas as pd

from analysis.resource import canonical_or_raw, cell_columns, group_macros, per_language_rows
from analysis.results import StudyResults
from analysis.uncertainty import DEFAULT_RESAMPLES


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


SEEN, ZERO_SHOT, UNKNOWN = "seen", "zero-shot", "unknown"


def seen_flags(results: StudyResults, rows: pd.DataFrame) -> pd.Series:
    """Per row, whether its query language is among its own trial's training languages ("seen"),
    not ("zero-shot"), or the trial's training languages are not recorded ("unknown"). Codes are
    compared as canonical tags, so a trial trained on ``deu`` sees ``de``."""
    trained = {}
    for t in rows["trial_id"].unique():
        langs = results.training_languages(t)
        trained[t] = None if langs is None else {canonical_or_raw(c) for c in langs}
    return pd.Series([UNKNOWN if trained[t] is None else SEEN if canonical_or_raw(q) in trained[t] else ZERO_SHOT
                      for t, q in zip(rows["trial_id"], rows["query_lang"])], index=rows.index)


def seen_unseen_scores(results: StudyResults, frame: pd.DataFrame, *, setting: str = "multi", metric: str = "map",
                       n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """The macro ``metric`` over the evaluation languages each trial trained on ("seen") and over
    the rest ("zero-shot"), per cell (size, language count, recipe), mean and interval over seeds.
    On a language axis a language moves from zero-shot to seen as k grows: the split is per trial."""
    rows = per_language_rows(frame, setting=setting, metric=metric)
    out = group_macros(rows, seen_flags(results, rows), n_resamples=n_resamples, seed=seed)
    order = {SEEN: 0, ZERO_SHOT: 1, UNKNOWN: 2}
    out = out.assign(_o=out["group"].map(order)).sort_values(cell_columns(out) + ["_o"])
    return out.drop(columns="_o").reset_index(drop=True)


def per_language_seen(results: StudyResults, frame: pd.DataFrame, *, setting: str = "multi",
                      metric: str = "map") -> pd.DataFrame:
    """Per cell and evaluation language: mean, std and count over seeds, and seen / zero-shot."""
    rows = per_language_rows(frame, setting=setting, metric=metric)
    rows = rows.assign(seen=seen_flags(results, rows))
    cells = cell_columns(rows)
    return rows.groupby(cells + ["query_lang", "seen"], dropna=False, sort=True)["value"].agg(
        ["mean", "std", "count"]).reset_index()
