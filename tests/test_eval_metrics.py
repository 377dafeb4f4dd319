"""Exact ranks and metrics against independent references: brute force, pytrec_eval, a hand case."""

import numpy as np
import pytest

from scaling.data import DataError, RetrievalBenchmark
from scaling.eval import metrics
from scaling.eval.ranks import compute_ranks
from scaling.eval.settings import evaluate_settings

pytrec_eval = pytest.importorskip("pytrec_eval", reason="pytrec_eval (dev extra) is the reference implementation")

LANGS = ("de", "en", "fr")


def random_bench(seed=0, nq=30, nc=240, max_rel=5, graded=False):
    rng = np.random.default_rng(seed)
    cands = [{"id": f"c{i:03d}", "lang": LANGS[(i * 7) % 3], "text": "t"} for i in range(nc)]
    queries = [{"id": f"q{i:02d}", "lang": LANGS[i % 3], "text": "q", "group": str(i)} for i in range(nq)]
    rel = {}
    for i in range(nq):
        chosen = rng.choice(nc, size=int(rng.integers(1, max_rel + 1)), replace=False)
        rel[f"q{i:02d}"] = {f"c{j:03d}": (int(rng.integers(1, 4)) if graded else 1) for j in chosen}
    return RetrievalBenchmark.from_rows("rand", queries, cands, rel), rng


def brute_force_ranks(bench, scores, lang=None):
    """Sort everything: score descending, then candidate id descending (trec_eval's order)."""
    ids = bench.candidates.column("id").to_pylist()
    clang = bench.candidates.column("lang").to_pylist()
    out = {}
    for i, qid in enumerate(bench.queries.column("id").to_pylist()):
        pool = [j for j in range(len(ids)) if lang is None or clang[j] == lang]
        pool.sort(key=lambda j: ids[j], reverse=True)
        pool.sort(key=lambda j: -scores[i, j])  # stable: ties keep descending-id order
        rank = {ids[j]: r + 1 for r, j in enumerate(pool)}
        out[qid] = {c: rank[c] for c in bench.relevance[qid] if c in rank}
    return out


def as_dict(bench, table, lang_index):
    ranks = table.ranks_in(lang_index)
    out = {}
    for i, qid in enumerate(table.query_ids):
        rel_sorted = sorted(bench.relevance[qid])
        out[qid] = {c: int(ranks[i, j]) for j, c in enumerate(rel_sorted) if ranks[i, j] > 0}
    return out


@pytest.mark.parametrize("integer_scores", [False, True])  # integer embeddings make many exact ties
def test_ranks_match_brute_force_in_every_pool(integer_scores):
    bench, rng = random_bench()
    if integer_scores:
        q = rng.integers(-2, 3, size=(30, 6)).astype(np.float32)
        c = rng.integers(-2, 3, size=(240, 6)).astype(np.float32)
    else:
        q, c = rng.normal(size=(30, 16)).astype(np.float32), rng.normal(size=(240, 16)).astype(np.float32)
    table = compute_ranks(bench, q, c, query_chunk=7)
    scores = q.astype(np.float64) @ c.astype(np.float64).T
    if integer_scores:
        assert (np.diff(np.sort(scores, axis=1), axis=1) == 0).sum() > 1000  # the case really has ties
    assert as_dict(bench, table, None) == brute_force_ranks(bench, scores)
    for li, lang in enumerate(table.candidate_langs):
        assert as_dict(bench, table, li) == brute_force_ranks(bench, scores, lang)


def test_chunking_does_not_change_ranks():
    bench, rng = random_bench(seed=3)
    q, c = rng.normal(size=(30, 8)).astype(np.float32), rng.normal(size=(240, 8)).astype(np.float32)
    a = compute_ranks(bench, q, c, query_chunk=1)
    b = compute_ranks(bench, q, c)
    assert np.array_equal(a.ahead_own, b.ahead_own) and np.array_equal(a.ahead_all, b.ahead_all)


def test_metrics_agree_with_pytrec_eval_including_ties_and_grades():
    bench, rng = random_bench(seed=1, graded=True)
    q = rng.integers(-2, 3, size=(30, 6)).astype(np.float32)  # exact arithmetic: both sides see the same ties
    c = rng.integers(-2, 3, size=(240, 6)).astype(np.float32)
    table = compute_ranks(bench, q, c)
    s = q @ c.T
    ids = bench.candidates.column("id").to_pylist()
    run = {qid: {cid: float(s[i, j]) for j, cid in enumerate(ids)} for i, qid in enumerate(table.query_ids)}
    qrels = {qid: dict(rel) for qid, rel in bench.relevance.items()}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"map", "ndcg_cut.10,100", "recall.1,10,100", "recip_rank",
                                                 "P.1,10,100"}).evaluate(run)
    r, g = table.ranks_in(None), table.rel_grade
    ours = {"map": metrics.average_precision(r), "ndcg_cut_10": metrics.ndcg_at(r, g, 10),
            "ndcg_cut_100": metrics.ndcg_at(r, g, 100), "recall_1": metrics.recall_at(r, 1),
            "recall_10": metrics.recall_at(r, 10), "recall_100": metrics.recall_at(r, 100),
            "recip_rank": metrics.mrr_at(r, 10 ** 9), "P_1": metrics.precision_at(r, 1),
            "P_10": metrics.precision_at(r, 10), "P_100": metrics.precision_at(r, 100)}
    for name, values in ours.items():
        expected = np.array([ref[qid][name] for qid in table.query_ids])
        np.testing.assert_allclose(values, expected, atol=1e-4, err_msg=name)  # trec_eval prints 4 decimals


def test_hand_worked_case_settings_macro_average_and_rank_distance():
    # Two languages, one question group asked in both; 2 candidates per language.
    # Scores are set directly through 1-D embeddings: query . candidate = q * c.
    queries = [{"id": "en/q", "lang": "en", "text": "q", "group": "g"},
               {"id": "de/q", "lang": "de", "text": "q", "group": "g"}]
    cands = [{"id": "en/a", "lang": "en", "text": "a"}, {"id": "en/x", "lang": "en", "text": "x"},
             {"id": "de/a", "lang": "de", "text": "a"}, {"id": "de/x", "lang": "de", "text": "x"}]
    rel = {"en/q": {"en/a": 1, "de/a": 1}, "de/q": {"en/a": 1, "de/a": 1}}
    bench = RetrievalBenchmark.from_rows("hand", queries, cands, rel)
    q = np.array([[1.0], [1.0]], dtype=np.float32)
    c = np.array([[4.0], [3.0], [1.0], [2.0]], dtype=np.float32)  # merged order: en/a, en/x, de/x, de/a
    res = evaluate_settings(compute_ranks(bench, q, c), "hand", ks=(1,))
    v = {(r.setting, r.query_lang, r.candidate_lang, r.metric): r.value for r in res.records}
    # mono: en->en: en/a at rank 1 -> AP 1; de->de: de/a behind de/x -> rank 2 -> AP 1/2. Macro 0.75.
    assert v[("mono", "en", "en", "map")] == 1.0 and v[("mono", "de", "de", "map")] == 0.5
    assert v[("mono", "*", "*", "map")] == 0.75
    # cross: en->de AP 1/2, de->en AP 1; macro over the two pairs 0.75.
    assert v[("cross", "en", "de", "map")] == 0.5 and v[("cross", "de", "en", "map")] == 1.0
    assert v[("cross", "*", "*", "map")] == 0.75
    # multi: relevant at ranks 1 and 4 -> AP (1/1 + 2/4)/2 = 0.75; rank distance 4 - 1 = 3.
    assert v[("multi", "en", "*", "map")] == 0.75 and v[("multi", "*", "*", "rank_distance")] == 3.0
    assert v[("multi", "en", "*", "recall@1")] == 0.5 and v[("multi", "de", "*", "queries")] == 1


def test_pairs_without_relevant_candidates_are_skipped_and_reported():
    queries = [{"id": "q", "lang": "en", "text": "q", "group": "g"}]
    cands = [{"id": "a", "lang": "en", "text": "a"}, {"id": "b", "lang": "de", "text": "b"}]
    bench = RetrievalBenchmark.from_rows("mlqa-like", queries, cands, {"q": {"a": 1}})
    res = evaluate_settings(compute_ranks(bench, np.ones((1, 2), np.float32), np.eye(2, dtype=np.float32)), "x",
                            ks=(1, 10))
    assert not [r for r in res.records if r.setting == "cross" and r.metric == "map"]
    assert any("en->de: no query has a relevant candidate" in n for n in res.notes)
    assert any("k=[10] not reported" in n for n in res.notes)


def test_bad_input_errors():
    bench, rng = random_bench()
    q, c = rng.normal(size=(30, 8)).astype(np.float32), rng.normal(size=(240, 8)).astype(np.float32)
    with pytest.raises(DataError, match="dimension 8 but candidate embeddings 9"):
        compute_ranks(bench, q, rng.normal(size=(240, 9)).astype(np.float32))
    with pytest.raises(DataError, match="do not match the benchmark"):
        compute_ranks(bench, q[:5], c)
    table = compute_ranks(bench, q, c)
    with pytest.raises(ValueError, match="unknown evaluation setting"):
        evaluate_settings(table, "x", settings=("bilingual",))
    with pytest.raises(ValueError, match="k values must be >= 1"):
        evaluate_settings(table, "x", ks=(0,))


def test_metric_edge_cases():
    ranks = np.array([[3, 1, 0], [0, 0, 0]])
    np.testing.assert_allclose(metrics.average_precision(ranks), [(1 / 1 + 2 / 3) / 2, 0.0])
    np.testing.assert_allclose(metrics.mrr_at(ranks, 2), [1.0, 0.0])
    np.testing.assert_allclose(metrics.rank_distance(ranks), [2.0, 0.0])
    np.testing.assert_allclose(metrics.recall_at(ranks, 2), [0.5, 0.0])


def test_precision_and_f1_at_k_by_hand():
    ranks = np.array([[1, 4, 0], [3, 0, 0], [0, 0, 0]])  # relevant at ranks 1 and 4; at 3; none
    np.testing.assert_allclose(metrics.precision_at(ranks, 2), [0.5, 0.0, 0.0])
    np.testing.assert_allclose(metrics.recall_at(ranks, 5), [1.0, 1.0, 0.0])
    np.testing.assert_allclose(metrics.precision_at(ranks, 5), [0.4, 0.2, 0.0])
    np.testing.assert_allclose(metrics.f1_at(ranks, 5), [2 * 0.4 * 1 / 1.4, 2 * 0.2 / 1.2, 0.0])
    np.testing.assert_allclose(metrics.f1_at(ranks, 2), [2 * 0.5 * 0.5 / 1.0, 0.0, 0.0])
