"""Exact ranks (and top-k) against a candidate pool read chunk by chunk, in bounded memory.

``stream_ranks`` gives the same ``RankTable`` as ``ranks.compute_ranks`` on the same pool (the
same counting code and tie rule, ``counting.count_block``), but holds only the counters (two per
query and relevant candidate) plus one chunk of candidates and its scores, whatever the pool size.

Per block of queries: a first pass reads the chunks that hold the block's relevant candidates and
takes their scores from the very matmul the second pass repeats (same chunk, same queries), so a
relevant candidate ties with itself and with its exact duplicates bit for bit; the second pass
reads every chunk and adds up the candidates ahead. Where the relevant and excluded candidates
are is found once beforehand from the ids alone.

Both rankers take every score from a float32 matmul, and BLAS may round one dot product
differently in calls of different shapes (measured with MKL here: only below 16 candidates or
64 queries per call). That can move only exact or last-bit near-ties (duplicates in chunks of
another shape), never a relevant candidate against itself; the tests use small-integer
embeddings (exact arithmetic) for ties and duplicates, and random floats besides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch

from scaling.data.benchmark import RetrievalBenchmark
from scaling.data.errors import DataError
from scaling.eval.counting import BYTES_PER_SCORE, count_block, segments_of
from scaling.eval.ranks import Judgements, RankTable, _pick_device, check_embeddings, score_block
from scaling.eval.shards import CandidateChunk, ShardedPool

MIN_CHUNK_ROWS = 1024


@dataclass(frozen=True)
class QuerySet:
    """What ranking needs of a benchmark's queries: ids, languages and judgements (no candidates)."""

    ids: tuple[str, ...]
    langs: tuple[str, ...]
    relevance: Mapping[str, Mapping[str, int]]
    excluded: Mapping[str, str] = field(default_factory=dict)
    name: str = "pool"

    @classmethod
    def of(cls, bench: RetrievalBenchmark) -> "QuerySet":
        return cls(tuple(bench.queries.column("id").to_pylist()), tuple(bench.queries.column("lang").to_pylist()),
                   bench.relevance, bench.excluded, bench.name)


def plan_memory(n_queries: int, dimension: int, memory_mb: int) -> tuple[int, int]:
    """(queries per block, candidate rows per chunk) so that one chunk's work fits ``memory_mb``:
    its scores and sorted copies, and the chunk's embeddings (read, then grouped by language)."""
    budget = memory_mb << 20
    block = max(1, min(n_queries, budget // (BYTES_PER_SCORE * MIN_CHUNK_ROWS + 8 * dimension)))
    rows = max(1, budget // (BYTES_PER_SCORE * block + 8 * dimension))
    return block, rows


def _grouped(chunk: CandidateChunk) -> tuple[np.ndarray, np.ndarray]:
    """The chunk's order grouped by language, and each row's column in that order."""
    perm = np.argsort(chunk.lang, kind="stable")
    inv = np.empty(len(perm), dtype=np.int64)
    inv[perm] = np.arange(len(perm))
    return perm, inv


@dataclass
class _Located:
    rel_chunk: np.ndarray  # (Q, R) chunk index of each relevant candidate, -1 = padding
    rel_col: np.ndarray  # (Q, R) its column in the chunk grouped by language
    rel_lang: np.ndarray  # (Q, R) language index, -1 = padding
    excl_chunk: np.ndarray  # (Q,)
    excl_col: np.ndarray
    excl_lang: np.ndarray


def _locate(judged: Judgements, pool: ShardedPool, rows: int) -> _Located:
    """Where every relevant and excluded candidate is, from one read of the ids."""
    q, r = judged.grades.shape
    out = _Located(*(np.full(s, -1, dtype=np.int64) for s in ((q, r), (q, r), (q, r), (q,), (q,), (q,))))
    wanted = {}
    for qi, ri in zip(*np.nonzero(judged.valid)):
        wanted.setdefault(judged.ids[qi, ri], []).append((qi, ri))
    for qi, cid in enumerate(judged.excluded):
        if cid is not None:
            wanted.setdefault(cid, []).append((qi, -1))
    names = np.array(sorted(wanted), dtype=str)
    for chunk in pool.chunks(rows, embeddings=False):
        pos = np.minimum(np.searchsorted(names, chunk.ids), len(names) - 1)
        hits = np.flatnonzero(names[pos] == chunk.ids)
        if not len(hits):
            continue
        _, inv = _grouped(chunk)
        for h in hits:
            for qi, ri in wanted.pop(str(chunk.ids[h])):
                if ri < 0:
                    out.excl_chunk[qi], out.excl_col[qi], out.excl_lang[qi] = chunk.index, inv[h], chunk.lang[h]
                else:
                    out.rel_chunk[qi, ri], out.rel_col[qi, ri], out.rel_lang[qi, ri] = chunk.index, inv[h], chunk.lang[h]
    if wanted:
        first = sorted(wanted)[0]
        raise DataError(f"{len(wanted)} judged or excluded candidate ids are not in the pool (first: {first!r})",
                        file=pool.folder, hint="write the pool from the same benchmark the judgements come from")
    return out


def stream_ranks(queries: QuerySet | RetrievalBenchmark, query_emb: np.ndarray, pool: ShardedPool, *,
                 memory_mb: int = 256, device: str | None = None, query_block: int | None = None,
                 chunk_rows: int | None = None, backend: str = "exact") -> RankTable:
    """Exact ranks of all relevant candidates; ``query_emb`` is in the queries' order.
    ``query_block``/``chunk_rows`` override what ``memory_mb`` gives (tests, measurements)."""
    qs = queries if isinstance(queries, QuerySet) else QuerySet.of(queries)
    n_q = len(qs.ids)
    check_embeddings(qs.name, query_emb, np.empty((0, pool.dimension), np.float32), n_q, None)
    dev = _pick_device(device)
    block, rows = plan_memory(n_q, pool.dimension, memory_mb)
    block, rows = query_block or block, chunk_rows or rows
    judged = Judgements.of(qs.ids, qs.relevance, qs.excluded)
    valid = judged.valid
    where = _locate(judged, pool, rows)
    thr_all = np.full(valid.shape, np.inf, dtype=np.float32)
    ahead_own = np.zeros(valid.shape, dtype=np.int64)
    ahead_all = np.zeros(valid.shape, dtype=np.int64)
    queries_t = torch.from_numpy(np.ascontiguousarray(query_emb, dtype=np.float32))

    def scored(chunk: CandidateChunk, qb: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        perm, _ = _grouped(chunk)
        emb = torch.from_numpy(np.ascontiguousarray(chunk.embeddings[perm])).to(dev)
        return score_block(qb, emb, backend), chunk.ids[perm], chunk.lang[perm]

    for q0 in range(0, n_q, block):
        q1 = min(n_q, q0 + block)
        qb = queries_t[q0:q1].to(dev)
        rel_chunk = where.rel_chunk[q0:q1]
        # Pass 1: the relevant candidates' scores, from the same matmul as pass 2.
        for index in np.unique(rel_chunk[rel_chunk >= 0]):
            scores, _, _ = scored(pool.chunk(int(index), rows), qb)
            qi, ri = np.nonzero(rel_chunk == index)
            thr_all[q0 + qi, ri] = scores[qi, where.rel_col[q0 + qi, ri]].cpu().numpy()
        thr = torch.from_numpy(thr_all[q0:q1]).to(dev)
        # Pass 2: every chunk, counting the candidates ahead.
        for chunk in pool.chunks(rows):
            scores, ids, lang = scored(chunk, qb)
            mine = rel_chunk == chunk.index
            qi, ri = np.nonzero(mine)
            if len(qi):  # the relevant candidate itself scores exactly its threshold
                scores[qi, where.rel_col[q0 + qi, ri]] = thr[qi, ri]
            excl = np.where(where.excl_chunk[q0:q1] == chunk.index, where.excl_col[q0:q1], -1)
            own, alls = count_block(scores, segments_of(lang), ids, thr, where.rel_lang[q0:q1],
                                    judged.ids[q0:q1], mine, excl)
            ahead_own[q0:q1] += own
            ahead_all[q0:q1] += alls
    ahead_own[~valid] = 0
    ahead_all[~valid] = 0
    return RankTable(qs.ids, np.asarray(qs.langs, dtype=object), pool.languages, pool.sizes, where.rel_lang,
                     judged.grades, ahead_own, ahead_all, where.excl_lang)


def stream_topk(query_emb: np.ndarray, pool: ShardedPool, k: int, *, memory_mb: int = 256,
                device: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, candidate ids), each (Q, k), best first, merged chunk by chunk (exact; candidates
    tied at the cut-off may come in any order)."""
    if not 1 <= k <= len(pool):
        raise ValueError(f"k={k} must be between 1 and the pool size {len(pool)}")
    dev = _pick_device(device)
    block, rows = plan_memory(len(query_emb), pool.dimension, memory_mb)
    out_s = np.empty((len(query_emb), k), dtype=np.float32)
    out_i = np.empty((len(query_emb), k), dtype=object)
    for q0 in range(0, len(query_emb), block):
        qb = torch.from_numpy(np.ascontiguousarray(query_emb[q0:q0 + block], dtype=np.float32)).to(dev)
        best_s = torch.full((len(qb), 0), float("-inf"), device=dev)
        best_ids = np.empty((len(qb), 0), dtype=object)
        for chunk in pool.chunks(max(rows, k)):
            s = qb @ torch.from_numpy(chunk.embeddings).to(dev).T
            top_s, top_i = torch.topk(s, min(k, s.shape[1]), dim=1)
            merged_s = torch.cat([best_s, top_s], dim=1)
            merged_ids = np.concatenate([best_ids, chunk.ids.astype(object)[top_i.cpu().numpy()]], axis=1)
            keep = torch.topk(merged_s, min(k, merged_s.shape[1]), dim=1).indices
            best_s = torch.gather(merged_s, 1, keep)
            best_ids = np.take_along_axis(merged_ids, keep.cpu().numpy(), axis=1)
        out_s[q0:q0 + len(qb)] = best_s.cpu().numpy()
        out_i[q0:q0 + len(qb)] = best_ids
    return out_s, out_i
