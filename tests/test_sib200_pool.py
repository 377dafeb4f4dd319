"""The SIB-200 merged pool: every sentence a query and a candidate, translations relevant, each
query's own sentence excluded; its metrics against a sort-everything brute force."""

import numpy as np
import pytest

from scaling.data import DataError, RetrievalBenchmark, load_benchmark
from scaling.eval import counting
from scaling.eval.evaluate import EvalConfig, evaluate_suite
from scaling.eval.ranks import compute_ranks
from scaling.eval.settings import evaluate_settings
from scaling.plan.files import read_suite, write_suite
from scaling.store import ResultStore

CODES = ("deu_Latn", "fra_Latn", "zho_Hans")
N = 20


def write_sib(root, codes=CODES, n=N, missing=()):
    """A SIB-200 folder laid out like ../shared/data/sib-200 (index ids shared across languages)."""
    for code in codes:
        for split in ("train", "dev", "test"):
            lines = ["index_id\tcategory\ttext"]
            lines += [f"{100 + i}\tscience\t{code} {split} sentence {i}" for i in range(n)
                      if (code, 100 + i) not in missing]
            path = root / "sib-200" / code / f"{split}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def pool(tmp_path):
    return load_benchmark("sib-200", data_dir=write_sib(tmp_path), languages=list(CODES))


def test_pool_shape_rule_and_self_exclusion(pool):
    assert pool.name == "sib-200:test" and pool.rule.settings == ("cross", "multi")
    bench = pool.single()
    assert bench.query_languages == ("de", "fr", "zh") == bench.candidate_languages
    s = bench.summary()
    assert s["queries"] == s["candidates"] == 3 * N and s["relevant_per_query"] == {2: 3 * N}
    assert bench.relevant("de/100") == {"fr/100", "zh/100"} and bench.excluded["de/100"] == "de/100"
    assert "test sentence 0" in bench.queries.column("text")[0].as_py()  # the test split by default


def test_split_languages_and_untranslated_sentences(tmp_path):
    root = write_sib(tmp_path, missing={("fra_Latn", 101), ("zho_Hans", 101)})
    suite = load_benchmark("sib-200:dev", data_dir=root, languages=["de", "fr", "zh"])  # any code style
    bench = suite.single()
    assert suite.name == "sib-200:dev" and "dev sentence" in bench.queries.column("text")[0].as_py()
    assert len(bench.queries) == 3 * N - 3 and len(bench.candidates) == 3 * N - 2  # de/101 stays a candidate
    assert any("1 sentences have no translation" in n for n in bench.notes)
    folder = load_benchmark(str(root / "sib-200"), languages=["deu_Latn", "fra_Latn"])  # a folder path
    assert folder.rule == suite.rule and len(folder.single().queries) == 2 * N - 2
    with pytest.raises(DataError, match="at least two languages"):
        load_benchmark("sib-200", data_dir=root, languages=["deu_Latn"])
    with pytest.raises(DataError, match="has no data for"):
        load_benchmark("sib-200", data_dir=root, languages=["deu_Latn", "spa_Latn"])


def test_excluded_is_validated():
    q = [{"id": "q", "lang": "en", "text": "x", "group": "g"}]
    c = [{"id": "q", "lang": "en", "text": "x"}, {"id": "d", "lang": "de", "text": "y"}]
    with pytest.raises(DataError, match="both relevant to and excluded"):
        RetrievalBenchmark.from_rows("b", q, c, {"q": {"q": 1}}, excluded={"q": "q"})
    with pytest.raises(DataError, match="not in the pool"):
        RetrievalBenchmark.from_rows("b", q, c, {"q": {"d": 1}}, excluded={"q": "zz"})


def brute_force(bench, scores, ks=(1, 10)):
    """Sort everything per query (its own sentence left out): score desc, then id desc; then the
    method's macro-averages (cross: over language pairs; multi: over query languages)."""
    ids = bench.candidates.column("id").to_pylist()
    clang = bench.candidates.column("lang").to_pylist()
    qids = bench.queries.column("id").to_pylist()
    qlang = bench.queries.column("lang").to_pylist()
    langs = sorted(set(clang))

    def ranks(i, lang):
        pool = [j for j in range(len(ids)) if ids[j] != bench.excluded[qids[i]] and (lang is None or clang[j] == lang)]
        pool.sort(key=lambda j: ids[j], reverse=True)
        pool.sort(key=lambda j: -scores[i, j])
        order = {ids[j]: r + 1 for r, j in enumerate(pool)}
        return sorted(order[c] for c in bench.relevance[qids[i]] if c in order)

    def ap(r):
        return np.mean([(k + 1) / rank for k, rank in enumerate(r)])

    out = {}
    for x in langs:
        rows = [i for i in range(len(qids)) if qlang[i] == x]
        full = [ranks(i, None) for i in rows]
        out[("multi", x, "*", "map")] = np.mean([ap(r) for r in full])
        out[("multi", x, "*", "rank_distance")] = np.mean([r[-1] - r[0] for r in full])
        for k in ks:
            out[("multi", x, "*", f"recall@{k}")] = np.mean([np.mean([rank <= k for rank in r]) for r in full])
        for y in langs:
            if y != x:
                out[("cross", x, y, "map")] = np.mean([ap(ranks(i, y)) for i in rows])
    for setting, metric in (("cross", "map"), ("multi", "map"), ("multi", "rank_distance")):
        out[(setting, "*", "*", metric)] = np.mean([v for (s, q, c, m), v in out.items()
                                                   if s == setting and m == metric and q != "*"])
    return out


@pytest.mark.parametrize("row_sort", [False, True])  # both ways of counting the merged pool
@pytest.mark.parametrize("exact_ties", [False, True])
def test_metrics_equal_brute_force(pool, monkeypatch, row_sort, exact_ties):
    monkeypatch.setattr(counting, "use_row_sort", lambda *a: row_sort)
    bench = pool.single()
    rng = np.random.default_rng(7)
    if exact_ties:  # small integers: many exact ties, and duplicate vectors (duplicate texts)
        q = rng.integers(-1, 2, size=(3 * N, 4)).astype(np.float32)
        c = rng.integers(-1, 2, size=(3 * N, 4)).astype(np.float32)
        c[5] = c[25] = c[45]  # one sentence's translations embedded identically
    else:
        q = rng.normal(size=(3 * N, 12)).astype(np.float32)
        c = (q + rng.normal(scale=1.5, size=q.shape)).astype(np.float32)  # its own sentence scores high
    table = compute_ranks(bench, q, c, query_chunk=7)
    res = evaluate_settings(table, bench.name, settings=pool.rule.settings, ks=(1, 10))
    got = {(r.setting, r.query_lang, r.candidate_lang, r.metric): r.value for r in res.records}
    expected = brute_force(bench, q.astype(np.float64) @ c.astype(np.float64).T)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    assert got[("multi", "de", "*", "queries")] == N
    assert not any(r.setting == "mono" for r in res.records)


def test_self_exclusion_changes_only_what_it_should(pool):
    """Without the exclusion the query's own sentence (score 1 against itself) would take rank 1."""
    bench = pool.single()
    rng = np.random.default_rng(0)
    e = rng.normal(size=(3 * N, 8)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    table = compute_ranks(bench, e, e)
    assert (table.excluded_lang >= 0).all()
    plain = RetrievalBenchmark(bench.name, bench.queries, bench.candidates, bench.relevance)
    base = compute_ranks(plain, e, e)
    # every relevant candidate had the query itself ahead of it in the merged pool, never in another language
    assert np.array_equal(base.ahead_all - table.ahead_all, np.ones_like(table.ahead_all))
    assert np.array_equal(base.ahead_own, table.ahead_own)
    assert table.pool_size(np.arange(3), None) == 3 * N - 1 and table.pool_size(np.arange(3), 1) == N


def test_evaluate_suite_with_a_tiny_encoder_and_plan_files(tmp_path, pool):
    from scaling.eval.embeddings import embed_benchmark
    from scaling.models.tiny import tiny_encoder

    bench = pool.single()
    encoder = tiny_encoder(bench.candidates.column("text").to_pylist(), hidden=32, layers=2, vocab_size=300)
    result = evaluate_suite(encoder, pool, EvalConfig(cache_dir=str(tmp_path / "cache"), ks=(1, 10)))
    assert {r.setting for r in result.records} == {"cross", "multi"}
    emb = embed_benchmark(encoder, bench, cache_dir=tmp_path / "cache")
    expected = brute_force(bench, emb.queries.astype(np.float64) @ emb.candidates.astype(np.float64).T)
    for key in (("cross", "*", "*", "map"), ("multi", "*", "*", "map"), ("multi", "*", "*", "rank_distance")):
        assert result.value(bench.name, key[0], key[3]) == pytest.approx(expected[key], abs=1e-9)
    store = ResultStore(tmp_path / "plan")  # the exclusion travels with a trial plan
    write_suite(store, "suite", pool)
    again = read_suite(store, "suite")
    assert dict(again.single().excluded) == dict(bench.excluded) and again.rule == pool.rule


def test_real_sib200_pool(data_dir):
    suite = load_benchmark("sib-200", data_dir=data_dir, languages=["deu_Latn", "fra_Latn", "zho_Hans"])
    bench = suite.single()
    s = bench.summary()
    assert suite.name == "sib-200:test" and bench.query_languages == ("de", "fr", "zh")
    assert s["queries"] == s["candidates"] == 3 * 204 and s["relevant_per_query"] == {2: 3 * 204}
    assert s["queries_per_language"] == {"de": 204, "fr": 204, "zh": 204}
    assert s["excluded_self_matches"] == 3 * 204 and len(s["notes"]) == 0
    assert bench.relevant("de/1523") == {"fr/1523", "zh/1523"}
