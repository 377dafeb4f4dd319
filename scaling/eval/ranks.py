"""Exact ranks of the relevant candidates, without sorting the pool.

Every metric we report (AP over the full ranking, recall, nDCG, MRR, rank distance) needs only
the rank of each relevant candidate. rank = 1 + the number of candidates ahead of it, so one pass
over the pool that counts, for each relevant candidate, the candidates ahead of it in its own
language and in the whole pool gives the ranks in *every* setting at once: restricted to the
relevant candidate's language Y (mono, cross), rank = 1 + ahead in Y; in the merged pool,
rank = 1 + ahead overall. Two counters per (query, relevant candidate), whatever the number of
languages (a 205-language pool would need 205 per pair otherwise).

Tie rule (the same as trec_eval, so pytrec_eval agrees even on ties): candidates are ordered by
score, descending, then by candidate id, descending (string order); ``counting.count_block``.

A benchmark whose queries are also candidates (``RetrievalBenchmark.excluded``) ranks each query
without its own candidate: it is never ahead, and the pool that query sees is one smaller.

Memory: queries are processed ``query_chunk`` at a time against the whole pool's scores for that
chunk (``query_chunk x pool`` scores and their sorted copies, set by ``memory_mb``). For pools that
do not fit, ``streaming.stream_ranks`` reads the candidates chunk by chunk and gives the same table.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from scaling.data.benchmark import RetrievalBenchmark
from scaling.data.errors import DataError
from scaling.eval.counting import BYTES_PER_SCORE, count_block, segments_of


@dataclass(frozen=True)
class RankTable:
    """For each query (row) and each of its relevant candidates (column, padded with -1)."""

    query_ids: tuple[str, ...]
    query_langs: np.ndarray  # (Q,) str
    candidate_langs: tuple[str, ...]  # the language axis
    pool_sizes: np.ndarray  # (L,) candidates per language
    rel_lang: np.ndarray  # (Q, R) index into candidate_langs, -1 = padding
    rel_grade: np.ndarray  # (Q, R) relevance grade, 0 = padding
    ahead_own: np.ndarray  # (Q, R) candidates of the relevant one's language ranked ahead of it
    ahead_all: np.ndarray  # (Q, R) candidates of the whole pool ranked ahead of it
    excluded_lang: np.ndarray  # (Q,) language index of the query's own (excluded) candidate, -1 = none

    def ranks_in(self, lang_index: int | None) -> np.ndarray:
        """(Q, R) ranks within one candidate language (None: the merged pool); 0 where absent."""
        if lang_index is None:
            return np.where(self.rel_lang >= 0, 1 + self.ahead_all, 0)
        return np.where(self.rel_lang == lang_index, 1 + self.ahead_own, 0)

    def ranks_for(self, rows: np.ndarray, lang_index: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(ranks, grades) of queries ``rows`` in one pool, keeping only the slots that hold a
        relevant candidate of that pool for some row (a 205-language pool has 204 slots per
        query but one per language)."""
        lang = self.rel_lang[rows]
        present = lang >= 0 if lang_index is None else lang == lang_index
        cols = np.flatnonzero(present.any(axis=0))
        present = present[:, cols]
        ahead = (self.ahead_all if lang_index is None else self.ahead_own)[rows][:, cols]
        return np.where(present, 1 + ahead, 0), self.rel_grade[rows][:, cols]

    def pool_size(self, rows: np.ndarray, lang_index: int | None) -> int:
        """The smallest pool any of ``rows``'s queries is ranked in (its own candidate excluded)."""
        excluded = self.excluded_lang[rows]
        if lang_index is None:
            return int(self.pool_sizes.sum()) - int((excluded >= 0).any())
        return int(self.pool_sizes[lang_index]) - int((excluded == lang_index).any())


@dataclass(frozen=True)
class Judgements:
    """The relevant candidates of every query as padded slots (what both rankers start from)."""

    ids: np.ndarray  # (Q, R) object: candidate ids, "" = padding
    grades: np.ndarray  # (Q, R) int64, 0 = padding
    excluded: tuple[str | None, ...]  # (Q,) the query's own candidate id, or None

    @classmethod
    def of(cls, query_ids, relevance, excluded) -> "Judgements":
        width = max(len(relevance[q]) for q in query_ids)
        ids = np.full((len(query_ids), width), "", dtype=object)
        grades = np.zeros((len(query_ids), width), dtype=np.int64)
        for i, qid in enumerate(query_ids):
            for j, (cid, grade) in enumerate(sorted(relevance[qid].items())):
                ids[i, j], grades[i, j] = cid, grade
        return cls(ids, grades, tuple(excluded.get(q) for q in query_ids))

    @property
    def valid(self) -> np.ndarray:
        return self.grades > 0


RANK_BACKENDS = ("exact", "faiss")


@functools.lru_cache(maxsize=1)
def _gpu_resources():
    import faiss

    return faiss.StandardGpuResources()


def score_block(queries: torch.Tensor, candidates: torch.Tensor, backend: str = "exact") -> torch.Tensor:
    """(b, n) inner products: a torch matmul, or faiss's exact inner-product kernel (the one
    ``IndexFlatIP`` searches with; faiss-gpu's where the tensors are on a GPU)."""
    if backend == "exact":
        return queries @ candidates.T
    if backend != "faiss":
        raise ValueError(f"ranking backend must be one of {RANK_BACKENDS}, not {backend!r}")
    import faiss

    if queries.device.type == "cuda" and hasattr(faiss, "StandardGpuResources"):  # faiss-gpu installed
        out = faiss.pairwise_distance_gpu(_gpu_resources(), np.ascontiguousarray(queries.cpu().numpy()),
                                          np.ascontiguousarray(candidates.cpu().numpy()), metric=faiss.METRIC_INNER_PRODUCT)
        return torch.from_numpy(out).to(queries.device)
    scores = faiss.pairwise_distances(np.ascontiguousarray(queries.cpu().numpy()), np.ascontiguousarray(candidates.cpu().numpy()),
                                      metric=faiss.METRIC_INNER_PRODUCT)
    return torch.from_numpy(scores).to(queries.device)


def _pick_device(device: str | None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def check_embeddings(name: str, query_emb: np.ndarray, cand_emb: np.ndarray, n_q: int, n_c: int | None) -> None:
    if query_emb.ndim != 2 or cand_emb.ndim != 2:
        raise DataError(f"embeddings must be 2-D, got {query_emb.shape} and {cand_emb.shape}", file=name)
    if query_emb.shape[0] != n_q or (n_c is not None and cand_emb.shape[0] != n_c):
        raise DataError(f"embedding rows ({query_emb.shape[0]} queries, {cand_emb.shape[0]} candidates) do not match "
                        f"the benchmark ({n_q} queries, {n_c} candidates)", file=name)
    if query_emb.shape[1] != cand_emb.shape[1]:
        raise DataError(f"query embeddings have dimension {query_emb.shape[1]} but candidate embeddings "
                        f"{cand_emb.shape[1]}", file=name)


def compute_ranks(bench: RetrievalBenchmark, query_emb: np.ndarray, cand_emb: np.ndarray, *,
                  query_chunk: int | None = None, memory_mb: int = 256,
                  device: str | None = None, backend: str = "exact") -> RankTable:
    """Exact ranks of all relevant candidates; embeddings are in the benchmark's row order."""
    n_q, n_c = len(bench.queries), len(bench.candidates)
    check_embeddings(bench.name, query_emb, cand_emb, n_q, n_c)
    dev = _pick_device(device)

    # Candidates grouped by language, so each language is one contiguous column range.
    c_ids = np.asarray(bench.candidates.column("id").to_pylist(), dtype=object)
    c_langs = np.asarray(bench.candidates.column("lang").to_pylist(), dtype=object)
    langs = tuple(sorted(set(c_langs)))
    lang_of = {lang: i for i, lang in enumerate(langs)}
    c_lang_idx = np.fromiter((lang_of[x] for x in c_langs), dtype=np.int64, count=n_c)
    perm = np.argsort(c_lang_idx, kind="stable")
    inv_perm = np.empty(n_c, dtype=np.int64)
    inv_perm[perm] = np.arange(n_c)
    id_order = np.empty(n_c, dtype=np.int64)
    id_order[np.argsort(c_ids, kind="stable")] = np.arange(n_c)  # position in ascending id order
    keys_sorted = id_order[perm]
    segments = segments_of(c_lang_idx[perm])
    col_of = {cid: int(inv_perm[i]) for i, cid in enumerate(c_ids)}  # id -> column in the grouped pool

    q_ids = bench.queries.column("id").to_pylist()
    judged = Judgements.of(q_ids, bench.relevance, bench.excluded)
    valid = judged.valid
    rel_col = np.array([[col_of[c] if c else -1 for c in row] for row in judged.ids], dtype=np.int64).reshape(valid.shape)
    rel_lang = np.where(valid, c_lang_idx[perm][np.maximum(rel_col, 0)], -1)
    rel_key = np.where(valid, keys_sorted[np.maximum(rel_col, 0)], -1)
    excl_col = np.array([col_of[c] if c is not None else -1 for c in judged.excluded], dtype=np.int64)
    excluded_lang = np.where(excl_col >= 0, c_lang_idx[perm][np.maximum(excl_col, 0)], -1)

    if query_chunk is None:
        query_chunk = max(1, min(n_q, (memory_mb << 20) // (BYTES_PER_SCORE * n_c)))
    # Pools built language by language (LAReQA, Tatoeba) are already grouped: no copy needed.
    grouped = bool(np.array_equal(perm, np.arange(n_c)))
    cand_sorted = torch.from_numpy(np.ascontiguousarray(cand_emb if grouped else cand_emb[perm], dtype=np.float32)).to(dev)
    ahead_own = np.zeros(valid.shape, dtype=np.int64)
    ahead_all = np.zeros(valid.shape, dtype=np.int64)
    queries = torch.from_numpy(np.ascontiguousarray(query_emb, dtype=np.float32))
    for q0 in range(0, n_q, query_chunk):
        q1 = min(n_q, q0 + query_chunk)
        scores = score_block(queries[q0:q1].to(dev), cand_sorted, backend)  # (b, N): reused for thresholds
        cols = torch.from_numpy(np.maximum(rel_col[q0:q1], 0)).to(dev)
        thr = torch.gather(scores, 1, cols)
        thr = torch.where(torch.from_numpy(valid[q0:q1]).to(dev), thr, torch.full_like(thr, float("inf")))
        own, alls = count_block(scores, segments, keys_sorted, thr, rel_lang[q0:q1], rel_key[q0:q1],
                                valid[q0:q1], excl_col[q0:q1])
        ahead_own[q0:q1], ahead_all[q0:q1] = own, alls
    ahead_own[~valid] = 0
    ahead_all[~valid] = 0
    return RankTable(tuple(q_ids), np.asarray(bench.queries.column("lang").to_pylist(), dtype=object), langs,
                     np.bincount(c_lang_idx, minlength=len(langs)), rel_lang, judged.grades, ahead_own, ahead_all,
                     excluded_lang)
