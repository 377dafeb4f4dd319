"""Evaluate an encoder on benchmark suites: embed (cached), rank exactly, score every setting.

Ranking: in memory (``ranks.compute_ranks``) while the candidate embeddings fit ``memory_mb``;
beyond it, the candidates are written once as shards and ranked chunk by chunk
(``streaming.stream_ranks``), which gives the same rank table in memory bounded by the budget.
``backend``: ``exact`` scores with torch (CPU, or the GPU where one is reserved), ``faiss`` with
faiss's exact inner-product kernel (``IndexFlatIP``'s); both count ranks the same way.

Results are tidy records ``benchmark, setting, query_lang, candidate_lang, metric, value`` that
``jobs/evaluate.py`` and the sweep write to Parquet. A suite's rule (``scaling.data.suites``)
says which settings, cut-offs and metrics its members get and how their rows are reported.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from scaling.data.benchmark import RetrievalBenchmark
from scaling.data.suites import BenchmarkSuite
from scaling.eval.embeddings import embed_benchmark, model_fingerprint
from scaling.eval.metrics import RANKING_FAMILIES
from scaling.eval.ranks import RANK_BACKENDS, RankTable, compute_ranks
from scaling.eval.settings import ALL, SETTINGS, MetricRecord, evaluate_settings
from scaling.eval.shards import ShardedPool, ShardWriter
from scaling.eval.streaming import QuerySet, stream_ranks
from scaling.models.encoder import DualEncoder

RECORD_SCHEMA = pa.schema([("benchmark", pa.string()), ("setting", pa.string()), ("query_lang", pa.string()),
                           ("candidate_lang", pa.string()), ("metric", pa.string()), ("value", pa.float64())])


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings (a study's ``eval:`` section), recorded with results."""

    settings: tuple[str, ...] = SETTINGS
    ks: tuple[int, ...] = (1, 10, 100)
    metrics: tuple[str, ...] = RANKING_FAMILIES  # metric families to report ("queries" counts always are)
    batch_size: int = 64
    max_length: int | None = None  # None: the length the model was trained with
    query_chunk: int | None = None  # default: as many queries as fit memory_mb of scores
    memory_mb: int = 256
    device: str | None = None
    cache_dir: str | None = None
    use_cache: bool = True
    backend: str = "exact"  # what computes the scores: "exact" (torch) or "faiss"
    encoder: str = "local"  # "ray-data": an actor pool sized by the evaluation's reservation (sharded_encoding)
    encoder_actors: int | None = None  # ray-data: the pool's actors (None: one per reserved GPU, else one)

    def __post_init__(self) -> None:
        if self.encoder not in ("local", "ray-data"):
            raise ValueError(f"eval.encoder {self.encoder!r}: choose 'local' (this process) or 'ray-data' "
                             "(sharded encoding, on a Ray Data actor pool sized by resources.eval_cpus / eval_gpus)")
        if self.encoder_actors is not None:
            if isinstance(self.encoder_actors, bool) or not isinstance(self.encoder_actors, int) \
                    or self.encoder_actors < 1:
                raise ValueError(f"eval.encoder_actors must be an integer >= 1 or unset, not {self.encoder_actors!r}")
            if self.encoder != "ray-data":
                raise ValueError(f"eval.encoder_actors ({self.encoder_actors}) sizes the ray-data pool; set "
                                 "eval.encoder: ray-data, or remove eval.encoder_actors")
        bad = [s for s in self.settings if s not in SETTINGS]
        if bad or not self.settings:
            raise ValueError(f"eval.settings {list(self.settings)}: choose one or more of {list(SETTINGS)}")
        if not self.ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.ks):
            raise ValueError(f"eval.ks must be a list of integers >= 1, not {list(self.ks)}")
        unknown = [m for m in self.metrics if m not in RANKING_FAMILIES]
        if unknown or not self.metrics:
            raise ValueError(f"eval.metrics {list(self.metrics)}: choose from {list(RANKING_FAMILIES)}")
        for name in ("batch_size", "memory_mb"):
            if getattr(self, name) < 1:
                raise ValueError(f"eval.{name} must be >= 1, not {getattr(self, name)}")
        if self.backend not in RANK_BACKENDS:
            raise ValueError(f"eval.backend {self.backend!r}: choose one of {list(RANK_BACKENDS)}")
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"eval.max_length must be at least 2 or unset, not {self.max_length}")


@dataclass
class EvalResult:
    records: list[MetricRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # "<benchmark>/encode", "<benchmark>/search"
    cached: dict[str, bool] = field(default_factory=dict)

    def table(self) -> pa.Table:
        return pa.Table.from_pylist([asdict(r) for r in self.records], schema=RECORD_SCHEMA)

    def value(self, benchmark: str, setting: str, metric: str, query_lang: str = "*",
              candidate_lang: str = "*") -> float:
        for r in self.records:
            if (r.benchmark, r.setting, r.metric, r.query_lang, r.candidate_lang) == (
                    benchmark, setting, metric, query_lang, candidate_lang):
                return r.value
        raise KeyError(f"no record {benchmark}/{setting}/{metric}/{query_lang}->{candidate_lang}")

    def absorb(self, other: "EvalResult") -> None:
        self.timings.update(other.timings)
        self.cached.update(other.cached)
        self.notes += other.notes


def _reported(name: str, families: Sequence[str]) -> bool:
    return name == "queries" or name.split("@", 1)[0] in families


def fits_in_memory(n_candidates: int, dimension: int, memory_mb: int) -> bool:
    """Whether the candidates' float32 embeddings fit the ranking budget (else: ranks from shards)."""
    return 4 * n_candidates * dimension <= memory_mb << 20


def rank_benchmark(bench: RetrievalBenchmark, query_emb: np.ndarray, cand_emb: "np.ndarray | ShardedPool",
                   config: EvalConfig) -> tuple[RankTable, bool]:
    """The exact rank table and whether it was streamed from shards (pools beyond ``memory_mb``).
    Candidates already on disk as a pool (sharded encoding) are streamed from it, never loaded whole."""
    if isinstance(cand_emb, ShardedPool):
        if len(cand_emb) != len(bench.candidates):
            raise ValueError(f"{bench.name}: the cached pool {cand_emb.folder} holds {len(cand_emb)} candidates, the "
                             f"benchmark {len(bench.candidates)}; delete that cache entry and evaluate again")
        if not fits_in_memory(len(cand_emb), cand_emb.dimension, config.memory_mb):
            return stream_ranks(QuerySet.of(bench), query_emb, cand_emb, memory_mb=config.memory_mb,
                                device=config.device, backend=config.backend), True
        cand_emb = cand_emb.embeddings()
    if fits_in_memory(*cand_emb.shape, config.memory_mb):
        return compute_ranks(bench, query_emb, cand_emb, query_chunk=config.query_chunk, memory_mb=config.memory_mb,
                             device=config.device, backend=config.backend), False
    import shutil
    import tempfile

    from scaling.data.remote import cache_root

    where = Path(config.cache_dir) if config.cache_dir else cache_root()
    where.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".pool-", dir=where))
    try:
        ids = bench.candidates.column("id")
        langs = bench.candidates.column("lang")
        rows = max(1024, (config.memory_mb << 20) // (4 * cand_emb.shape[1]))  # one shard fits the budget
        writer = ShardWriter(folder / "pool", cand_emb.shape[1])
        for a in range(0, len(cand_emb), rows):
            writer.add(cand_emb[a:a + rows], ids.slice(a, rows).to_numpy(zero_copy_only=False).astype(str),
                       langs.slice(a, rows).to_numpy(zero_copy_only=False).astype(str))
        pool = writer.close()
        table = stream_ranks(QuerySet.of(bench), query_emb, pool, memory_mb=config.memory_mb, device=config.device,
                             backend=config.backend)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return table, True


def evaluate_benchmark(encoder: DualEncoder, bench: RetrievalBenchmark, config: EvalConfig = EvalConfig(),
                       result: EvalResult | None = None, model_key: str | None = None) -> EvalResult:
    result = result if result is not None else EvalResult()
    if config.max_length is not None and config.max_length != encoder.config.max_length:
        encoder.config = replace(encoder.config, max_length=config.max_length)
    emb = embed_benchmark(encoder, bench, batch_size=config.batch_size, cache_dir=config.cache_dir,
                          device=config.device, use_cache=config.use_cache, model_key=model_key)
    start = time.perf_counter()
    table, streamed = rank_benchmark(bench, emb.queries, emb.candidate_source(), config)
    scored = evaluate_settings(table, bench.name, settings=config.settings, ks=config.ks)
    result.timings[f"{bench.name}/encode"] = emb.seconds
    result.timings[f"{bench.name}/search"] = time.perf_counter() - start
    result.cached[bench.name] = emb.cached
    result.records += [r for r in scored.records if _reported(r.metric, config.metrics)]
    result.notes += list(bench.notes) + scored.notes
    if streamed:
        result.notes.append(f"{bench.name}: {len(bench.candidates)} candidates ranked from shards (their embeddings "
                            f"exceed eval.memory_mb={config.memory_mb})")
    return result


def evaluate_suite(encoder: DualEncoder, suite: BenchmarkSuite, config: EvalConfig = EvalConfig(),
                   result: EvalResult | None = None, model_key: str | None = None) -> EvalResult:
    """Every member of a suite under the suite's rule (see ``scaling.data.suites.SuiteRule``)."""
    result = result if result is not None else EvalResult()
    model_key = model_key or model_fingerprint(encoder)  # once, not once per member
    rule = suite.rule
    member_config = replace(config, settings=rule.settings or config.settings, ks=rule.ks or config.ks,
                            metrics=config.metrics if rule.metrics is None else RANKING_FAMILIES)
    if rule.pivot is None and rule.metrics is None:
        for bench in suite:
            evaluate_benchmark(encoder, bench, member_config, result, model_key)
        return result
    per_direction: dict[tuple[str, str, str, str], list[float]] = {}
    for bench in suite:
        part = evaluate_benchmark(encoder, bench, member_config, model_key=model_key)
        result.absorb(part)
        for r in part.records:
            if rule.metrics is not None and r.metric not in rule.metrics:
                continue
            metric = rule.metrics[r.metric] if rule.metrics is not None else r.metric
            if rule.pivot is None:
                result.records.append(replace(r, metric=metric))
                continue
            if r.query_lang == ALL:
                continue
            result.records.append(MetricRecord(suite.name, r.setting, r.query_lang, r.candidate_lang, metric, r.value))
            direction = (ALL, rule.pivot) if r.candidate_lang == rule.pivot else (rule.pivot, ALL)
            per_direction.setdefault((r.setting, *direction, metric), []).append(r.value)
    for (setting, q, c, metric), values in per_direction.items():
        result.records.append(MetricRecord(suite.name, setting, q, c, metric, float(np.mean(values))))
    return result


def write_records(result: EvalResult, path: str | Path) -> Path:
    """Parquet, written atomically (temporary name, then rename)."""
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(result.table(), tmp)
    tmp.replace(path)
    return path


def summary_rows(result: EvalResult, benchmarks: Sequence[str]) -> list[tuple[str, ...]]:
    """One row per benchmark: mono / cross / multi mAP and multilingual rank distance."""
    rows = []
    for name in benchmarks:
        cells = [name]
        for setting, metric in (("mono", "map"), ("cross", "map"), ("multi", "map"), ("multi", "rank_distance")):
            try:
                v = result.value(name, setting, metric)
                cells.append(f"{v:.1f}" if metric == "rank_distance" else f"{v:.3f}")
            except KeyError:
                cells.append("-")
        rows.append(tuple(cells))
    return rows
