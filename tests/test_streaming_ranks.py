"""Ranks from a pool read chunk by chunk (memory-mapped shards) equal the in-memory ranks, on
every metric, with ties, duplicate texts and self-excluded queries; streaming top-k."""

import numpy as np
import pytest

from scaling.data import DataError, RetrievalBenchmark
from scaling.eval import counting
from scaling.eval.ranks import compute_ranks
from scaling.eval.search import search_topk
from scaling.eval.settings import evaluate_settings
from scaling.eval.shards import ShardedPool, ShardWriter, write_pool
from scaling.eval.streaming import QuerySet, plan_memory, stream_ranks, stream_topk

LANGS = ("de", "en", "fr", "zh")


def mixed_bench(seed=0, nq=40, nc=300, max_rel=5, excluded=False, by_language=False):
    """Candidates in no language order (or one language after another, so that chunks miss some
    languages); graded judgements; optionally each query is also a candidate."""
    rng = np.random.default_rng(seed)
    lang = [LANGS[i * 4 // nc] if by_language else LANGS[int(rng.integers(4))] for i in range(nc)]
    cands = [{"id": f"c{i:03d}", "lang": lang[i], "text": "t"} for i in range(nc)]
    queries = [{"id": f"q{i:02d}", "lang": LANGS[i % 4], "text": "q", "group": str(i)} for i in range(nq)]
    rel, excl = {}, {}
    for i in range(nq):
        chosen = rng.choice(nc - nq, size=int(rng.integers(1, max_rel + 1)), replace=False) + nq
        rel[f"q{i:02d}"] = {f"c{j:03d}": int(rng.integers(1, 4)) for j in chosen}
        if excluded:
            excl[f"q{i:02d}"] = f"c{i:03d}"
    return RetrievalBenchmark.from_rows("mixed", queries, cands, rel, excluded=excl), rng


def shards(tmp_path, bench, c, shard_rows):
    return write_pool(tmp_path / "pool", c, bench.candidates.column("id").to_pylist(),
                      bench.candidates.column("lang").to_pylist(), shard_rows=shard_rows)


def assert_same(a, b, bench):
    assert a.query_ids == b.query_ids and a.candidate_langs == b.candidate_langs
    for name in ("pool_sizes", "rel_lang", "rel_grade", "ahead_own", "ahead_all", "excluded_lang", "query_langs"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    ra = evaluate_settings(a, bench.name, ks=(1, 10, 100)).records
    rb = evaluate_settings(b, bench.name, ks=(1, 10, 100)).records
    assert ra == rb and len(ra) > 100


@pytest.mark.parametrize("case", ["float", "ties", "duplicates", "excluded", "by_language"])
@pytest.mark.parametrize("row_sort", [False, True])
def test_streaming_equals_in_memory(tmp_path, monkeypatch, case, row_sort):
    monkeypatch.setattr(counting, "use_row_sort", lambda *a: row_sort)
    bench, rng = mixed_bench(seed=len(case), excluded=case == "excluded", by_language=case == "by_language")
    if case in ("ties", "duplicates", "excluded", "by_language"):
        q = rng.integers(-2, 3, size=(40, 6)).astype(np.float32)
        c = rng.integers(-2, 3, size=(300, 6)).astype(np.float32)
    else:
        q, c = rng.normal(size=(40, 24)).astype(np.float32), rng.normal(size=(300, 24)).astype(np.float32)
    if case == "duplicates":  # a relevant candidate's text repeated across shards and languages
        first = next(iter(bench.relevance["q00"]))
        j = int(first[1:])
        for k in (3, 77, 150, 299):
            c[k] = c[j]
    if case == "excluded":
        c[:40] = q  # each query's own candidate would top its ranking
    expected = compute_ranks(bench, q, c)
    pool = shards(tmp_path, bench, c, shard_rows=64)
    got = stream_ranks(QuerySet.of(bench), q, pool, query_block=16, chunk_rows=23)
    assert_same(got, expected, bench)
    if case != "float":
        assert (expected.ahead_all > 0).any()
    assert_same(stream_ranks(bench, q, pool, memory_mb=1), expected, bench)  # from the budget: one block, one chunk


def test_memory_plan_is_bounded_by_the_budget_not_the_pool():
    block, rows = plan_memory(10_000, 384, 256)
    assert block == 10_000 and rows * (12 * block + 8 * 384) <= 256 << 20
    block, rows = plan_memory(10_000_000, 384, 256)  # too many queries for one block
    assert block < 10_000_000 and rows >= 1024


def test_streaming_top_k_matches_in_memory_search(tmp_path):
    bench, rng = mixed_bench(seed=5)
    q, c = rng.normal(size=(40, 16)).astype(np.float32), rng.normal(size=(300, 16)).astype(np.float32)
    pool = shards(tmp_path, bench, c, shard_rows=50)
    scores, ids = stream_topk(q, pool, 10, memory_mb=1)
    ref_s, ref_i = search_topk(q, c, 10, backend="torch")
    names = np.array(bench.candidates.column("id").to_pylist(), dtype=object)
    np.testing.assert_allclose(scores, ref_s, rtol=1e-6)
    assert (ids == names[ref_i]).all()
    with pytest.raises(ValueError, match="between 1 and the pool size 300"):
        stream_topk(q, pool, 301)


def test_pool_files_and_their_errors(tmp_path):
    bench, rng = mixed_bench()
    c = rng.normal(size=(300, 8)).astype(np.float32)
    writer = ShardWriter(tmp_path / "p", 8)
    writer.add(c[:100], bench.candidates.column("id").to_pylist()[:100], bench.candidates.column("lang").to_pylist()[:100])
    with pytest.raises(DataError, match="pool.json is missing"):
        ShardedPool(tmp_path / "p")
    with pytest.raises(DataError, match=r"should be \(5, 8\)"):
        writer.add(c[:5, :4], ["a"] * 5, ["en"] * 5)
    pool = writer.close()
    assert len(pool) == 100 and pool.languages == tuple(sorted(set(bench.candidates.column("lang").to_pylist()[:100])))
    chunks = list(pool.chunks(30))
    assert [len(ch.ids) for ch in chunks] == [30, 30, 30, 10] and np.array_equal(chunks[1].embeddings, c[30:60])
    with pytest.raises(DataError, match="already holds a finished pool"):
        ShardWriter(tmp_path / "p", 8)
    with pytest.raises(DataError, match="not in the pool"):  # judgements name candidates 100..299
        stream_ranks(bench, rng.normal(size=(40, 8)).astype(np.float32), pool)
    with pytest.raises(DataError, match="dimension 7 but candidate embeddings 8"):
        stream_ranks(bench, rng.normal(size=(40, 7)).astype(np.float32), pool)
