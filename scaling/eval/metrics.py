"""Per-query retrieval metrics from the ranks of the relevant candidates.

Input everywhere: ``ranks`` (Q, R), the 1-based rank of each relevant candidate in the ranking
being scored, 0 where the slot is padding or the candidate is outside the pool; ``grades`` (Q, R)
the relevance grades. Ranks are distinct within a row (ties are broken before this point), so
"relevant items ranked at or above r" is r's position among the sorted ranks.

``METRICS`` is the one spec of every metric's label and direction (higher or lower is better):
evaluation, the sweep's records and the analysis package all read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.records import HELDOUT_KINDS, heldout_column


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


def precision_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """Relevant among the top k, over k (trec_eval's P_k: k counts even where the pool is smaller)."""
    return ((ranks > 0) & (ranks <= k)).sum(axis=1) / float(k)


def f1_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """Harmonic mean of precision@k and recall@k (0 where both are 0)."""
    p, r = precision_at(ranks, k), recall_at(ranks, k)
    return np.divide(2 * p * r, p + r, out=np.zeros(len(p)), where=(p + r) > 0)


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


# ---- the metric spec: every metric's direction and label, for evaluation and analysis alike ----
@dataclass(frozen=True)
class MetricSpec:
    """A metric family: its label and direction; ``@k`` families take a cut-off (``recall@10``)."""

    family: str
    label: str
    higher_is_better: bool = True
    at_k: bool = False

    def label_for(self, name: str) -> str:
        return self.label + name[len(self.family):] if self.at_k else self.label


METRICS: dict[str, MetricSpec] = {s.family: s for s in (
    MetricSpec("map", "mAP"),
    MetricSpec("recall", "recall", at_k=True),
    MetricSpec("precision", "precision", at_k=True),
    MetricSpec("f1", "F1", at_k=True),
    MetricSpec("ndcg", "nDCG", at_k=True),
    MetricSpec("mrr", "MRR", at_k=True),
    MetricSpec("accuracy", "accuracy", at_k=True),
    MetricSpec("rank_distance", "rank distance (lower is better)", higher_is_better=False),
    MetricSpec("queries", "queries scored"),
    MetricSpec("loss", "training loss (InfoNCE)", higher_is_better=False),
    *(MetricSpec(heldout_column(kind), f"held-out loss, {kind.upper().replace('X', 'X-', 1)} batches",
                 higher_is_better=False) for kind in HELDOUT_KINDS),
)}
RANKING_FAMILIES = ("map", "recall", "precision", "f1", "ndcg", "mrr", "rank_distance")  # what evaluation computes


def metric_spec(name: str) -> MetricSpec:
    """The spec of a metric name such as ``map``, ``ndcg@10`` or ``heldout_loss_xy``."""
    family = name.split("@", 1)[0]
    if family not in METRICS:
        raise KeyError(f"unknown metric {name!r}; known families: {sorted(METRICS)}")
    return METRICS[family]


def lower_is_better(name: str) -> bool:
    try:
        return not metric_spec(name).higher_is_better
    except KeyError:
        return False


def metric_label(name: str) -> str:
    try:
        return metric_spec(name).label_for(name)
    except KeyError:
        return name
