"""Per-query retrieval metrics from the ranks of the relevant candidates.

Input everywhere: ``ranks`` (Q, R), the 1-based rank of each relevant candidate in the ranking
being scored, 0 where the slot is padding or the candidate is outside the pool; ``grades`` (Q, R)
the relevance grades. Ranks are distinct within a row (ties are broken before this point), so
"relevant items ranked at or above r" is r's position among the sorted ranks.
"""

from __future__ import annotations

import numpy as np


def _sorted(ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks sorted ascending per row with absent slots last, and the count of present ones."""
    present = ranks > 0
    big = np.where(present, ranks, np.iinfo(np.int64).max)
    return np.sort(big, axis=1), present.sum(axis=1)


def average_precision(ranks: np.ndarray) -> np.ndarray:
    """AP over the full ranking: mean over relevant items of (relevant at or above) / rank."""
    s, n = _sorted(ranks)
    position = np.arange(1, s.shape[1] + 1)[None, :]
    present = position <= n[:, None]
    prec = np.where(present, position / np.where(present, s, 1), 0.0)
    return np.divide(prec.sum(axis=1), n, out=np.zeros(len(n)), where=n > 0)


def recall_at(ranks: np.ndarray, k: int) -> np.ndarray:
    n = (ranks > 0).sum(axis=1)
    hits = ((ranks > 0) & (ranks <= k)).sum(axis=1)
    return np.divide(hits, n, out=np.zeros(len(n)), where=n > 0)


def mrr_at(ranks: np.ndarray, k: int) -> np.ndarray:
    s, n = _sorted(ranks)
    first = s[:, 0]
    return np.where((n > 0) & (first <= k), 1.0 / np.maximum(first, 1), 0.0)


def ndcg_at(ranks: np.ndarray, grades: np.ndarray, k: int) -> np.ndarray:
    """nDCG@k with linear gains (the relevance grade), log2 discount: trec_eval's ndcg_cut."""
    present = ranks > 0
    in_top = present & (ranks <= k)
    dcg = np.where(in_top, grades / np.log2(np.where(in_top, ranks, 1) + 1), 0.0).sum(axis=1)
    ideal = -np.sort(-np.where(present, grades, 0), axis=1)[:, :k]
    idcg = (ideal / np.log2(np.arange(2, ideal.shape[1] + 2))[None, :]).sum(axis=1)
    return np.divide(dcg, idcg, out=np.zeros(len(idcg)), where=idcg > 0)


def rank_distance(ranks: np.ndarray) -> np.ndarray:
    """Largest minus smallest rank among a query's relevant candidates (language bias)."""
    present = ranks > 0
    hi = np.where(present, ranks, 0).max(axis=1)
    lo = np.where(present, ranks, np.iinfo(np.int64).max).min(axis=1)
    return np.where(present.any(axis=1), hi - lo, 0).astype(np.float64)
