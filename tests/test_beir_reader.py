"""BEIR folders: query and corpus languages (XOR-TyDi-style cross-lingual sets score as cross),
corpora read into Arrow without a Python string per passage, and the same benchmark as the
list-based reader it replaced."""

from __future__ import annotations

import gzip
import json
import tracemalloc

import numpy as np
import pytest

from scaling.data import DataError, load_benchmark
from scaling.data.beir import iter_batches, read_beir, read_records
from scaling.data.sources import PACKAGE_DATA
from scaling.eval.ranks import compute_ranks
from scaling.eval.settings import evaluate_settings


def _write(folder, corpus, queries, qrels, *, gz=False, split="test"):
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    for stem, rows in (("corpus", corpus), ("queries", queries)):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        if gz:
            with gzip.open(folder / f"{stem}.jsonl.gz", "wt", encoding="utf-8") as fh:
                fh.write(text)
        else:
            (folder / f"{stem}.jsonl").write_text(text, encoding="utf-8")
    (folder / "qrels" / f"{split}.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{c}\t{s}\n" for q, c, s in qrels), encoding="utf-8")
    return folder


def _xor_tydi(folder, with_lang_fields=False):
    """Japanese questions, English (and, with lang fields, French) passages."""
    corpus = [{"_id": f"d{i}", "title": f"T{i}", "text": f"passage number {i} about topic {i % 7}"} for i in range(30)]
    queries = [{"_id": f"q{i}", "text": f"質問 {i}"} for i in range(10)]
    if with_lang_fields:
        for i, row in enumerate(corpus):
            row["lang"] = "fr" if i % 3 == 0 else "en"
        for row in queries:
            row["lang"] = "jpn"
    qrels = [(f"q{i}", f"d{(3 * i + 1) % 30}", 1) for i in range(10)] + [(f"q{i}", f"d{3 * i % 30}", 2) for i in range(5)]
    return _write(folder, corpus, queries, qrels, split="dev")


def _scored(bench, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(len(bench.queries), 8)).astype(np.float32)
    c = rng.normal(size=(len(bench.candidates), 8)).astype(np.float32)
    return evaluate_settings(compute_ranks(bench, q, c), bench.name, ks=(1, 10)).records


def test_a_cross_lingual_folder_is_scored_as_cross_not_mono(tmp_path):
    folder = _xor_tydi(tmp_path / "xor-ja")
    bench = load_benchmark(f"{folder}?query_lang=ja&corpus_lang=en&split=dev").single()
    assert bench.query_languages == ("ja",) and bench.candidate_languages == ("en",)
    records = _scored(bench)
    assert {r.setting for r in records} == {"cross", "multi"}  # no mono pair exists
    assert {(r.query_lang, r.candidate_lang) for r in records if r.setting == "cross"} == {("ja", "en"), ("*", "*")}
    # one language for both sides (what --lang did): the same ranks, reported as mono
    mono = _scored(load_benchmark(f"{folder}?lang=ja&split=dev").single())
    assert {r.setting for r in mono} == {"mono", "multi"}
    as_cross = {(r.metric, r.value) for r in records if r.setting == "cross" and r.query_lang == "ja"}
    assert as_cross == {(r.metric, r.value) for r in mono if r.setting == "mono" and r.query_lang == "ja"}


def test_lang_fields_on_records_give_each_record_its_language(tmp_path):
    folder = _xor_tydi(tmp_path / "xor-multi", with_lang_fields=True)
    bench = read_beir(folder, split="dev")  # no language given: the records carry theirs
    assert bench.query_languages == ("ja",) and bench.candidate_languages == ("en", "fr")
    langs = dict(zip(bench.candidates.column("id").to_pylist(), bench.candidates.column("lang").to_pylist()))
    assert langs["d0"] == "fr" and langs["d1"] == "en"
    cross = {(r.query_lang, r.candidate_lang) for r in _scored(bench) if r.setting == "cross"}
    assert cross == {("ja", "en"), ("ja", "fr"), ("*", "*")}
    # a record's own field wins over the source's default
    assert read_beir(folder, split="dev", corpus_lang="de").candidate_languages == ("en", "fr")


def test_bad_language_options_are_clear_errors(tmp_path):
    folder = _xor_tydi(tmp_path / "xor")
    with pytest.raises(DataError, match="corpus.jsonl: record d0: a record has no lang field and no corpus language"):
        read_beir(folder, query_lang="ja", split="dev")
    with pytest.raises(DataError, match="unknown option 'query_language' \\(did you mean 'query_lang'\\?\\)"):
        load_benchmark(f"{folder}?query_language=ja")
    with pytest.raises(DataError, match="give lang \\(both sides\\) or query_lang/corpus_lang, not both"):
        load_benchmark(f"{folder}?lang=ja&corpus_lang=en")
    with pytest.raises(DataError, match="xor: query_lang: unknown language code 'xx-nope'"):
        load_benchmark(f"{folder}?query_lang=xx-nope&corpus_lang=en&split=dev")
    with pytest.raises(DataError, match=r"options \['lang'\] are for BEIR folders; this is a squad folder"):
        load_benchmark(f"{PACKAGE_DATA / 'eval'}?lang=en")


def _old_read_beir(directory, lang, split="test"):
    """The list-based reader this replaced (one Python dict per passage), for equality."""
    from scaling.data.benchmark import RetrievalBenchmark
    from scaling.data.jsonl import iter_jsonl
    from scaling.languages import canonical

    lang = canonical(lang)
    corpus = [row for _, row in iter_jsonl(directory / "corpus.jsonl", ("_id", "text"))]
    queries = [row for _, row in iter_jsonl(directory / "queries.jsonl", ("_id", "text"))]
    candidates = [{"id": str(r["_id"]), "lang": lang, "text": f"{r.get('title') or ''} {r['text']}".strip()} for r in corpus]
    qtext = {str(r["_id"]): r["text"] for r in queries}
    relevance: dict = {}
    for line in (directory / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, cid, score = line.split("\t")
        if int(score) > 0:
            relevance.setdefault(qid, {})[cid] = int(score)
    judged = [{"id": q, "lang": lang, "text": t, "group": q} for q, t in qtext.items() if q in relevance]
    return RetrievalBenchmark.from_rows(directory.name, judged, candidates, relevance)


@pytest.mark.parametrize("integer_ids", [False, True])  # integer ids: pyarrow refuses them, the line reader reads them
def test_the_arrow_reader_equals_the_list_reader(tmp_path, integer_ids):
    corpus = [{"_id": i if integer_ids else f"d{i}", "title": ["", None, "Ñandú", "  spaced "][i % 4],
               "text": f" text {i} — ünïcödé\t"} for i in range(50)]
    corpus[7].pop("title")
    queries = [{"_id": f"q{i}", "text": f"query {i}", "extra": [1, 2]} for i in range(12)]
    qrels = [(f"q{i}", str(i * 3) if integer_ids else f"d{i * 3}", 1 + i % 2) for i in range(10)] + [("q11", corpus[0]["_id"], 0)]
    old = _old_read_beir(_write(tmp_path / "plain", corpus, queries, qrels), "de")
    for folder in (tmp_path / "plain", _write(tmp_path / "gz", corpus, queries, qrels, gz=True)):
        new = read_beir(folder, lang="de", name="plain")
        assert new.candidates.equals(old.candidates.combine_chunks()) and new.queries.equals(old.queries)
        assert new.relevance == old.relevance and new.fingerprint() == old.fingerprint()
    assert load_benchmark(str(tmp_path / "gz"), lang="de").single().fingerprint() == old.fingerprint()


def test_a_bad_line_is_named_by_the_line_reader(tmp_path):
    folder = _write(tmp_path / "bad", [{"_id": "d0", "text": "ok"}, {"_id": "d1"}], [{"_id": "q0", "text": "q"}],
                    [("q0", "d0", 1)])
    with pytest.raises(DataError, match="corpus.jsonl: record line 2: missing field\\(s\\) \\['text'\\]"):
        read_beir(folder, lang="en")


def _big_corpus(path, n):
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"_id": f"doc-{i:07d}", "title": f"title {i}", "text": f"passage {i} " + "w" * 60}) + "\n")


def test_a_large_corpus_is_never_held_as_python_strings(tmp_path):
    n = 100_000  # all ids, titles and texts as Python strings would be about 25 MB
    path = tmp_path / "corpus.jsonl.gz"
    _big_corpus(path, n)
    tracemalloc.start()
    try:
        table = read_records(path)  # pyarrow's reader: Arrow buffers only
        _, arrow_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        batches = 0
        for batch in iter_batches(path, batch_rows=2_000):  # the line reader: one batch of strings at a time
            assert batch.num_rows <= 2_000
            batches += 1
        _, lines_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert table.num_rows == n and batches == n // 2_000
    assert table.column("_id")[n - 1].as_py() == f"doc-{n - 1:07d}"
    assert arrow_peak < 2 << 20 and lines_peak < 4 << 20, (arrow_peak, lines_peak)
