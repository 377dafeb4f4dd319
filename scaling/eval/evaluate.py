"""Evaluate an encoder on benchmarks: embed (cached), rank exactly, score every setting.

Results are tidy records ``benchmark, setting, query_lang, candidate_lang, metric, value`` that
``jobs/evaluate.py`` and the sweep write to Parquet.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import pyarrow as pa

from scaling.data.benchmark import RetrievalBenchmark
from scaling.eval.embeddings import embed_benchmark, model_fingerprint
from scaling.eval.ranks import compute_ranks
from scaling.eval.settings import SETTINGS, MetricRecord, evaluate_settings
from scaling.models.encoder import DualEncoder

RECORD_SCHEMA = pa.schema([("benchmark", pa.string()), ("setting", pa.string()), ("query_lang", pa.string()),
                           ("candidate_lang", pa.string()), ("metric", pa.string()), ("value", pa.float64())])


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings, recorded with results."""

    settings: tuple[str, ...] = SETTINGS
    ks: tuple[int, ...] = (1, 10, 100)
    batch_size: int = 64
    query_chunk: int | None = None  # default: as many queries as fit memory_mb of scores
    memory_mb: int = 256
    device: str | None = None
    cache_dir: str | None = None
    use_cache: bool = True


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


def evaluate_benchmark(encoder: DualEncoder, bench: RetrievalBenchmark, config: EvalConfig = EvalConfig(),
                       result: EvalResult | None = None, model_key: str | None = None) -> EvalResult:
    result = result if result is not None else EvalResult()
    emb = embed_benchmark(encoder, bench, batch_size=config.batch_size, cache_dir=config.cache_dir,
                          device=config.device, use_cache=config.use_cache, model_key=model_key)
    start = time.perf_counter()
    table = compute_ranks(bench, emb.queries, emb.candidates, query_chunk=config.query_chunk,
                          memory_mb=config.memory_mb, device=config.device)
    scored = evaluate_settings(table, bench.name, settings=config.settings, ks=config.ks)
    result.timings[f"{bench.name}/encode"] = emb.seconds
    result.timings[f"{bench.name}/search"] = time.perf_counter() - start
    result.cached[bench.name] = emb.cached
    result.records += scored.records
    result.notes += list(bench.notes) + scored.notes
    return result


def evaluate_tatoeba(encoder: DualEncoder, benches: Mapping[str, RetrievalBenchmark],
                     config: EvalConfig = EvalConfig(), result: EvalResult | None = None,
                     model_key: str | None = None) -> EvalResult:
    """XTREME's Tatoeba score: accuracy@1 in both directions per language, and their macro-averages."""
    result = result if result is not None else EvalResult()
    model_key = model_key or model_fingerprint(encoder)  # once, not once per language
    tatoeba_config = EvalConfig(**{**asdict(config), "settings": ("cross",), "ks": (1,)})
    per_direction: dict[str, list[float]] = {"xx->en": [], "en->xx": []}
    for lang, bench in sorted(benches.items()):
        part = evaluate_benchmark(encoder, bench, tatoeba_config, model_key=model_key)
        result.timings.update(part.timings)
        result.cached.update(part.cached)
        result.notes += part.notes
        for r in part.records:
            if r.metric == "recall@1" and r.query_lang != "*":
                result.records.append(MetricRecord("tatoeba", "cross", r.query_lang, r.candidate_lang,
                                                   "accuracy@1", r.value))
                per_direction["en->xx" if r.query_lang == "en" else "xx->en"].append(r.value)
    for direction, values in per_direction.items():
        if values:
            q, c = ("*", "en") if direction == "xx->en" else ("en", "*")
            result.records.append(MetricRecord("tatoeba", "cross", q, c, "accuracy@1", sum(values) / len(values)))
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
