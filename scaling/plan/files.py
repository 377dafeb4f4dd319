"""A plan's data files: the training corpus and benchmark suites as Parquet on any store
(a local folder or a cloud URI), written once and read back without re-validating every row.
Each file's content hash is recorded in the plan and checked when it is read."""

from __future__ import annotations

import io
import posixpath

import pyarrow as pa
import pyarrow.parquet as pq

from scaling.data.benchmark import RetrievalBenchmark
from scaling.data.corpus import ParallelCorpus
from scaling.data.errors import DataError
from scaling.data.suites import BenchmarkSuite, SuiteRule
from scaling.store import ResultStore

RELEVANCE_SCHEMA = pa.schema([("query_id", pa.string()), ("candidate_id", pa.string()), ("grade", pa.int64())])
EXCLUDED_SCHEMA = pa.schema([("query_id", pa.string()), ("candidate_id", pa.string())])


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def write_corpus(store: ResultStore, relpath: str, corpus: ParallelCorpus) -> None:
    store.write_bytes(relpath, _parquet(corpus.table))


def read_corpus(store: ResultStore, relpath: str, content_hash: str) -> ParallelCorpus:
    corpus = ParallelCorpus(store.read_table(relpath))  # validated when the plan was built
    if corpus.fingerprint() != content_hash:
        raise DataError(f"content hash {corpus.fingerprint()} differs from the plan's {content_hash}",
                        file=store.path(relpath), hint="the plan's corpus was changed after planning; plan the trial again")
    return corpus


def write_suite(store: ResultStore, folder: str, suite: BenchmarkSuite) -> None:
    """``suite.json`` (rule, members) last, after each member's queries, candidates and relevance."""
    folders = {key: f"member-{i}" for i, key in enumerate(suite.members)}
    for key, bench in suite.members.items():
        part = posixpath.join(folder, folders[key])
        relevance = pa.Table.from_pylist([{"query_id": q, "candidate_id": c, "grade": g}
                                          for q, rel in bench.relevance.items() for c, g in rel.items()],
                                         schema=RELEVANCE_SCHEMA)
        store.write_bytes(f"{part}/queries.parquet", _parquet(bench.queries))
        store.write_bytes(f"{part}/candidates.parquet", _parquet(bench.candidates))
        store.write_bytes(f"{part}/relevance.parquet", _parquet(relevance))
        if bench.excluded:
            excluded = pa.Table.from_pylist([{"query_id": q, "candidate_id": c} for q, c in bench.excluded.items()],
                                            schema=EXCLUDED_SCHEMA)
            store.write_bytes(f"{part}/excluded.parquet", _parquet(excluded))
        store.write_json(f"{part}/meta.json", {"name": bench.name, "titles": sorted(bench.titles),
                                               "notes": list(bench.notes), "content_hash": bench.fingerprint(),
                                               "excluded": bool(bench.excluded)})
    rule = suite.rule
    store.write_json(f"{folder}/suite.json", {
        "name": suite.name, "source": suite.source, "members": folders,
        "rule": {"settings": rule.settings, "ks": rule.ks, "metrics": dict(rule.metrics) if rule.metrics else None,
                 "pivot": rule.pivot}})


def read_suite(store: ResultStore, folder: str) -> BenchmarkSuite:
    meta = store.read_json(f"{folder}/suite.json")
    members = {}
    for key, sub in meta["members"].items():
        part = posixpath.join(folder, sub)
        info = store.read_json(f"{part}/meta.json")
        relevance: dict[str, dict[str, int]] = {}
        for row in store.read_table(f"{part}/relevance.parquet").to_pylist():
            relevance.setdefault(row["query_id"], {})[row["candidate_id"]] = int(row["grade"])
        excluded = {}
        if info.get("excluded"):
            excluded = {row["query_id"]: row["candidate_id"]
                        for row in store.read_table(f"{part}/excluded.parquet").to_pylist()}
        bench = RetrievalBenchmark(info["name"], store.read_table(f"{part}/queries.parquet"),
                                   store.read_table(f"{part}/candidates.parquet"), relevance,
                                   titles=frozenset(info["titles"]), notes=tuple(info["notes"]), excluded=excluded)
        if bench.fingerprint() != info["content_hash"]:
            raise DataError("benchmark content differs from what was planned", file=store.path(part),
                            hint="plan the trial again")
        members[key] = bench
    rule = meta["rule"]
    return BenchmarkSuite(meta["name"], members, SuiteRule(
        settings=tuple(rule["settings"]) if rule["settings"] else None, ks=tuple(rule["ks"]) if rule["ks"] else None,
        metrics=rule["metrics"], pivot=rule["pivot"]), meta["source"])
