"""Encode a benchmark once and cache the embeddings on disk.

The cache key is the model family's fingerprint of the weights, the benchmark's texts and ids, and the encoding
settings (prefixes, pooling, maximum length, normalisation), so a retrained checkpoint or a
changed prefix never reuses stale vectors, and every setting and metric reuses one encoding.
Entries are written to a temporary folder and renamed into place: never half-written. An entry
filled by sharded encoding (``eval.encoder: ray-data``) holds the queries and names the pool of
candidate shards, which ranking streams from when it exceeds ``eval.memory_mb``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from scaling.data.benchmark import RetrievalBenchmark
from scaling.data.remote import cache_root
from scaling.eval.shards import POOL_FILE, ShardedPool
from scaling.models.encoder import DualEncoder, EncoderConfig

POOL_KEY = "candidates_pool"  # meta.json: the entry's candidates are this pool folder (relative to the cache)


def encoding_settings(encoder: "DualEncoder | SavedModel | EncoderConfig") -> dict:
    """What, besides the weights, changes an embedding (prefixes, pooling, length, normalisation)."""
    config = encoder if isinstance(encoder, EncoderConfig) else encoder.config
    return {k: v for k, v in asdict(config).items() if k not in ("model", "num_layers", "freeze_word_embeddings")}


def model_fingerprint(encoder: DualEncoder) -> str:
    """The model family's cheap identity of the weights (``ModelFamily.fingerprint``)."""
    from scaling.models.families import family_for

    return family_for(encoder.config.model).fingerprint(encoder)


def folder_fingerprint(folder: str | Path, encoder: DualEncoder | None = None) -> str:
    """``model_fingerprint`` of the model saved in ``folder``: the one recorded when it was saved
    (no weights loaded), else computed from ``encoder`` (or from the folder, loaded here)."""
    from scaling.models.families.base import saved_fingerprint

    saved = saved_fingerprint(folder)
    if saved is not None:
        return saved
    return model_fingerprint(encoder if encoder is not None else DualEncoder.load(folder))


class SavedModel:
    """A saved model folder standing in for its encoder until a text must be encoded: the
    configuration comes from ``encoder.json`` and the cache key from the recorded fingerprint,
    so a stage whose embeddings an actor pool already wrote ranks them without loading the
    weights (a 7B model is minutes and tens of GB); ``encoder()`` loads them on first use."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.config = DualEncoder.saved_config(self.folder)[0]  # evaluation may override max_length
        self._encoder: DualEncoder | None = None

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    def encoder(self) -> DualEncoder:
        if self._encoder is None:
            self._encoder = DualEncoder.load(self.folder)
        self._encoder.config = self.config
        return self._encoder

    def encode(self, texts, kind, **kwargs) -> np.ndarray:
        return self.encoder().encode(texts, kind, **kwargs)


@dataclass(frozen=True)
class BenchmarkEmbeddings:
    queries: np.ndarray
    candidates: np.ndarray | None  # None when the candidates are a pool of shards on disk
    cached: bool  # True when read from the cache
    seconds: float  # encoding time (or reading time when cached)
    key: str
    pool: "ShardedPool | None" = None  # the candidates as the sharded encoder wrote them: never loaded whole

    def candidate_source(self) -> "np.ndarray | ShardedPool":
        return self.candidates if self.pool is None else self.pool


def cache_key(encoder: "DualEncoder | EncoderConfig", bench: RetrievalBenchmark, model_key: str | None = None) -> str:
    """The entry of ``bench`` encoded by ``encoder`` (its weights, texts and settings; a bare
    configuration needs ``model_key``)."""
    if model_key is None and not isinstance(encoder, DualEncoder):
        raise ValueError("cache_key: an encoder configuration needs the model_key of its weights")
    return hashlib.blake2b(json.dumps([model_key or model_fingerprint(encoder), bench.fingerprint(), encoding_settings(encoder)],
                                      sort_keys=True).encode(), digest_size=16).hexdigest()


def cache_folder(cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir) if cache_dir else cache_root() / "embeddings"


def write_entry(folder: Path, key: str, queries: np.ndarray, candidates: "np.ndarray | ShardedPool", meta: dict) -> None:
    """The entry ``folder/key``, written to a temporary folder and renamed into place. Candidates
    given as a pool (sharded encoding's, under ``folder``) are referenced, not copied."""
    entry = folder / key
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".writing-"))
    try:
        np.save(tmp / "queries.npy", queries)
        if isinstance(candidates, np.ndarray):
            np.save(tmp / "candidates.npy", candidates)
        else:
            meta = {**meta, POOL_KEY: os.path.relpath(candidates.folder, folder)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if entry.exists() and not (entry / "meta.json").is_file():
            shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (entry / "meta.json").is_file():  # another process may have won the race
            raise


def embed_benchmark(encoder: DualEncoder, bench: RetrievalBenchmark, *, batch_size: int = 64,
                    cache_dir: str | Path | None = None, device: str | None = None,
                    use_cache: bool = True, model_key: str | None = None) -> BenchmarkEmbeddings:
    """``model_key``: the encoder's ``model_fingerprint``, when the caller evaluates several
    benchmarks with unchanged weights (hashing e5-small takes about 1 s)."""
    start = time.perf_counter()
    key = cache_key(encoder, bench, model_key)
    folder = cache_folder(cache_dir)
    entry = folder / key
    if use_cache and (entry / "meta.json").is_file():
        meta = json.loads((entry / "meta.json").read_text())
        pool_folder = folder / meta[POOL_KEY] if POOL_KEY in meta else None
        if pool_folder is None:
            q, c = np.load(entry / "queries.npy"), np.load(entry / "candidates.npy")
            return BenchmarkEmbeddings(q, c, True, time.perf_counter() - start, key)
        if (pool_folder / POOL_FILE).is_file():
            return BenchmarkEmbeddings(np.load(entry / "queries.npy"), None, True, time.perf_counter() - start, key,
                                       ShardedPool(pool_folder))
        # the pool it names was deleted: encode again here
    q = encoder.encode(bench.queries.column("text").to_pylist(), "query", batch_size=batch_size, device=device)
    c = encoder.encode(bench.candidates.column("text").to_pylist(), "passage", batch_size=batch_size, device=device)
    seconds = time.perf_counter() - start
    if use_cache:
        write_entry(folder, key, q, c, {"benchmark": bench.name, "model": encoder.config.model,
                                        "settings": encoding_settings(encoder), "encode_seconds": seconds})
    return BenchmarkEmbeddings(q, c, False, seconds, key)
