"""``mteb:`` benchmarks: a local task in mteb's dataset layout (on disk, no hub) runs through
``mteb.evaluate`` and its rows equal an independent computation (pytrec_eval on the same
embeddings); names are checked offline before anything runs; results come from mteb's cache."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import TINY_STUDY
from scaling.eval.evaluate import EvalConfig
from scaling.eval.mteb_tasks import LOCAL_TASKS, MtebSource, MtebTaskError, cache_revision, evaluate_mteb, register_mteb_task
from scaling.models.tiny import tiny_encoder
from scaling.sweep.study import StudyConfigError, build_study

pytest.importorskip("mteb", reason="the mteb extra is not installed")
pytrec_eval = pytest.importorskip("pytrec_eval", reason="pytrec_eval (dev extra) is the independent reference")

TASK = "LocalTinyRetrieval"
# subset -> (queries, corpus, qrels); subset names and languages in mteb's order: query, corpus
SUBSETS = {
    "eng-eng": (["the cat sat on the mat", "dogs run in the park", "red apples grow on trees", "the sky is blue today"],
                ["a cat sat on a mat", "the dog runs fast", "apples are red and sweet", "the blue sky at noon",
                 "bread and butter", "trains leave at nine", "a song about rain"],
                {0: {0: 1}, 1: {1: 1, 5: 1}, 2: {2: 2}, 3: {3: 1}}),
    "deu-eng": (["die katze sitzt auf der matte", "hunde laufen im park", "der himmel ist blau"],
                ["a cat sat on a mat", "the dog runs fast", "the blue sky at noon", "a song about rain", "cold tea"],
                {0: {0: 1}, 1: {1: 1}, 2: {2: 1, 3: 1}}),
}
LANGS = {"eng-eng": ["eng-Latn", "eng-Latn"], "deu-eng": ["deu-Latn", "eng-Latn"]}


def _write_local_task(root):
    """Parquet files and a dataset card with one config per subset and part, as on mteb's hub."""
    cards = []
    for subset, (queries, corpus, qrels) in SUBSETS.items():
        parts = {"corpus": [{"id": f"{subset}-d{i}", "text": t} for i, t in enumerate(corpus)],
                 "queries": [{"id": f"{subset}-q{i}", "text": t} for i, t in enumerate(queries)],
                 "qrels": [{"query-id": f"{subset}-q{q}", "corpus-id": f"{subset}-d{d}", "score": g}
                           for q, rel in qrels.items() for d, g in rel.items()]}
        for part, rows in parts.items():
            (root / subset / part).mkdir(parents=True)
            pq.write_table(pa.Table.from_pylist(rows), root / subset / part / "test-00000.parquet")
            cards.append(f"- config_name: {subset}-{part}\n  data_files:\n  - split: test\n    path: {subset}/{part}/test-*\n")
    (root / "README.md").write_text("---\nconfigs:\n" + "".join(cards) + "---\n")


@pytest.fixture
def local_task(tmp_path):
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.task_metadata import TaskMetadata

    root = tmp_path / "local-task"
    _write_local_task(root)
    meta = TaskMetadata(name=TASK, type="Retrieval", main_score="ndcg_at_10", description="a tiny local task",
                        reference=None, dataset={"path": str(root), "revision": "local-v1"}, category="t2t",
                        eval_splits=["test"], eval_langs=LANGS, date=None, domains=None, task_subtypes=None,
                        license=None, annotations_creators=None, dialect=None, modalities=["text"],
                        sample_creation=None, bibtex_citation=None)
    register_mteb_task(type(TASK, (AbsTaskRetrieval,), {"metadata": meta}))
    yield root
    LOCAL_TASKS.pop(TASK, None)


@pytest.fixture(scope="module")
def encoder():
    texts = [t for q, c, _ in SUBSETS.values() for t in q + c]
    return tiny_encoder(texts, hidden=32, layers=2, vocab_size=300)


def _reference(encoder, subset):
    """pytrec_eval's nDCG@10 and recall@1/@10 over cosine scores of our own embeddings."""
    queries, corpus, qrels = SUBSETS[subset]
    q = encoder.encode(queries, "query")
    c = encoder.encode(corpus, "passage")
    q, c = q / np.linalg.norm(q, axis=1, keepdims=True), c / np.linalg.norm(c, axis=1, keepdims=True)
    scores = q @ c.T
    run = {f"q{i}": {f"d{j}": float(scores[i, j]) for j in range(len(corpus))} for i in range(len(queries))}
    judged = {f"q{i}": {f"d{d}": g for d, g in rel.items()} for i, rel in qrels.items()}
    per_query = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.10", "recall.1,10"}).evaluate(run)
    return {m: float(np.mean([v[key] for v in per_query.values()]))
            for m, key in (("ndcg@10", "ndcg_cut_10"), ("recall@1", "recall_1"), ("recall@10", "recall_10"))}


def _rows(result):
    return {(r.benchmark, r.setting, r.query_lang, r.candidate_lang, r.metric): r.value for r in result.records}


def test_local_mteb_task_rows_equal_pytrec_eval(local_task, encoder, tmp_path, monkeypatch):
    config = EvalConfig(ks=(1, 10), cache_dir=str(tmp_path / "cache"), batch_size=4)
    rows = _rows(evaluate_mteb(encoder, f"mteb:{TASK}", config, model_key="weights-a"))
    bench = f"mteb:{TASK}"
    expected = {("mono", "en", "en"): _reference(encoder, "eng-eng"), ("cross", "de", "en"): _reference(encoder, "deu-eng")}
    for (setting, q, c), metrics in expected.items():
        for metric, value in metrics.items():
            assert rows[(bench, setting, q, c, metric)] == pytest.approx(value, abs=1e-5)  # mteb rounds to 5 places
            assert rows[(bench, setting, "*", "*", metric)] == pytest.approx(value, abs=1e-5)  # one subset each
        assert rows[(bench, setting, q, c, "main_score")] == rows[(bench, setting, q, c, "ndcg@10")]
    assert not [k for k in rows if k[4].startswith(("ndcg@", "recall@")) and int(k[4].split("@")[1]) not in (1, 10)]
    assert {k[4] for k in rows if k[4].startswith("map")} == {"map@1", "map@10"}  # mteb's MAP@k is never our "map"

    # mteb's own result file, in its cache under our fingerprint, holds the same numbers
    (saved,) = (tmp_path / "cache" / "mteb").rglob(f"{cache_revision(encoder, 'weights-a')}/{TASK}.json")
    subsets = {s["hf_subset"]: s for s in json.loads(saved.read_text())["scores"]["test"]}
    assert rows[(bench, "cross", "de", "en", "ndcg@10")] == subsets["deu-eng"]["ndcg_at_10"]

    # the same weights again: read from mteb's cache, nothing encoded
    from scaling.eval.mteb_adapter import MtebEncoder

    def refuse(*args, **kwargs):
        raise AssertionError("encoded although the result is cached")

    monkeypatch.setattr(MtebEncoder, "encode", refuse)
    assert _rows(evaluate_mteb(encoder, f"mteb:{TASK}", config, model_key="weights-a")) == rows
    # a languages option keeps the subsets within those languages (here from the cache, which holds both)
    english = _rows(evaluate_mteb(encoder, f"mteb:{TASK}?languages=eng", config, model_key="weights-a"))
    assert english == {k: v for k, v in rows.items() if k[1] == "mono"} and english
    with pytest.raises(Exception, match="encoded although"):  # other weights: evaluated afresh
        evaluate_mteb(encoder, f"mteb:{TASK}", config, model_key="weights-b")
    with pytest.raises(Exception, match="encoded although"):  # other encoding settings: likewise
        evaluate_mteb(encoder, f"mteb:{TASK}", replace(config, max_length=16), model_key="weights-a")


def test_unknown_mteb_names_fail_in_the_study_with_the_closest_name():
    raw = json.loads(json.dumps(TINY_STUDY))
    raw["benchmarks"] = ["parallel-qa:eval", "mteb:BelebeleRetrival"]
    with pytest.raises(StudyConfigError, match="no task 'BelebeleRetrival'; did you mean mteb:BelebeleRetrieval"):
        build_study(raw, [])
    raw["benchmarks"] = ["mteb:MLQARetrieval:train"]
    with pytest.raises(StudyConfigError, match=r"no evaluation split 'train'; choose from \['validation', 'test'\]"):
        build_study(raw, [])
    raw["benchmarks"] = ["mteb:MLQARetrieval", "mteb:BelebeleRetrieval"]
    assert build_study(raw, []).benchmarks == ("mteb:MLQARetrieval", "mteb:BelebeleRetrieval")
    with pytest.raises(MtebTaskError, match="names no task"):
        MtebSource.parse("mteb:")
    with pytest.raises(MtebTaskError, match="unknown option 'langs'; an mteb source takes \\?languages=de,en"):
        MtebSource.parse("mteb:XQuADRetrieval?langs=de")
    with pytest.raises(MtebTaskError, match=r"no subset of XQuADRetrieval has only languages \['ja'\]"):
        MtebSource.parse("mteb:XQuADRetrieval?languages=jpn")
    spec = MtebSource.parse("mteb:BelebeleRetrieval?languages=de,eng_Latn")
    assert spec.name == "mteb:BelebeleRetrieval" and spec.subsets() == [
        "deu_Latn-deu_Latn", "deu_Latn-eng_Latn", "eng_Latn-deu_Latn", "eng_Latn-eng_Latn"]


def test_a_task_with_two_splits_is_one_benchmark_per_split():
    assert list(MtebSource.parse("mteb:MLQARetrieval").describe()) == ["mteb:MLQARetrieval:validation",
                                                                       "mteb:MLQARetrieval:test"]
    assert list(MtebSource.parse("mteb:MLQARetrieval:test").describe()) == ["mteb:MLQARetrieval:test"]
    info = MtebSource.parse("mteb:BelebeleRetrieval").describe()["mteb:BelebeleRetrieval"]
    assert info["dataset"] == "mteb/belebele" and info["subsets"] == 376


def test_a_planned_study_evaluates_its_mteb_task_in_the_stage(local_task, tmp_path):
    from scaling.eval.stage import evaluate_plan
    from scaling.plan import TrialPlan
    from scaling.store import ResultStore
    from scaling.sweep.driver import StudyPlanner

    raw = json.loads(json.dumps(TINY_STUDY))
    raw["axes"]["strategy"] = ["xy"]
    raw["benchmarks"] = ["parallel-qa:eval", f"mteb:{TASK}"]
    raw["storage"] = str(tmp_path / "results")
    raw["eval"] = {"ks": [1, 10], "settings": ["mono", "cross"]}
    study = build_study(raw, [])
    planner = StudyPlanner(study, ResultStore(tmp_path / "results" / "tiny"))
    (plan,) = planner.plan(list(study.trials)).values()
    assert planner.identity()["data"]["benchmarks"][f"mteb:{TASK}"] == "local-v1"
    plan = TrialPlan.read(plan.location)
    assert plan.mteb_sources() == [f"mteb:{TASK}"] and [s.name for s in plan.read_benchmarks()] == ["parallel-qa:eval"]
    result = evaluate_plan(plan, plan.config.encoder.model)  # the materialised initial model
    benchmarks = {r.benchmark for r in result.records}
    assert benchmarks == {"parallel-qa:eval", f"mteb:{TASK}"}
    mteb_rows = {(r.setting, r.query_lang, r.candidate_lang) for r in result.records if r.benchmark == f"mteb:{TASK}"}
    assert mteb_rows == {("mono", "en", "en"), ("cross", "de", "en"), ("mono", "*", "*"), ("cross", "*", "*")}


def test_the_reference_mteb_study_passes_its_dry_run(capsys):
    from pathlib import Path

    from scaling.sweep.cli import main

    path = Path(__file__).resolve().parents[1] / "configs" / "study_mteb_beir.yaml"
    assert main(["--config", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "study mteb-beir: 60 trials" in out and "benchmarks mteb:BelebeleRetrieval, mteb:MLQARetrieval:test" in out
    study = build_study(__import__("yaml").safe_load(path.read_text()), [])
    assert all(s.startswith("mteb:") for s in study.benchmarks) and study.resources.eval_gpus == 1


def test_the_evaluate_job_runs_an_mteb_task(local_task, encoder, tmp_path, capsys, monkeypatch):
    import pyarrow.parquet as pq

    from scaling.eval.cli import main

    monkeypatch.setenv("MTEB_CACHE", str(tmp_path / "mteb-cache"))
    model_dir = tmp_path / "model"
    encoder.backbone.save_pretrained(model_dir)
    encoder.tokenizer.save_pretrained(model_dir)
    args = ["--model", str(model_dir), "--benchmark", "parallel-qa", "--benchmark", f"mteb:{TASK}", "--out",
            str(tmp_path / "out"), "--ks", "1,10", "--query-prefix", "", "--passage-prefix", ""]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"mteb:{TASK} main_score (ndcg_at_10): mono " in out and ", cross " in out
    table = pq.read_table(tmp_path / "out" / "metrics.parquet")
    assert set(table.column("benchmark").to_pylist()) == {"parallel-qa:eval", f"mteb:{TASK}"}
    assert main([*args[:3], "mteb:NoSuchRetrieval", *args[6:]]) == 2
    assert "no task 'NoSuchRetrieval'" in capsys.readouterr().err
