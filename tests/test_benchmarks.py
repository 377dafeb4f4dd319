"""Benchmark builders (LAReQA pools, Tatoeba, BEIR) and benchmark validation, on tiny files."""

import json

import pytest

from conftest import paragraph, squad_doc, write_json
from scaling.data import DataError, RetrievalBenchmark
from scaling.data.beir import read_beir
from scaling.data.lareqa import build_lareqa
from scaling.data.overlap import check_overlap, drop_overlaps, normalise_text
from scaling.data.qa import read_squad_corpus
from scaling.data.tatoeba_retrieval import build_tatoeba


def _pool_files(tmp_path):
    en = squad_doc([paragraph(["A one.", "A two."], [("q1", "Which two?", 1)]),
                    paragraph(["B one.", "B two.", "B three."], [("q2", "Which three?", 2), ("q3", "Which one?", 0)])],
                   title="Prime_number")
    de = squad_doc([paragraph(["A eins.", "A zwei."], [("q1", "Welche zwei?", 1)]),
                    paragraph(["B eins.", "B zwei.", "B drei."], [("q3", "Welche eins?", 0)])],
                   title="Primzahl")
    return {"en": write_json(tmp_path / "en.json", en), "de": write_json(tmp_path / "de.json", de)}


def test_lareqa_pool_is_every_sentence_and_relevance_spans_languages(tmp_path):
    bench = build_lareqa(_pool_files(tmp_path), name="toy")
    assert len(bench.candidates) == 10  # every sentence slot in every language
    assert len(bench.queries) == 5
    assert bench.relevant("en/q1") == {"en/p0/s1", "de/p0/s1"}
    assert bench.relevant("de/q1") == bench.relevant("en/q1")
    assert bench.relevant("en/q2") == {"en/p1/s2"}  # q2 has no German version
    assert bench.relevant("de/q3") == {"en/p1/s0", "de/p1/s0"}
    assert bench.summary()["relevant_per_query"] == {1: 1, 2: 4}
    assert bench.titles == {"Prime_number", "Primzahl"}


def test_tatoeba_benchmark_is_per_language_both_directions(tmp_path):
    (tmp_path / "tatoeba.deu-eng.deu").write_text("Hallo.\nDanke.\n", encoding="utf-8")
    (tmp_path / "tatoeba.deu-eng.eng").write_text("Hello.\nThanks.\n", encoding="utf-8")
    benches = build_tatoeba(tmp_path)
    bench = benches["de"]
    assert list(benches.members) == ["de"] and len(bench.queries) == 4 and len(bench.candidates) == 4
    assert bench.relevant("de/1") == {"en/1"} and bench.relevant("en/0") == {"de/0"}


def _beir(tmp_path, qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\nq2\td2\t2\n"):
    (tmp_path / "qrels").mkdir(exist_ok=True)
    (tmp_path / "corpus.jsonl").write_text(
        "".join(json.dumps(d) + "\n" for d in [{"_id": "d1", "title": "Bees", "text": "make honey"},
                                               {"_id": "d2", "text": "Cows give milk"}]), encoding="utf-8")
    (tmp_path / "queries.jsonl").write_text(
        "".join(json.dumps(q) + "\n" for q in [{"_id": "q1", "text": "honey?"}, {"_id": "q2", "text": "milk?"},
                                               {"_id": "q3", "text": "unjudged"}]), encoding="utf-8")
    (tmp_path / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return tmp_path


def test_beir_reads_graded_qrels_and_reports_what_it_skips(tmp_path):
    bench = read_beir(_beir(tmp_path), lang="deu")
    assert bench.relevance == {"q1": {"d1": 1}, "q2": {"d2": 2}}
    assert bench.candidates.column("text").to_pylist() == ["Bees make honey", "Cows give milk"]
    assert set(bench.query_languages) == {"de"}
    assert any("1 of 3 queries have no relevant judgement" in n for n in bench.notes)
    assert any("1 judgements with score <= 0" in n for n in bench.notes)


@pytest.mark.parametrize("qrels,message", [
    ("q1\td9\t1\n", "unknown corpus id 'd9'"),
    ("q7\td1\t1\n", "unknown query id 'q7'"),
    ("q1\td1\n", "found 2 fields"),
    ("q1\td1\thigh\n", "score 'high' is not an integer"),
])
def test_beir_bad_qrels_name_line(tmp_path, qrels, message):
    with pytest.raises(DataError, match="test.tsv: record line 1: .*" + message):
        read_beir(_beir(tmp_path, qrels), lang="en")


def _bench(**changes):
    args = dict(name="b", queries=[{"id": "q", "lang": "en", "text": "x", "group": "g"}],
                candidates=[{"id": "c", "lang": "en", "text": "y"}], relevance={"q": {"c": 1}})
    args.update(changes)
    return RetrievalBenchmark.from_rows(**args)


@pytest.mark.parametrize("changes,message", [
    (dict(candidates=[]), "candidate pool is empty"),
    (dict(queries=[]), "has no queries"),
    (dict(relevance={}), "1 queries have no relevant candidate"),
    (dict(relevance={"q": {"zz": 1}}), "unknown candidate 'zz'"),
    (dict(relevance={"q": {"c": 0}}), "should be an integer >= 1"),
    (dict(candidates=[{"id": "c", "lang": "en", "text": "y"}, {"id": "c", "lang": "de", "text": "z"}]),
     "duplicate candidate id 'c'"),
    (dict(queries=[{"id": "q", "lang": "en", "text": " ", "group": "g"}]), "query text is empty"),
])
def test_benchmark_validation(changes, message):
    with pytest.raises(DataError, match=message):
        _bench(**changes)


def test_overlap_check_finds_titles_queries_and_passages(tmp_path):
    files = _pool_files(tmp_path)
    bench = build_lareqa(files, name="toy")
    other = squad_doc([paragraph(["Unrelated.", "A TWO"], [("x1", "which two", 1)]),
                       paragraph(["Fresh text."], [("x2", "Fresh question?", 0)])], title="Prime number")
    corpus = read_squad_corpus({"en": write_json(tmp_path / "train.json", other)}, source="train")
    report = check_overlap(corpus, bench, corpus_name="train")
    assert report.counts() == {"title": 1, "query": 1, "passage": 1}
    assert report.group_ids == {"x1", "x2"}  # x2 shares only the article title
    cleaned, dropped = drop_overlaps(corpus, report)
    assert dropped == 2 and len(cleaned) == 0
    assert "shared titles: prime number" in report.describe()


def test_normalisation():
    assert normalise_text("Prime_number") == normalise_text(" prime   NUMBER!") == "prime number"
    assert normalise_text("Ｈａｒｖａｒｄ") == "harvard"  # NFKC folds full-width letters
