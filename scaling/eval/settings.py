"""Mono-, cross- and multilingual settings over one rank table, as tidy metric records.

Following the method notes: monolingual = queries in X against the pool restricted to X;
cross-lingual = queries in X against the pool restricted to Y != X; multilingual = queries in X
against the whole pool. mAP is the mean over a pair's queries, then the macro-average over query
languages (mono, multi) or language pairs (cross). Rank distance exists only in the merged pool.
A query with no relevant candidate in a restricted pool does not count for that pair (MLQA-R:
not every question exists in every language); the count of queries used is a record of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from scaling.eval import metrics
from scaling.eval.ranks import RankTable

SETTINGS = ("mono", "cross", "multi")
ALL = "*"  # language value of macro-average rows


@dataclass(frozen=True)
class MetricRecord:
    benchmark: str
    setting: str
    query_lang: str
    candidate_lang: str
    metric: str
    value: float


@dataclass
class SettingsResult:
    records: list[MetricRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _pairs(table: RankTable, setting: str) -> Iterable[tuple[str, str | None]]:
    q_langs = sorted(set(table.query_langs))
    c_langs = table.candidate_langs
    for x in q_langs:
        if setting == "multi":
            yield x, None
        for y in c_langs:
            if (setting == "mono" and y == x) or (setting == "cross" and y != x):
                yield x, y


def per_query_metrics(ranks: np.ndarray, grades: np.ndarray, ks: Sequence[int], pool_size: int,
                      with_rank_distance: bool) -> tuple[dict[str, np.ndarray], list[int]]:
    """Metric name -> per-query values, and the k values skipped because k exceeds the pool."""
    out = {"map": metrics.average_precision(ranks)}
    skipped = [k for k in ks if k > pool_size]
    for k in ks:
        if k > pool_size:
            continue
        out[f"recall@{k}"] = metrics.recall_at(ranks, k)
        out[f"precision@{k}"] = metrics.precision_at(ranks, k)
        out[f"f1@{k}"] = metrics.f1_at(ranks, k)
        out[f"ndcg@{k}"] = metrics.ndcg_at(ranks, grades, k)
        out[f"mrr@{k}"] = metrics.mrr_at(ranks, k)
    if with_rank_distance:
        out["rank_distance"] = metrics.rank_distance(ranks)
    return out, skipped


def evaluate_settings(table: RankTable, benchmark: str, *, settings: Sequence[str] = SETTINGS,
                      ks: Sequence[int] = (1, 10, 100)) -> SettingsResult:
    bad = [s for s in settings if s not in SETTINGS]
    if bad:
        raise ValueError(f"unknown evaluation setting(s) {bad}; choose from {SETTINGS}")
    if any(int(k) < 1 for k in ks):
        raise ValueError(f"evaluation k values must be >= 1, got {list(ks)}")
    result = SettingsResult()
    lang_index = {lang: i for i, lang in enumerate(table.candidate_langs)}
    rows_of = {x: np.flatnonzero(table.query_langs == x) for x in sorted(set(table.query_langs))}
    for setting in settings:
        pair_values: dict[str, list[float]] = {}
        skipped_ks: set[int] = set()
        n_pairs = 0
        for x, y in _pairs(table, setting):
            rows = rows_of[x]
            li = None if y is None else lang_index[y]
            ranks, grades = table.ranks_for(rows, li)
            used = (ranks > 0).any(axis=1)
            if not used.any():
                result.notes.append(f"{benchmark} {setting} {x}->{y}: no query has a relevant candidate; pair skipped")
                continue
            pool = table.pool_size(rows, li)
            values, skipped = per_query_metrics(ranks[used], grades[used], ks, pool, setting == "multi")
            skipped_ks.update(skipped)
            n_pairs += 1
            cand = ALL if y is None else y
            for name, per_query in values.items():
                value = float(per_query.mean())
                result.records.append(MetricRecord(benchmark, setting, x, cand, name, value))
                pair_values.setdefault(name, []).append(value)
            result.records.append(MetricRecord(benchmark, setting, x, cand, "queries", float(used.sum())))
        for name, values in pair_values.items():
            if len(values) < n_pairs:  # a macro-average over only some pairs would mislead
                continue
            result.records.append(MetricRecord(benchmark, setting, ALL, ALL, name, float(np.mean(values))))
        if skipped_ks:
            result.notes.append(f"{benchmark} {setting}: metrics at k={sorted(skipped_ks)} not reported where "
                                "k exceeds the candidate pool")
    return result
