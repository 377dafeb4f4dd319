"""How evaluation ranks: in memory within ``eval.memory_mb``, from shards beyond it, with torch
(``exact``) or faiss scores; every way gives the same rank table and the same metric rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_streaming_ranks import assert_same, mixed_bench

from conftest import TINY_STUDY
from scaling.data import load_benchmark
from scaling.eval.evaluate import EvalConfig, evaluate_suite, fits_in_memory, rank_benchmark
from scaling.eval.ranks import compute_ranks
from scaling.eval.settings import evaluate_settings
from scaling.eval.shards import write_pool
from scaling.eval.streaming import QuerySet, stream_ranks
from scaling.models.tiny import tiny_encoder


@pytest.fixture(scope="module")
def suite():
    return load_benchmark("parallel-qa:eval")


@pytest.fixture(scope="module")
def wide_encoder(suite):
    """576-dimensional: the 488 candidates' embeddings (1.1 MB) exceed a 1 MB budget."""
    bench = suite.single()
    texts = bench.queries.column("text").to_pylist() + bench.candidates.column("text").to_pylist()
    return tiny_encoder(texts, hidden=576, layers=1, heads=2, vocab_size=600)


def _rows(result):
    return sorted((r.benchmark, r.setting, r.query_lang, r.candidate_lang, r.metric, r.value) for r in result.records)


def test_a_pool_beyond_the_budget_is_ranked_from_shards_with_the_same_metrics(suite, wide_encoder, tmp_path):
    bench = suite.single()
    assert not fits_in_memory(len(bench.candidates), 576, 1) and fits_in_memory(len(bench.candidates), 576, 2)
    in_memory = evaluate_suite(wide_encoder, suite, EvalConfig(cache_dir=str(tmp_path), memory_mb=256))
    streamed = evaluate_suite(wide_encoder, suite, EvalConfig(cache_dir=str(tmp_path), memory_mb=1))
    assert _rows(streamed) == _rows(in_memory) and len(in_memory.records) > 300
    assert any("488 candidates ranked from shards" in n for n in streamed.notes)
    assert not any("from shards" in n for n in in_memory.notes)
    assert not list(tmp_path.glob(".pool-*"))  # the shards are removed once ranked


def test_rank_benchmark_chooses_by_the_budget(tmp_path):
    bench, rng = mixed_bench(seed=3, nq=40, nc=300)
    q, c = rng.normal(size=(40, 1000)).astype(np.float32), rng.normal(size=(300, 1000)).astype(np.float32)
    table, streamed = rank_benchmark(bench, q, c, EvalConfig(memory_mb=1, cache_dir=str(tmp_path)))  # 1.2 MB
    expected, in_memory = rank_benchmark(bench, q, c, EvalConfig(memory_mb=2))
    assert streamed and not in_memory
    assert_same(table, expected, bench)


@pytest.mark.parametrize("case", ["ties", "excluded"])
def test_faiss_scores_give_the_same_ranks(tmp_path, case):
    """Small-integer embeddings (exact arithmetic: ties and duplicates are real ties in both)."""
    bench, rng = mixed_bench(seed=5, excluded=case == "excluded")
    q = rng.integers(-2, 3, size=(40, 6)).astype(np.float32)
    c = rng.integers(-2, 3, size=(300, 6)).astype(np.float32)
    if case == "excluded":
        c[:40] = q
    exact = compute_ranks(bench, q, c)
    assert (exact.ahead_all > 0).any()
    assert_same(compute_ranks(bench, q, c, backend="faiss", query_chunk=7), exact, bench)
    pool = write_pool(tmp_path / "pool", c, bench.candidates.column("id").to_pylist(),
                      bench.candidates.column("lang").to_pylist(), shard_rows=64)
    assert_same(stream_ranks(QuerySet.of(bench), q, pool, query_block=16, chunk_rows=23, backend="faiss"), exact, bench)


def _same_rows_to_near_ties(got, want) -> None:
    """The same rows and values, but for candidates whose two scores differ in the last bits.

    faiss's kernel and torch's matmul round differently, and the rounding depends on the CPU's
    instruction set, so on real float embeddings a near-tie can flip by one rank. Exact equality
    is asserted where the arithmetic is exact (``test_faiss_scores_give_the_same_ranks``)."""
    got, want = _rows(got), _rows(want)
    assert [r[:5] for r in got] == [r[:5] for r in want]
    flipped = [(g, w) for g, w in zip(got, want) if g[5] != w[5]]
    assert len(flipped) <= len(want) // 10, flipped[:5]
    # one swapped pair moves a mean over a language's 30 queries by at most 1/30 of a query's value
    assert all(abs(g[5] - w[5]) <= 0.04 * max(1.0, abs(w[5])) for g, w in flipped), flipped[:5]


def test_faiss_backend_gives_the_same_metric_rows_on_a_real_suite(suite, wide_encoder, tmp_path):
    exact = evaluate_suite(wide_encoder, suite, EvalConfig(cache_dir=str(tmp_path)))
    with_faiss = evaluate_suite(wide_encoder, suite, EvalConfig(cache_dir=str(tmp_path), backend="faiss"))
    _same_rows_to_near_ties(with_faiss, exact)
    streamed = evaluate_suite(wide_encoder, suite, EvalConfig(cache_dir=str(tmp_path), backend="faiss", memory_mb=1))
    _same_rows_to_near_ties(streamed, exact)
    bench = suite.single()
    rng = np.random.default_rng(0)
    q = rng.normal(size=(len(bench.queries), 16)).astype(np.float32)
    c = rng.normal(size=(len(bench.candidates), 16)).astype(np.float32)
    a = evaluate_settings(compute_ranks(bench, q, c), bench.name).records
    assert evaluate_settings(compute_ranks(bench, q, c, backend="faiss"), bench.name).records == a


def test_the_backend_is_a_checked_setting():
    from scaling.sweep.study import StudyConfigError, build_study

    with pytest.raises(ValueError, match=r"eval.backend 'annoy': choose one of \['exact', 'faiss'\]"):
        EvalConfig(backend="annoy")
    raw = json.loads(json.dumps(TINY_STUDY))
    ids = [t.trial_id for t in build_study(raw, []).trials]
    assert [t.trial_id for t in build_study({**raw, "eval": {"backend": "exact"}}, []).trials] == ids
    faiss_study = build_study({**raw, "eval": {"backend": "faiss"}}, [])
    # both backends give the same ranks: the backend is where a trial runs, not what it computes
    assert faiss_study.eval.backend == "faiss" and [t.trial_id for t in faiss_study.trials] == ids
    with pytest.raises(StudyConfigError, match="eval.backend 'annoy'"):
        build_study({**raw, "eval": {"backend": "annoy"}}, [])
