"""Encode a text collection with a Ray Data actor pool into fp16 shard files in the embedding cache.

Why: one process on one device is today's evaluation path; a 1M-passage corpus with a 7B model
needs every GPU the evaluation stage reserves, and a crash must not lose hours of encoding.

How: the rows are ordered by length, longest first (``length_order``: UTF-8 bytes for the Ray
Data pool, whose driver has no tokenizer; token counts in this process), and cut into shards
of ``shard_rows`` consecutive texts, smaller at the end (``shard_bounds``), so a shard's batches
carry little padding, as if the whole corpus were sorted at once, the slowest shards start
first and the last ones finish together; one Ray Data row (and block) per shard that is not yet
on disk goes through ``map_batches`` on an actor pool, one shard in flight per actor, each actor
loading the model once and encoding its shard in length-sorted batches (``DualEncoder.encode``).
The actor writes the shard's files itself (temporary name, then rename; the embedding file
last), so the driver never holds the embeddings and a rerun after a crash encodes only the
shards whose files are missing. ``pool.json`` is written when every shard is there: the folder
is then a finished ``scaling.eval.shards.ShardedPool`` (embeddings as float16, read as float32)
with ``order.npy`` (each pool row's input row): streaming ranking reads it chunk by chunk (it
matches candidates by id), ``ShardedPool.embeddings`` returns input order.

A pool of one actor runs in the calling process instead (``executor: auto``): the same shard
files, resumption and progress, without a second process start, a second model load or Ray
Data's executor, and with shards laid out by the loaded tokenizer's counts; the Ray Data pool
runs from two actors up (several GPUs, or ``eval.encoder_actors``). Measured on one 2-core CPU
machine, whole processes in turn: the one-actor Ray Data pool took 1.07x the wall time of the
local stage task (8,000 texts), the pool of one in the stage task 1.00x (shards by tokens).

The cache key is the model fingerprint, a hash of the texts (with their ids, languages and
kind) and the encoding settings (prefixes, pooling, maximum length, normalisation, shard size).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np
import pyarrow as pa

from scaling.data.errors import DataError
from scaling.eval.embeddings import encoding_settings
from scaling.eval.shards import ORDER_KEY, POOL_FILE, ShardedPool, _shard
from scaling.models.encoder import DualEncoder, EncoderConfig, TextKind

EXECUTORS = ("auto", "ray-data", "in-process")  # who encodes the shards (auto: this process for a pool of one)
# how rows are laid out over the shards (``length_order``), by executor: bytes where no tokenizer
# is at hand (the pool's driver), token counts where the model is loaded anyway (a pool of one):
# on 6,000 SIB-200 sentences of 100 languages, shards of 2,048 by bytes carry 2.6% more padded
# tokens than one sort by tokens (301,412 against 293,792), which shards by tokens match
LENGTH_ORDERS = {"ray-data": "utf8-bytes-descending", "in-process": "tokens-descending"}
SHARD_LAYOUT = "tapered-halves-min-1/8"  # how the rows are cut into shards (``shard_bounds``)
ORDER_FILE = "order.npy"  # the input row of each pool row
UNDETERMINED = "und"  # the language of texts given without one (BCP 47 "undetermined")
ModelSource = Union[str, Path, Callable[[], DualEncoder]]


@dataclass(frozen=True)
class ShardedEncodingConfig:
    """The actor pool and the shard layout; ``for_resources`` derives the pool from the study's
    evaluation reservation."""

    actors: int = 1
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    batch_size: int = 64  # texts per forward pass, length-sorted within a shard
    shard_rows: int = 2048  # texts per shard file: the unit of resumption (and of work per actor call)
    device: str | None = None  # default: cuda when the actor has a GPU, else cpu
    progress: bool | None = None  # None: a progress line when stderr is a terminal
    executor: str = "auto"  # auto: this process for one actor, the Ray Data pool for more (EXECUTORS)

    def __post_init__(self) -> None:
        if isinstance(self.actors, bool) or not isinstance(self.actors, int) or self.actors < 1:
            raise ValueError(f"sharded encoding: actors must be an integer >= 1, not {self.actors!r} "
                             "(raise resources.eval_cpus or resources.eval_gpus)")
        if self.cpus_per_actor <= 0 or self.gpus_per_actor < 0:
            raise ValueError(f"sharded encoding: cpus_per_actor must be > 0 and gpus_per_actor >= 0, not "
                             f"{self.cpus_per_actor} and {self.gpus_per_actor}")
        for name in ("batch_size", "shard_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"sharded encoding: {name} must be >= 1, not {getattr(self, name)}")
        if self.executor not in EXECUTORS:
            raise ValueError(f"sharded encoding: executor {self.executor!r}: choose one of {list(EXECUTORS)}")
        if self.executor == "in-process" and self.actors != 1:
            raise ValueError(f"sharded encoding: the in-process executor is one worker, not {self.actors} actors")

    @property
    def in_process(self) -> bool:
        """Whether the shards are encoded in the calling process (a pool of one, unless the Ray
        Data pool is asked for by name)."""
        return self.executor == "in-process" or (self.executor == "auto" and self.actors == 1)

    @classmethod
    def for_resources(cls, eval_cpus: float, eval_gpus: float, actors: int | None = None,
                      **kwargs) -> "ShardedEncodingConfig":
        """``actors`` (``eval.encoder_actors``) share the reservation evenly; unset, one actor
        per whole reserved GPU (a fraction: one actor on it), and one actor with every reserved
        CPU without GPUs: on one machine one process with n threads encodes faster than n
        one-thread processes (2 cores, outside Ray: 116 against 109 texts/s), and a pool of one
        runs in the stage's own process."""
        if actors is None:
            actors = int(eval_gpus) if eval_gpus >= 1 else 1
        return cls(actors=actors, cpus_per_actor=max(eval_cpus, 1e-3) / actors, gpus_per_actor=eval_gpus / actors,
                   **kwargs)


@dataclass(frozen=True)
class TextColumn:
    """Texts with their ids and languages, as Arrow arrays of equal length."""

    text: pa.Array
    ids: pa.Array
    lang: pa.Array

    @classmethod
    def of(cls, texts: Union[Sequence[str], pa.Table, pa.Array, pa.ChunkedArray, str, Path]) -> "TextColumn":
        """A list of strings (ids are row numbers, language ``und``), an Arrow table or Parquet
        file with a ``text`` column (and optional ``id`` and ``lang``), or an Arrow string array."""
        if isinstance(texts, (str, Path)):
            import pyarrow.parquet as pq

            path = Path(texts)
            if not path.is_file():
                raise DataError("no such Parquet file of texts", file=path, hint="give a file with a 'text' column")
            texts = pq.read_table(path, memory_map=True)
        if isinstance(texts, pa.Table):
            if "text" not in texts.column_names:
                raise DataError(f"the table has no 'text' column (columns: {texts.column_names})", file="texts")
            n = len(texts)
            text = texts.column("text")
            ids = texts.column("id") if "id" in texts.column_names else None
            lang = texts.column("lang") if "lang" in texts.column_names else None
        else:
            text = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(list(texts), pa.string())
            n, ids, lang = len(text), None, None

        def strings(col, what):
            col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                col = col.cast(pa.string())
            if col.null_count:
                raise DataError(f"{col.null_count} rows have no {what}", file="texts", hint=f"give every row a {what}")
            return col

        if n == 0:
            raise DataError("there are no texts to encode", file="texts")
        ids = pa.array([str(i) for i in range(n)], pa.string()) if ids is None else ids
        lang = pa.array([UNDETERMINED] * n, pa.string()) if lang is None else lang
        return cls(strings(text, "text"), strings(ids, "id"), strings(lang, "lang"))

    def __len__(self) -> int:
        return len(self.text)

    def take(self, rows: np.ndarray) -> "TextColumn":
        index = pa.array(rows)
        return TextColumn(self.text.take(index), self.ids.take(index), self.lang.take(index))

    def fingerprint(self, kind: str) -> str:
        """A hash of every text, id and language (with lengths, so boundaries count) and the kind."""
        h = hashlib.blake2b(kind.encode(), digest_size=16)
        for col in (self.text, self.ids, self.lang):
            for a in range(0, len(col), 65536):
                values = col.slice(a, 65536).to_pylist()
                h.update(np.fromiter((len(v) for v in values), np.int64, len(values)).tobytes())
                h.update("".join(values).encode("utf-8", "surrogatepass"))
        return h.hexdigest()


def byte_lengths(text: pa.Array) -> np.ndarray:
    """UTF-8 bytes of each text: a tokenizer-free proxy for its token count."""
    import pyarrow.compute as pc

    return pc.binary_length(text.cast(pa.binary())).to_numpy(zero_copy_only=False).astype(np.int64)


def token_ids(encoder: DualEncoder, text: pa.Array, kind: TextKind) -> pa.Array:
    """Every text's token ids as ``encoder`` will see it (prefix, truncation, EOS), as an Arrow
    list<int32> array (4 bytes a token), tokenized 65,536 texts at a time: the lengths lay the
    shards out and the ids are encoded as they are, so the texts are tokenized once."""
    chunks = [pa.array(encoder.token_ids(text.slice(a, 65536).to_pylist(), kind), pa.list_(pa.int32()))
              for a in range(0, len(text), 65536)]
    return pa.chunked_array(chunks, pa.list_(pa.int32())).combine_chunks()


def length_order(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Input rows, longest first (ties in input order), and those rows' lengths: consecutive rows
    cut into shards have like lengths (each shard is still sorted by tokens when encoded), and
    the longest shards, the slowest, start first."""
    order = np.argsort(-lengths, kind="stable").astype(np.int64)
    return order, lengths[order]


def shard_bounds(n: int, shard_rows: int) -> list[tuple[int, int]]:
    """Rows ``[a, b)`` of each shard: ``shard_rows`` each, but the last ``2 x shard_rows`` rows
    are cut in halves of what is left, down to ``shard_rows / 8`` (no piece smaller follows).

    Why: the actors take shards as they free up, so the last one to finish runs alone for up to a
    shard; tapering the tail keeps that to a small piece (on 2 CPU actors, 4,000 texts in two
    shards left one actor alone for 17 s of 54; 20,000 in 12 tapered shards for 3 s of 201).
    The layout depends on ``n`` and ``shard_rows`` only, not on the actor count, so a cache
    filled by one pool resumes under another."""
    smallest, bounds, a = max(1, shard_rows // 8), [], 0
    while a < n:
        left = n - a
        size = shard_rows if left > 2 * shard_rows else max(smallest, left // 2)
        if left - size < smallest:  # no sliver after it
            size = left
        bounds.append((a, a + min(size, shard_rows)))
        a = bounds[-1][1]
    return bounds


def encoding_key(model_key: str, encoder_config: EncoderConfig, texts: TextColumn, kind: str, shard_rows: int,
                 order: str) -> str:
    parts = [model_key, texts.fingerprint(kind), encoding_settings(encoder_config), shard_rows, "float16", order,
             SHARD_LAYOUT]
    return hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=16).hexdigest()


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def shard_done(folder: Path, shard: int, rows: int) -> bool:
    """The shard's embedding file (written last) is there with ``rows`` rows."""
    path = _shard(folder, shard, "emb")
    if not (path.is_file() and _shard(folder, shard, "ids").is_file() and _shard(folder, shard, "lang").is_file()):
        return False
    try:
        return np.load(path, mmap_mode="r").shape[0] == rows
    except (OSError, ValueError):
        return False


def _load_model(source: ModelSource, max_length: int | None) -> DualEncoder:
    encoder = source() if callable(source) else DualEncoder.load(source)
    if max_length is not None and max_length != encoder.config.max_length:
        encoder.config = replace(encoder.config, max_length=max_length)
    return encoder


class _ShardEncoder:
    """A pool actor (or this process, for a pool of one): loads the model once, then encodes and
    writes one shard per input row (each row names its collection's folder and kind)."""

    def __init__(self, source: ModelSource, max_length: int | None, batch_size: int, device: str | None,
                 threads: int | None) -> None:
        import torch

        if threads is not None:  # an actor; in this process the caller's threads stand
            torch.set_num_threads(threads)
        self.encoder = _load_model(source, max_length)
        self.batch_size = batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")

    def __call__(self, batch: pa.Table) -> pa.Table:
        keys, shards, rows, started, ended = [], [], [], [], []
        for row in batch.to_pylist():
            started.append(time.time())  # wall clock: comparable across the actors of one machine
            emb = (self.encoder.encode_token_ids(row["tokens"], batch_size=self.batch_size, device=self.device)
                   if "tokens" in row else  # tokenized already (a pool of one)
                   self.encoder.encode(row["text"], row["kind"], batch_size=self.batch_size, device=self.device))
            i, folder = row["shard"], Path(row["folder"])
            _atomic_save(_shard(folder, i, "ids"), np.asarray(row["ids"], dtype=str))
            _atomic_save(_shard(folder, i, "lang"), np.asarray(row["lang"], dtype=np.int16))
            _atomic_save(_shard(folder, i, "emb"), emb.astype(np.float16))  # last: marks the shard done
            keys.append(folder.name)
            shards.append(i)
            rows.append(len(emb))
            ended.append(time.time())
        return pa.table({"key": pa.array(keys, pa.string()), "shard": pa.array(shards, pa.int64()),
                         "rows": pa.array(rows, pa.int64()),
                         "actor": pa.array([os.getpid()] * len(shards), pa.int64()),
                         "started": pa.array(started, pa.float64()), "ended": pa.array(ended, pa.float64())})


class Progress:
    """``[encode] [####....] 12,288 of 20,000 texts, 431 texts/s, about 0m18s left`` on one
    rewritten line when the stream is a terminal; quiet otherwise (the caller prints a summary)."""

    def __init__(self, total: int, done: int, enabled: bool | None = None, stream=None) -> None:
        from scaling.sweep.console import _duration

        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total, self.done, self.already = total, done, done
        self.started = time.monotonic()
        self._duration = _duration

    def text(self) -> str:
        elapsed = time.monotonic() - self.started
        here = self.done - self.already
        rate = here / elapsed if elapsed > 0 else 0.0
        eta = f", about {self._duration((self.total - self.done) / rate)} left" if rate and self.done < self.total else ""
        filled = round(20 * self.done / max(1, self.total))
        return (f"[encode] [{'#' * filled}{'.' * (20 - filled)}] {self.done:,} of {self.total:,} texts, "
                f"{rate:,.0f} texts/s{eta}")

    def advance(self, rows: int) -> None:
        self.done += rows
        if self.enabled:
            print("\r" + self.text(), end="", file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled:
            print(file=self.stream, flush=True)


@dataclass(frozen=True)
class ShardTime:
    """When an actor (by process id) encoded and wrote one shard of a collection (its cache key),
    in wall-clock seconds."""

    key: str
    shard: int
    actor: int
    started: float
    ended: float
    rows: int


@dataclass(frozen=True)
class ShardedEncoding:
    pool: ShardedPool
    key: str
    encoded_shards: int  # shards encoded by this call (0: all were on disk)
    total_shards: int
    seconds: float
    timeline: tuple[ShardTime, ...] = ()  # the shards the pool run encoded (of every collection it was given)
    started: float = 0.0  # wall clock at the call's start (``timeline``'s origin)
    executor: str = ""  # who encoded: "in-process" or "ray-data" ("" when every shard was on disk)

    @property
    def shard_seconds(self) -> float:
        """The actors' time in their shards, summed (the rest of ``seconds`` x actors: start-up, waits)."""
        return sum(t.ended - t.started for t in self.timeline)

    def phases(self) -> dict[str, float]:
        """Where the wall time went: until the first shard started (key, layout, the actors'
        start and model load), until the first actor ran out of work, the tail after it, and
        after the last shard (the pool's files); ``idle share`` is the actors' time without a
        shard between the first start and the last end."""
        if not self.timeline:
            return {}
        by_actor: dict[int, list[ShardTime]] = {}
        for t in self.timeline:
            by_actor.setdefault(t.actor, []).append(t)
        first = min(t.started for t in self.timeline)
        last = max(t.ended for t in self.timeline)
        first_done = min(max(t.ended for t in ts) for ts in by_actor.values())
        return {"start": first - self.started, "all busy": first_done - first, "tail": last - first_done,
                "after": self.started + self.seconds - last, "actors": float(len(by_actor)),
                "idle share": 1 - self.shard_seconds / max(1e-9, len(by_actor) * (last - first))}

    def embeddings(self) -> np.ndarray:
        """Every row as one float32 array, in input order (for pools that fit in memory)."""
        return self.pool.embeddings()


def _check_source(source: ModelSource) -> None:
    if callable(source):
        return
    folder = Path(source)
    if not (folder / "encoder.json").is_file():
        raise DataError("is not a saved model folder (encoder.json is missing)" if folder.is_dir()
                        else "model folder does not exist", file=folder,
                        hint="give the folder DualEncoder.save wrote (a run's final model), or a callable that builds one")


def encode_sharded(source: ModelSource, texts, kind: TextKind, *, model_key: str, encoder_config: EncoderConfig,
                   config: ShardedEncodingConfig = ShardedEncodingConfig(), cache_dir: str | Path | None = None,
                   max_length: int | None = None, use_cache: bool = True) -> ShardedEncoding:
    """Encode ``texts`` (see ``TextColumn.of``) with ``source`` (a saved model folder, or a
    picklable callable returning the encoder) into the embedding cache; returns the finished pool.

    ``model_key`` and ``encoder_config`` identify the model for the cache key (the family's
    ``model_fingerprint`` and the encoder's settings; ``max_length`` overrides the latter's, as
    ``eval.max_length`` does). Runs on the Ray cluster this process is connected to (a local one
    is started if none is)."""
    return encode_collections(source, [(texts, kind)], model_key=model_key, encoder_config=encoder_config,
                              config=config, cache_dir=cache_dir, max_length=max_length, use_cache=use_cache)[0]


def _language_codes(lang: pa.Array) -> tuple[dict[str, int], pa.Array]:
    """Each language's code (sorted order) and every row's code as int16, computed in Arrow: a
    10M-row corpus never becomes 10M Python strings."""
    import pyarrow.compute as pc

    languages = pc.unique(lang).sort()
    if len(languages) > np.iinfo(np.int16).max:
        raise DataError(f"{len(languages)} distinct languages; at most {np.iinfo(np.int16).max} fit the shards' codes",
                        file="texts", hint="check the 'lang' column")
    codes = {str(x): i for i, x in enumerate(languages.to_pylist())}
    return codes, pc.index_in(lang, value_set=languages).cast(pa.int16())


@dataclass(frozen=True)
class _Layout:
    """One collection's rows as they go to disk: longest first, cut into ``bounds``."""

    kind: TextKind
    key: str
    folder: Path
    column: TextColumn  # in shard order
    order: np.ndarray  # the input row of each shard-order row
    order_name: str  # what "longest" measured (LENGTH_ORDERS)
    bounds: list[tuple[int, int]]
    codes: dict[str, int]  # language -> code in the shards' lang files
    lang_codes: pa.Array
    missing: list[int]  # shards not on disk
    shard_work: list[int]  # bytes or tokens of each shard's texts: the order shards are handed out in
    tokens: pa.Array | None  # each row's token ids in shard order, where this process tokenized them

    @classmethod
    def plan(cls, column: TextColumn, kind: TextKind, key: str, folder: Path, shard_rows: int, order_name: str,
             tokens: pa.Array | None = None) -> "_Layout":
        """Rows by UTF-8 bytes, or by token counts where ``tokens`` are given (input order)."""
        import pyarrow.compute as pc

        lengths = byte_lengths(column.text) if tokens is None else \
            pc.list_value_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)
        order, lengths = length_order(lengths)  # shards of like lengths: little padding, as one global sort
        column = column.take(order)
        tokens = None if tokens is None else tokens.take(pa.array(order))
        bounds = shard_bounds(len(column), shard_rows)
        codes, lang_codes = _language_codes(column.lang)
        missing = [i for i, (a, b) in enumerate(bounds) if not shard_done(folder, i, b - a)]
        cumulative = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        shard_work = [int(cumulative[b] - cumulative[a]) for a, b in bounds]
        return cls(kind, key, folder, column, order, order_name, bounds, codes, lang_codes, missing, shard_work,
                   tokens)

    def rows(self, shards: Sequence[int]) -> int:
        return sum(self.bounds[i][1] - self.bounds[i][0] for i in shards)

    def finish(self, model_key: str, encoder_config: EncoderConfig, shard_rows: int) -> ShardedPool:
        """Write the pool's own files once every shard is on disk (``pool.json`` last)."""
        import pyarrow.compute as pc

        folder, n = self.folder, len(self.column)
        sizes = {str(row["values"]): int(row["counts"]) for row in pc.value_counts(self.column.lang).to_pylist()}
        (folder / "encoding.json").write_text(json.dumps({
            "kind": self.kind, "rows": n, "settings": encoding_settings(encoder_config), "model_key": model_key,
            "shard_rows": shard_rows, "order": self.order_name, "layout": SHARD_LAYOUT}, indent=1))
        _atomic_save(folder / ORDER_FILE, self.order)
        meta = {"dimension": int(np.load(_shard(folder, 0, "emb"), mmap_mode="r").shape[1]), "codes": self.codes,
                "sizes": {lang: sizes[lang] for lang in self.codes}, "shards": [b - a for a, b in self.bounds],
                "dtype": "float16", ORDER_KEY: ORDER_FILE}
        tmp = folder / f".{POOL_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, folder / POOL_FILE)
        return ShardedPool(folder)


def encode_collections(source: ModelSource, collections: Sequence[tuple[object, TextKind]], *, model_key: str,
                       encoder_config: EncoderConfig, config: ShardedEncodingConfig = ShardedEncodingConfig(),
                       cache_dir: str | Path | None = None, max_length: int | None = None,
                       use_cache: bool = True) -> list[ShardedEncoding]:
    """``encode_sharded`` for several (texts, kind) collections with one actor pool, so each
    actor loads the model once for all of them (a benchmark's queries and candidates, every
    benchmark of a stage); the biggest shards of any collection go first. Every result's
    ``timeline`` and ``seconds`` are the whole pool run's. A pool of one (``config.in_process``)
    loads the model here, lays the shards out by its token counts, encodes them and frees the
    model before returning."""
    start, wall_start = time.perf_counter(), time.time()
    _check_source(source)
    if max_length is not None:
        encoder_config = replace(encoder_config, max_length=max_length)
    from scaling.data.remote import cache_root

    root = (Path(cache_dir) if cache_dir else cache_root() / "embeddings") / "sharded"
    executor = "in-process" if config.in_process else "ray-data"
    keys, planned = [], {}  # by key: the same texts given twice are encoded once
    pending: list[tuple[TextColumn, TextKind, str]] = []
    for texts, kind in collections:
        column = TextColumn.of(texts)
        keys.append(encoding_key(model_key, encoder_config, column, kind, config.shard_rows, LENGTH_ORDERS[executor]))
        key, folder = keys[-1], root / keys[-1]
        if key in planned:
            continue
        if use_cache and (folder / POOL_FILE).is_file():
            planned[key] = ShardedPool(folder)
            continue
        if not use_cache and folder.exists():
            import shutil

            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        planned[key] = None
        pending.append((column, kind, key))
    here = _ShardEncoder(source, max_length, config.batch_size, config.device, threads=None) \
        if pending and config.in_process else None
    try:
        for column, kind, key in pending:
            planned[key] = _Layout.plan(column, kind, key, root / key, config.shard_rows, LENGTH_ORDERS[executor],
                                        token_ids(here.encoder, column.text, kind) if here else None)
        todo = [layout for layout in planned.values() if isinstance(layout, _Layout)]
        work = sorted(((layout, i) for layout in todo for i in layout.missing), key=lambda w: -w[0].shard_work[w[1]])
        total = sum(len(layout.column) for layout in todo)
        progress = Progress(total, total - sum(layout.rows(layout.missing) for layout in todo), config.progress)
        timeline = []
        with _resumable(work, progress):
            for done in (_run_here(here, work) if here else _run_pool(source, max_length, config, work)) if work else ():
                for row in done.to_pylist():
                    timeline.append(ShardTime(**row))
                    progress.advance(row["rows"])
        progress.close()
    finally:
        if here is not None:
            _free(here)
    timeline = tuple(sorted(timeline, key=lambda t: t.started))
    pools = {layout.key: layout.finish(model_key, encoder_config, config.shard_rows) for layout in todo}
    seconds = time.perf_counter() - start
    return [ShardedEncoding(layout, layout.folder.name, 0, len(layout.shard_rows), seconds, started=wall_start)
            if isinstance(layout, ShardedPool) else
            ShardedEncoding(pools[layout.key], layout.key, len(layout.missing), len(layout.bounds), seconds, timeline,
                            wall_start, executor if work else "")
            for layout in (planned[key] for key in keys)]


@contextmanager
def _resumable(work: list[tuple[_Layout, int]], progress: Progress):
    """A failure while encoding becomes an error that says how many shards are on disk and that
    a rerun encodes only the missing ones."""
    try:
        yield
    except Exception as exc:
        progress.close()
        layouts = {id(layout): layout for layout, _ in work}.values()
        kept = sum(shard_done(lay.folder, i, b - a) for lay in layouts for i, (a, b) in enumerate(lay.bounds))
        where = ", ".join(str(lay.folder) for lay in layouts)
        raise RuntimeError(f"sharded encoding failed with {kept} of {sum(len(lay.bounds) for lay in layouts)} shards "
                           f"on disk in {where} "
                           f"({type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}); "
                           "run it again to encode only the missing shards") from exc


def _shard_blocks(work: list[tuple[_Layout, int]]):
    """One Arrow table of one row per (collection, shard) of ``work``, in that order: the shard's
    texts (or their token ids, where this process tokenized them), ids and language codes, and
    where its files go."""
    for layout, i in work:
        a, b = layout.bounds[i]
        column = layout.column
        inputs = {"text": pa.array([column.text.slice(a, b - a).to_pylist()], pa.list_(pa.string()))} \
            if layout.tokens is None else \
            {"tokens": pa.ListArray.from_arrays(pa.array([0, b - a], pa.int32()), layout.tokens.slice(a, b - a))}
        yield pa.table({"folder": pa.array([str(layout.folder)]), "kind": pa.array([layout.kind]),
                        "shard": pa.array([i], pa.int64()), **inputs,
                        "ids": pa.array([column.ids.slice(a, b - a).to_pylist()], pa.list_(pa.string())),
                        "lang": pa.array([layout.lang_codes.slice(a, b - a).to_pylist()], pa.list_(pa.int16()))})


def _run_here(encoder: _ShardEncoder, work: list[tuple[_Layout, int]]):
    """A pool of one in this process: ``encoder`` encodes each shard of ``work`` in order,
    yielding what an actor would return."""
    for block in _shard_blocks(work):
        yield encoder(block)


def _free(encoder: _ShardEncoder) -> None:
    """Drop the model this process loaded for a pool of one (and its GPU memory) before ranking."""
    import gc

    import torch

    encoder.encoder = None
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _run_pool(source, max_length, config: ShardedEncodingConfig, work: list[tuple[_Layout, int]]):
    """Encode each (collection, shard) of ``work`` on the Ray Data actor pool, handed out in
    that order; yields what the actors return as they finish."""
    import ray
    import ray.data

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # ours instead (texts/s and an ETA)
    ctx.print_on_execution_start = False
    ds = ray.data.from_arrow(list(_shard_blocks(work)))  # one block per shard: the pool spreads them
    threads = max(1, int(config.cpus_per_actor))
    out = ds.map_batches(_ShardEncoder, batch_size=1, batch_format="pyarrow",
                         fn_constructor_args=(source, max_length, config.batch_size, config.device, threads),
                         # one shard in flight per actor: a free actor takes the next
                         # shard, none waits in a busy actor's queue (the tail stays short)
                         compute=ray.data.ActorPoolStrategy(size=min(config.actors, len(work)),
                                                            max_tasks_in_flight_per_actor=1),
                         num_cpus=config.cpus_per_actor,
                         num_gpus=config.gpus_per_actor or None)
    yield from out.iter_batches(batch_size=None, batch_format="pyarrow")


def pool_config(eval_config, eval_cpus: float, eval_gpus: float) -> ShardedEncodingConfig:
    """The pool a study's evaluation stage runs: its reservation, ``eval.encoder_actors`` and
    ``eval.batch_size`` / ``eval.device``."""
    return ShardedEncodingConfig.for_resources(eval_cpus, eval_gpus, eval_config.encoder_actors,
                                               batch_size=eval_config.batch_size, device=eval_config.device)


def prefill_embeddings(source: ModelSource, encoder_config: EncoderConfig, model_key: str, suites, eval_config,
                       eval_cpus: float, eval_gpus: float) -> list[ShardedEncoding]:
    """Encode every member of ``suites`` with the pool (``pool_config``) into the entries
    ``embed_benchmark`` reads (same key), so the evaluation that follows finds them cached.
    ``encoder_config`` and ``model_key`` (``folder_fingerprint``) name the model for the key,
    with ``eval.max_length`` applied as ``evaluate_benchmark`` does; ``source`` is what the
    actors load (a pool of one: this process, which frees the model before returning)."""
    from scaling.eval.embeddings import cache_folder, cache_key, write_entry

    config = pool_config(eval_config, eval_cpus, eval_gpus)
    if eval_config.max_length is not None:
        encoder_config = replace(encoder_config, max_length=eval_config.max_length)
    folder, todo = cache_folder(eval_config.cache_dir), []
    for suite in suites:
        for bench in suite:
            key = cache_key(encoder_config, bench, model_key)
            if not (eval_config.use_cache and (folder / key / "meta.json").is_file()):
                todo.append((bench, key))
    if not todo:
        return []
    done = encode_collections(source, [(table, kind) for bench, _ in todo
                                       for table, kind in ((bench.queries, "query"), (bench.candidates, "passage"))],
                              model_key=model_key, encoder_config=encoder_config, config=config,
                              cache_dir=eval_config.cache_dir, use_cache=eval_config.use_cache,
                              max_length=eval_config.max_length)
    for (bench, key), queries, candidates in zip(todo, done[0::2], done[1::2]):
        write_entry(folder, key, queries.embeddings(), candidates.pool,  # the candidates stay shards
                    {"benchmark": bench.name, "model": encoder_config.model,
                     "settings": encoding_settings(encoder_config), "pool_seconds": queries.seconds,
                     "pool_run": queries.phases(), "encoder": "ray-data", "actors": config.actors,
                     "executor": queries.executor})
    return done
