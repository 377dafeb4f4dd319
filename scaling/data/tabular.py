"""Corpora already in the canonical columns, as JSON Lines or Parquet files."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from scaling.data.corpus import REQUIRED_COLUMNS, ParallelCorpus
from scaling.data.errors import DataError
from scaling.data.jsonl import iter_jsonl

TABULAR_SUFFIXES = (".jsonl", ".parquet")


def read_jsonl_corpus(path: Path) -> ParallelCorpus:
    """One JSON object per line; errors name the line."""
    rows, records = [], []
    for n, row in iter_jsonl(path, REQUIRED_COLUMNS):
        for key, value in row.items():
            if value is not None and not isinstance(value, str):
                raise DataError(f"field {key!r} should be a string, found {type(value).__name__}",
                                file=path, record=f"line {n}")
        rows.append(row)
        records.append(f"line {n}")
    if not rows:
        raise DataError("file holds no rows", file=path)
    return ParallelCorpus.from_rows(rows, origin=str(path), record_ids=records)


def read_parquet_corpus(path: Path) -> ParallelCorpus:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"not a readable Parquet file: {exc}", file=path) from None
    return ParallelCorpus.from_table(table, origin=str(path))


def read_tabular_corpus(path: Path) -> ParallelCorpus:
    if path.suffix == ".jsonl":
        return read_jsonl_corpus(path)
    if path.suffix == ".parquet":
        return read_parquet_corpus(path)
    raise DataError(f"unsupported file type {path.suffix!r}", file=path,
                    hint=f"use one of {TABULAR_SUFFIXES}")


def write_parquet_corpus(corpus: ParallelCorpus, path: Path) -> None:
    """Write atomically: a temporary file renamed into place, so no half-written file remains."""
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(corpus.table, tmp)
    tmp.replace(path)
