"""Counting, within one block of scores, the candidates ranked ahead of each relevant one.

One block is a query chunk against some candidates whose columns are grouped by language. The
in-memory ranks (``ranks.compute_ranks``: the whole pool is one block) and the streaming ranks
(``streaming.stream_ranks``: one block per chunk of candidates, counts summed) share this code,
so they share the tie rule: score descending, then candidate id descending (trec_eval's). A
candidate is ahead of a relevant one if its score is higher, or equal with a larger id.

Only two counters per (query, relevant candidate) are kept: candidates ahead in the relevant
one's own language (what a pool restricted to that language needs) and in the whole block (the
merged pool). Both come from one sort per language segment and a ``searchsorted`` of the
thresholds (plus one sort of the whole row where thresholds x languages is large); exact ties
other than the relevant candidate itself (duplicate texts) are broken by id where they occur.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

BYTES_PER_SCORE = 12  # the scores, the sorted row and one sorted language segment (float32 each)


@dataclass(frozen=True)
class Segment:
    """Columns ``start:end`` of a block hold candidates of language ``lang`` (an index)."""

    lang: int
    start: int
    end: int


def segments_of(lang_idx: np.ndarray) -> list[Segment]:
    """The language segments of columns already grouped by language (``lang_idx`` sorted)."""
    cuts = np.flatnonzero(np.diff(lang_idx)) + 1
    starts = np.concatenate([[0], cuts]).astype(int)
    ends = np.concatenate([cuts, [len(lang_idx)]]).astype(int)
    return [Segment(int(lang_idx[a]), int(a), int(e)) for a, e in zip(starts, ends) if e > a]


def sorted_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows sorted ascending; on CPU numpy's SIMD sort is about 6x faster than torch.sort here."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.sort(x.numpy(), axis=1))
    return torch.sort(x, dim=1).values


def _own_language_ahead(scores: torch.Tensor, segments: Sequence[Segment], thr: torch.Tensor,
                        thr_lang: np.ndarray) -> np.ndarray:
    """Per threshold, the scores above it in its own language: each language segment sorted once
    and searched for that language's thresholds only (packed per row, padded with +inf)."""
    dev = scores.device
    b, r = thr_lang.shape
    n_lang = max(max(s.lang for s in segments), int(thr_lang.max(initial=0))) + 1
    order = np.argsort(thr_lang, axis=1, kind="stable")  # each row's slots by language (padding first)
    counts = np.bincount((np.arange(b)[:, None] * (n_lang + 1) + thr_lang + 1).ravel(),
                         minlength=b * (n_lang + 1)).reshape(b, n_lang + 1)
    first = np.cumsum(counts, axis=1) - counts  # where each language's slots start in ``order``
    ahead = np.zeros((b, r), dtype=np.int64)
    for seg in segments:
        count = counts[:, seg.lang + 1]
        k = int(count.max())
        if k == 0:
            continue
        j = np.arange(k)[None, :]
        ok = j < count[:, None]
        pick = np.take_along_axis(order, np.minimum(first[:, seg.lang + 1][:, None] + j, r - 1), axis=1)
        vals = torch.gather(thr, 1, torch.from_numpy(pick).to(dev))
        vals = torch.where(torch.from_numpy(ok).to(dev), vals, torch.full_like(vals, float("inf")))
        seg_sorted = sorted_rows(scores[:, seg.start:seg.end])
        above = ((seg.end - seg.start) - torch.searchsorted(seg_sorted, vals, right=True)).cpu().numpy()
        rows, cols = np.nonzero(ok)
        ahead[rows, pick[rows, cols]] = above[rows, cols]
    return ahead


def use_row_sort(n_thresholds: int, n_segments: int, n_cols: int) -> bool:
    """Few thresholds x languages (LAReQA): look every threshold up in every language segment.
    Many (a 205-language bitext pool): one more sort of the whole row is cheaper."""
    return n_thresholds * n_segments * 8 > n_cols


def count_block(scores: torch.Tensor, segments: Sequence[Segment], cand_keys: np.ndarray, thr: torch.Tensor,
                thr_lang: np.ndarray, thr_keys: np.ndarray, self_in_block: np.ndarray,
                excluded_col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ahead in own language, ahead in the block), each (b, R), for thresholds ``thr`` (b, R).

    ``scores`` (b, n) has its columns grouped as ``segments``; ``cand_keys`` (n,) and
    ``thr_keys`` (b, R) order candidates by id (``>`` is the ids' string order); ``thr_lang``
    is -1 on padding slots (``thr`` +inf there); ``self_in_block`` marks slots whose relevant
    candidate is in this block with exactly the score ``thr``; ``excluded_col`` (b,) is the
    column of a query's own candidate (-1: none), which is never ahead. ``scores`` is modified.
    """
    b, n = scores.shape
    dev = scores.device
    rows = np.flatnonzero(excluded_col >= 0)
    if len(rows):
        scores[torch.from_numpy(rows).to(dev), torch.from_numpy(excluded_col[rows]).to(dev)] = float("-inf")
    cand_lang = np.empty(n, dtype=np.int64)
    for seg in segments:
        cand_lang[seg.start:seg.end] = seg.lang
    if use_row_sort(thr.shape[1], len(segments), n):
        ahead_own = _own_language_ahead(scores, segments, thr, thr_lang)
        srt = sorted_rows(scores)
        right = torch.searchsorted(srt, thr, right=True)
        equal = (right - torch.searchsorted(srt, thr, right=False)).cpu().numpy()
        ahead_all = (n - right).cpu().numpy()
        del srt, right
    else:
        ahead_all = np.zeros(thr.shape, dtype=np.int64)
        ahead_own = np.zeros(thr.shape, dtype=np.int64)
        equal = np.zeros(thr.shape, dtype=np.int64)
        for seg in segments:
            seg_sorted = sorted_rows(scores[:, seg.start:seg.end])
            right = torch.searchsorted(seg_sorted, thr, right=True)
            above = ((seg.end - seg.start) - right).cpu().numpy()
            equal += (right - torch.searchsorted(seg_sorted, thr, right=False)).cpu().numpy()
            ahead_all += above
            mask = thr_lang == seg.lang
            ahead_own[mask] = above[mask]
    # Exact ties other than the relevant candidate itself are rare (duplicate texts).
    for qi, ri in zip(*np.nonzero(equal > self_in_block.astype(np.int64))):
        if thr_lang[qi, ri] < 0:
            continue
        row = scores[qi].cpu().numpy()
        tied = np.flatnonzero(row == row.dtype.type(thr[qi, ri].item()))
        tied = tied[cand_keys[tied] > thr_keys[qi, ri]]
        ahead_all[qi, ri] += len(tied)
        ahead_own[qi, ri] += int((cand_lang[tied] == thr_lang[qi, ri]).sum())
    return ahead_own, ahead_all
