"""The realised composition of training: batches per type, and pairs per type by query language,
passage language and source, counted as the worker draws them (kept in checkpoints, so a resumed
run's counts are those of the whole run) and recorded in the trial's manifest.

Shape: ``{"batches": {kind: n}, "query_languages": {kind: {lang: pairs}}, "passage_languages":
{kind: {lang: pairs}}, "sources": {kind: {source: pairs}}}`` (a pair's source is its query row's).
"""

from __future__ import annotations

import collections

from scaling.samplers.base import Batch, CorpusIndex

PARTS = ("query_languages", "passage_languages", "sources")


def empty() -> dict:
    return {"batches": {}, **{part: {} for part in PARTS}}


def _add(table: dict, key: str, values) -> None:
    for value, n in collections.Counter(values).items():
        table[key] = table.get(key, {})
        table[key][value] = table[key].get(value, 0) + n


def tally(counts: dict, batch: Batch, index: CorpusIndex) -> dict:
    """``counts`` with one more global batch (updated in place and returned)."""
    if not counts:
        counts.update(empty())
    counts["batches"][batch.kind] = counts["batches"].get(batch.kind, 0) + 1
    _add(counts["query_languages"], batch.kind, index.row_lang[batch.query_rows].tolist())
    _add(counts["passage_languages"], batch.kind, index.row_lang[batch.passage_rows].tolist())
    _add(counts["sources"], batch.kind, index.row_source[batch.query_rows].tolist())
    return counts


def count_batches(batches, index: CorpusIndex) -> dict:
    """The counts of a sequence of batches (what a direct count of a run's batches gives)."""
    counts = empty()
    for batch in batches:
        tally(counts, batch, index)
    return counts
