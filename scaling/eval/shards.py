"""A candidate pool on disk as shard files, read one chunk at a time (np.memmap).

A pool too large for memory (millions of candidates) is written once, shard by shard, and then
read back chunk by chunk: each read maps only its shard's file, copies the chunk and drops the
mapping, so what a reader holds is one chunk, whatever the pool size. ``streaming.stream_ranks``
ranks against such a pool.

Layout of a pool folder::

    pool.json                  dimension, languages (sorted), candidates per language, shard sizes
    order.npy                  optional: the input row of each pool row (sharded encoding's length order)
    shard-00000.emb.npy        float32 (rows, dimension); float16 from sharded encoding, read as float32
    shard-00000.ids.npy        candidate ids (fixed-width unicode)
    shard-00000.lang.npy       int16: index into pool.json's languages

``pool.json`` is written last (``ShardWriter.close``), so a folder without it is unfinished.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from scaling.data.errors import DataError

POOL_FILE = "pool.json"
ORDER_KEY = "order"  # pool.json: the file mapping each pool row to its input row (sharded encoding sorts by length)


@dataclass(frozen=True)
class CandidateChunk:
    """Rows ``start:start+len`` of the pool: embeddings (n, d) float32, ids (n,), lang (n,)."""

    index: int  # position in the sequence ``ShardedPool.chunks(rows)`` yields
    start: int
    embeddings: np.ndarray
    ids: np.ndarray
    lang: np.ndarray  # int64 index into ShardedPool.languages


def _shard(folder: Path, i: int, kind: str) -> Path:
    return folder / f"shard-{i:05d}.{kind}.npy"


class ShardWriter:
    """Writes a pool shard by shard (each ``add`` is one shard); ``close`` writes pool.json."""

    def __init__(self, folder: str | Path, dimension: int):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if (self.folder / POOL_FILE).exists():
            raise DataError("already holds a finished pool", file=self.folder / POOL_FILE,
                            hint="write the pool to an empty folder, or delete this one first")
        self.dimension = dimension
        self._codes: dict[str, int] = {}  # language -> code in the shard files (first seen)
        self._sizes: dict[str, int] = {}
        self._rows: list[int] = []

    def add(self, embeddings: np.ndarray, ids: Sequence[str], langs: Sequence[str]) -> None:
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[1] != self.dimension or len(ids) != len(emb) or len(langs) != len(emb):
            raise DataError(f"shard {len(self._rows)}: embeddings {emb.shape}, {len(ids)} ids and {len(langs)} "
                            f"languages should be ({len(emb)}, {self.dimension}), {len(emb)} and {len(emb)}",
                            file=self.folder)
        langs = np.asarray(langs)
        for lang in np.unique(langs):
            self._codes.setdefault(str(lang), len(self._codes))
            self._sizes[str(lang)] = self._sizes.get(str(lang), 0) + int((langs == lang).sum())
        i = len(self._rows)
        np.save(_shard(self.folder, i, "emb"), emb)
        np.save(_shard(self.folder, i, "ids"), np.asarray(ids, dtype=str))
        np.save(_shard(self.folder, i, "lang"), np.fromiter((self._codes[str(x)] for x in langs), np.int16, len(langs)))
        self._rows.append(len(emb))

    def close(self) -> "ShardedPool":
        meta = {"dimension": self.dimension, "codes": self._codes, "sizes": self._sizes, "shards": self._rows}
        tmp = self.folder / (POOL_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, indent=1))
        tmp.replace(self.folder / POOL_FILE)
        return ShardedPool(self.folder)


def write_pool(folder: str | Path, embeddings: np.ndarray, ids: Sequence[str], langs: Sequence[str], *,
               shard_rows: int = 65536) -> "ShardedPool":
    """An in-memory pool written as shards (for tests, or to rank it later in bounded memory)."""
    writer = ShardWriter(folder, embeddings.shape[1])
    for a in range(0, len(embeddings), shard_rows):
        writer.add(embeddings[a:a + shard_rows], ids[a:a + shard_rows], langs[a:a + shard_rows])
    return writer.close()


class ShardedPool:
    """A finished pool folder; ``chunks(rows)`` reads it a chunk at a time."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        path = self.folder / POOL_FILE
        if not path.is_file():
            raise DataError("not a finished candidate pool (pool.json is missing)", file=self.folder,
                            hint="write it with scaling.eval.shards.ShardWriter and call close()")
        meta = json.loads(path.read_text())
        self.dimension = int(meta["dimension"])
        self.languages = tuple(sorted(meta["codes"]))
        order = {lang: i for i, lang in enumerate(self.languages)}
        self._to_index = np.zeros(len(meta["codes"]), dtype=np.int64)
        for lang, code in meta["codes"].items():
            self._to_index[code] = order[lang]
        self.sizes = np.array([meta["sizes"][lang] for lang in self.languages], dtype=np.int64)
        self.shard_rows = tuple(int(n) for n in meta["shards"])
        self._order = meta.get(ORDER_KEY)  # a file of input rows, one per pool row; None: pool order is input order
        self._plans: dict[int, list[tuple[int, int, int, int]]] = {}

    def __len__(self) -> int:
        return sum(self.shard_rows)

    def plan(self, rows: int) -> list[tuple[int, int, int, int]]:
        """(shard, first row, end row, global start) of each chunk of at most ``rows`` rows."""
        if rows in self._plans:
            return self._plans[rows]
        out, offset = [], 0
        for shard, n in enumerate(self.shard_rows):
            out += [(shard, a, min(n, a + rows), offset + a) for a in range(0, n, rows)]
            offset += n
        self._plans[rows] = out
        return out

    def _read(self, shard: int, kind: str, a: int, b: int) -> np.ndarray:
        path = _shard(self.folder, shard, kind)
        try:
            mapped = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read shard file ({exc})", file=path,
                            hint="the pool folder is incomplete or damaged; write the pool again") from None
        if len(mapped) != self.shard_rows[shard]:
            raise DataError(f"has {len(mapped)} rows, pool.json says {self.shard_rows[shard]}", file=path,
                            hint="the pool folder is damaged; write the pool again")
        part = np.array(mapped[a:b])  # a copy: the mapping is dropped with ``mapped``
        del mapped
        return part

    def chunk(self, index: int, rows: int, *, embeddings: bool = True) -> CandidateChunk:
        shard, a, b, start = self.plan(rows)[index]
        emb = self._read(shard, "emb", a, b).astype(np.float32, copy=False) if embeddings else np.empty((b - a, 0), np.float32)
        return CandidateChunk(index, start, emb, self._read(shard, "ids", a, b),
                              self._to_index[self._read(shard, "lang", a, b)])

    def input_rows(self) -> np.ndarray | None:
        """(rows,) the input row of each pool row, or None when the pool is in input order."""
        if self._order is None:
            return None
        path = self.folder / self._order
        try:
            rows = np.load(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read the pool's row order ({exc})", file=path,
                            hint="the pool folder is incomplete or damaged; write the pool again") from None
        if rows.shape != (len(self),):
            raise DataError(f"has {rows.shape} rows, pool.json says {len(self)}", file=path,
                            hint="the pool folder is damaged; write the pool again")
        return rows

    def embeddings(self) -> np.ndarray:
        """Every row as one float32 array, in input order (for pools that fit in memory)."""
        rows = self.input_rows()
        out = np.empty((len(self), self.dimension), dtype=np.float32)
        for c in self.chunks(max(self.shard_rows)):
            where = slice(c.start, c.start + len(c.embeddings))
            out[where if rows is None else rows[where]] = c.embeddings
        return out

    def chunks(self, rows: int, *, embeddings: bool = True) -> Iterator[CandidateChunk]:
        for index in range(len(self.plan(rows))):
            yield self.chunk(index, rows, embeddings=embeddings)
