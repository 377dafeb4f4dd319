"""Corpora already in the canonical columns, as JSON Lines or Parquet files."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from scaling.data.corpus import REQUIRED_COLUMNS, ParallelCorpus
from scaling.data.errors import DataError

TABULAR_SUFFIXES = (".jsonl", ".parquet")


def read_jsonl_corpus(path: Path) -> ParallelCorpus:
    """One JSON object per line; errors name the line."""
    rows, records = [], []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"malformed JSON ({exc.msg}, column {exc.colno})", file=path, record=f"line {n}") from None
            if not isinstance(row, dict):
                raise DataError(f"expected a JSON object, found {type(row).__name__}", file=path, record=f"line {n}")
            for key, value in row.items():
                if value is not None and not isinstance(value, str):
                    raise DataError(f"field {key!r} should be a string, found {type(value).__name__}",
                                    file=path, record=f"line {n}")
            missing = [k for k in REQUIRED_COLUMNS if k not in row]
            if missing:
                raise DataError(f"missing field(s) {missing}", file=path, record=f"line {n}",
                                hint=f"rows need {', '.join(REQUIRED_COLUMNS)} (title optional)")
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
