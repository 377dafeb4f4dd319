"""The units of work: groups cut into shards, each stored as one atomically written Parquet file.

A shard file holds every translated row of its groups, kept or not, with a ``status`` column
(``kept`` or the filter that dropped it), and its bookkeeping (plan hash, model fingerprint,
timings) in the Parquet schema metadata, so a file is either whole and self-describing or absent.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from scaling.data.corpus import CORPUS_SCHEMA

SHARD_SCHEMA = pa.schema(list(CORPUS_SCHEMA) + [pa.field("status", pa.string(), nullable=False)])
_META_KEY = b"scaling.translate"


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.parquet"


def shard_groups(group_ids: list[str], shard_size: int) -> list[list[str]]:
    """Consecutive runs of ``shard_size`` groups, in corpus order (the same plan on every rerun)."""
    return [group_ids[i:i + shard_size] for i in range(0, len(group_ids), shard_size)]


def write_shard(path: Path, rows: list[dict], meta: dict) -> None:
    """Write rows and their metadata to a temporary name, then rename into place."""
    table = pa.Table.from_pylist(rows, schema=SHARD_SCHEMA).replace_schema_metadata(
        {_META_KEY: json.dumps(meta, sort_keys=True).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def read_shard(path: Path) -> tuple[pa.Table, dict]:
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        raise ValueError(f"{path}: not a translation shard (no {_META_KEY.decode()} metadata); remove it and rerun")
    return table.replace_schema_metadata(None), json.loads(raw)
