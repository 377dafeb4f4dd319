"""Evaluation end to end: embedding cache, exact search backends, the mteb protocol, the job."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from scaling.data import load_benchmark
from scaling.eval.embeddings import embed_benchmark
from scaling.eval.evaluate import EvalConfig, evaluate_benchmark
from scaling.eval.mteb_adapter import MtebEncoder
from scaling.eval.search import search_topk
from scaling.models.tiny import tiny_encoder


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("parallel-qa:eval", languages=["en", "de", "zh"]).single()


@pytest.fixture(scope="module")
def encoder(bench):
    texts = bench.queries.column("text").to_pylist() + bench.candidates.column("text").to_pylist()
    return tiny_encoder(texts, hidden=32, layers=2, vocab_size=800)


def test_embeddings_are_cached_and_keyed_by_weights_and_settings(tmp_path, bench, encoder):
    first = embed_benchmark(encoder, bench, cache_dir=tmp_path)
    again = embed_benchmark(encoder, bench, cache_dir=tmp_path)
    assert not first.cached and again.cached and first.key == again.key
    np.testing.assert_array_equal(first.queries, again.queries)
    assert first.queries.shape == (90, 32) and first.candidates.shape[0] == len(bench.candidates)
    with torch.no_grad():
        encoder.backbone.encoder.layer[0].output.dense.bias.add_(0.01)  # a "retrained" checkpoint
    try:
        changed = embed_benchmark(encoder, bench, cache_dir=tmp_path)
        assert not changed.cached and changed.key != first.key
    finally:
        with torch.no_grad():
            encoder.backbone.encoder.layer[0].output.dense.bias.sub_(0.01)
    assert not list(tmp_path.glob(".writing-*"))


def test_evaluate_benchmark_records(tmp_path, bench, encoder):
    result = evaluate_benchmark(encoder, bench, EvalConfig(cache_dir=str(tmp_path), ks=(1, 10)))
    table = result.table()
    assert table.column_names == ["benchmark", "setting", "query_lang", "candidate_lang", "metric", "value"]
    settings = set(table.column("setting").to_pylist())
    assert settings == {"mono", "cross", "multi"}
    assert 0.0 <= result.value("parallel-qa:eval", "multi", "map") <= 1.0
    assert result.value("parallel-qa:eval", "multi", "queries", "en", "*") == 30
    cross_pairs = {(r.query_lang, r.candidate_lang) for r in result.records if r.setting == "cross" and r.query_lang != "*"}
    assert len(cross_pairs) == 6


def test_search_backends_agree_with_brute_force():
    rng = np.random.default_rng(0)
    q, c = rng.normal(size=(50, 16)).astype(np.float32), rng.normal(size=(1000, 16)).astype(np.float32)
    expected = np.argsort(-(q @ c.T), axis=1, kind="stable")[:, :10]
    for backend in ("torch", "faiss"):
        scores, idx = search_topk(q, c, 10, backend=backend, query_chunk=7, candidate_chunk=128)
        np.testing.assert_array_equal(idx, expected)
        np.testing.assert_allclose(scores, np.take_along_axis(q @ c.T, expected, axis=1), rtol=1e-5)
    with pytest.raises(ValueError, match="k=2000 must be between 1 and the pool size 1000"):
        search_topk(q, c, 2000)


def test_mteb_protocol_shape(encoder):
    pytest.importorskip("mteb", reason="the mteb extra is not installed")
    from mteb.models import EncoderProtocol
    from mteb.types import PromptType
    from torch.utils.data import DataLoader

    adapter = MtebEncoder(encoder, name="test/tiny")
    assert isinstance(adapter, EncoderProtocol)
    texts = ["bees have wings", "the nile", "ice floats"]
    loader = DataLoader([{"text": t} for t in texts], batch_size=2)
    q = adapter.encode(loader, task_metadata=None, hf_split="test", hf_subset="default", prompt_type=PromptType.query)
    p = adapter.encode(loader, task_metadata=None, hf_split="test", hf_subset="default", prompt_type=PromptType.document)
    np.testing.assert_allclose(q, encoder.encode(texts, "query"), atol=1e-5)
    np.testing.assert_allclose(p, encoder.encode(texts, "passage"), atol=1e-5)
    sims = adapter.similarity(q, p)
    assert tuple(sims.shape) == (3, 3)
    np.testing.assert_allclose(adapter.similarity_pairwise(q, p).numpy(), np.diag(sims.numpy()), atol=1e-5)
    meta = adapter.mteb_model_meta
    assert meta.name == "test/tiny" and meta.embed_dim == 32 and meta.n_parameters == encoder.parameter_counts()["total"]


def test_evaluate_job_writes_parquet_and_manifest_and_reuses_cache(tmp_path, bench, encoder, capsys):
    from scaling.eval.cli import main

    model_dir = tmp_path / "model"
    encoder.backbone.save_pretrained(model_dir)
    encoder.tokenizer.save_pretrained(model_dir)
    args = ["--model", str(model_dir), "--benchmark", "parallel-qa", "--languages", "en,de", "--out",
            str(tmp_path / "out"), "--ks", "1,10", "--query-prefix", "", "--passage-prefix", ""]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "parallel-qa:eval" in out and "mono mAP" in out
    table = pq.read_table(tmp_path / "out" / "metrics.parquet")
    rows = table.to_pylist()
    assert {r["setting"] for r in rows} == {"mono", "cross", "multi"}
    assert any(r["query_lang"] == "*" and r["metric"] == "rank_distance" for r in rows)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["encoder"]["parameters"]["total"] == encoder.parameter_counts()["total"]
    assert manifest["embeddings_cached"] == {"parallel-qa:eval": False} and "torch" in manifest["versions"]
    assert main(args) == 0
    assert "(cached embeddings)" in capsys.readouterr().out
    assert main(args[:-6] + ["--benchmark", "nope"]) == 2


def test_tatoeba_rule_reports_accuracy_per_direction_as_data(tmp_path, encoder):
    """Tatoeba is a suite of per-language benchmarks whose rule keeps cross-lingual recall@1 as
    accuracy@1 and macro-averages it per direction; checked against each member scored alone."""
    from scaling.data.tatoeba_retrieval import build_tatoeba
    from scaling.eval.evaluate import evaluate_suite

    pairs = {"deu": (["Hallo Welt.", "Danke sehr.", "Gute Nacht."], ["Hello world.", "Thanks a lot.", "Good night."]),
             "fra": (["Bonjour.", "Merci.", "Oui.", "Non."], ["Hello.", "Thanks.", "Yes.", "No."])}
    for code, (xs, es) in pairs.items():
        (tmp_path / f"tatoeba.{code}-eng.{code}").write_text("\n".join(xs) + "\n", encoding="utf-8")
        (tmp_path / f"tatoeba.{code}-eng.eng").write_text("\n".join(es) + "\n", encoding="utf-8")
    suite = build_tatoeba(tmp_path)
    config = EvalConfig(cache_dir=str(tmp_path / "cache"))
    result = evaluate_suite(encoder, suite, config)
    assert {r.benchmark for r in result.records} == {"tatoeba"} and {r.metric for r in result.records} == {"accuracy@1"}
    assert {r.setting for r in result.records} == {"cross"}
    alone = {}
    for lang, bench in suite.members.items():
        part = evaluate_benchmark(encoder, bench, EvalConfig(settings=("cross",), ks=(1,), cache_dir=config.cache_dir))
        alone[lang] = (part.value(bench.name, "cross", "recall@1", lang, "en"),
                       part.value(bench.name, "cross", "recall@1", "en", lang))
        assert result.value("tatoeba", "cross", "accuracy@1", lang, "en") == alone[lang][0]
        assert result.value("tatoeba", "cross", "accuracy@1", "en", lang) == alone[lang][1]
    assert result.value("tatoeba", "cross", "accuracy@1", "*", "en") == pytest.approx(np.mean([v[0] for v in alone.values()]))
    assert result.value("tatoeba", "cross", "accuracy@1", "en", "*") == pytest.approx(np.mean([v[1] for v in alone.values()]))


def test_evaluation_options_choose_metrics_and_are_checked(tmp_path, bench, encoder):
    result = evaluate_benchmark(encoder, bench, EvalConfig(cache_dir=str(tmp_path), ks=(1, 5), metrics=("map", "ndcg"),
                                                           settings=("multi",)))
    assert {r.metric for r in result.records} == {"map", "ndcg@1", "ndcg@5", "queries"}
    assert {r.setting for r in result.records} == {"multi"}
    for bad, message in (({"ks": (0,)}, "eval.ks"), ({"metrics": ("bleu",)}, "eval.metrics"),
                         ({"settings": ("bilingual",)}, "eval.settings"), ({"batch_size": 0}, "eval.batch_size")):
        with pytest.raises(ValueError, match=message):
            EvalConfig(**bad)
