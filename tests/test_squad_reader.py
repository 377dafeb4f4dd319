"""SQuAD-format parsing and the QA corpus reader, including every bad-input case."""

import json
import re

import pytest

from conftest import paragraph, squad_doc, write_json
from scaling.data import DataError
from scaling.data.qa import read_squad_corpus
from scaling.data.squad import read_squad_json

EN = paragraph(["Bees have four wings.", "They make honey.", "Honey keeps."], [("q1", "How many wings?", 0),
                                                                                ("q2", "What do bees make?", 1)])
DE = paragraph(["Bienen haben vier Flügel.", "Sie machen Honig.", "Honig hält."], [("q1", "Wie viele Flügel?", 0),
                                                                                   ("q2", "Was machen Bienen?", 1)])


def _files(tmp_path, en=EN, de=DE):
    return {"en": write_json(tmp_path / "en.json", squad_doc([en])), "de": write_json(tmp_path / "de.json", squad_doc([de]))}


def test_sentence_passages_and_groups(tmp_path):
    corpus = read_squad_corpus(_files(tmp_path), source="toy")
    rows = corpus.table.to_pylist()
    assert len(rows) == 4 and corpus.languages == ("de", "en") and corpus.num_groups == 2
    by = {(r["group_id"], r["lang"]): r for r in rows}
    assert by[("q2", "en")]["passage"] == "They make honey."
    assert by[("q2", "de")]["passage"] == "Sie machen Honig."
    assert by[("q1", "de")]["query"] == "Wie viele Flügel?"
    assert by[("q1", "en")]["title"] == "T" and by[("q1", "en")]["source"] == "toy"
    assert not corpus.is_bitext
    assert corpus.cross_lingual_pairs() == 4  # 2 groups x 2 ordered language pairs


def test_paragraph_passages(tmp_path):
    corpus = read_squad_corpus(_files(tmp_path), source="toy", passage="paragraph")
    assert set(corpus.table.column("passage").to_pylist()) == {EN["context"], DE["context"]}


def test_answer_in_a_later_sentence_uses_the_sentence_where_it_starts(tmp_path):
    para = paragraph(["One.", "Two words here.", "Three."], [("q", "?", 1)])
    para["qas"][0]["answers"][0]["text"] = "Two words here. Three"  # crosses into the next sentence
    corpus = read_squad_corpus({"en": write_json(tmp_path / "en.json", squad_doc([para]))}, source="toy")
    assert corpus.table.column("passage").to_pylist() == ["Two words here."]


def test_raw_squad_is_split_into_sentences(tmp_path):
    para = paragraph(["Dr. Smith lives in Paris.", "He was born in 1950.", "He paints."], [("q", "When?", 1)],
                     breaks=False)
    path = write_json(tmp_path / "xquad.en.json", squad_doc([para]))
    with pytest.raises(DataError, match="no 'sentence_breaks'"):
        read_squad_corpus({"en": path}, source="raw")
    corpus = read_squad_corpus({"en": path}, source="raw", split_sentences=True)
    assert corpus.table.column("passage").to_pylist() == ["He was born in 1950."]


# ---- bad input ------------------------------------------------------------------------------
def _error(tmp_path, doc_or_text) -> str:
    path = tmp_path / "bad.json"
    if isinstance(doc_or_text, str):
        path.write_text(doc_or_text, encoding="utf-8")
    else:
        write_json(path, doc_or_text)
    with pytest.raises(DataError) as exc:
        read_squad_corpus({"en": path}, source="bad")
    assert str(path) in str(exc.value)  # every error names the file
    return str(exc.value)


def test_malformed_json_names_line(tmp_path):
    assert "malformed JSON at line 2" in _error(tmp_path, '{"data": [\n  {"title": "x",, }]}')


def test_missing_field_names_record(tmp_path):
    doc = squad_doc([json.loads(json.dumps(EN))])
    del doc["data"][0]["paragraphs"][0]["qas"][1]["question"]
    msg = _error(tmp_path, doc)
    assert "missing field 'question'" in msg and "data[0].paragraphs[0].qas[1] (id q2)" in msg


def test_missing_data_key(tmp_path):
    assert "missing field 'data'" in _error(tmp_path, {"version": "1"})


def test_answer_outside_every_sentence_break(tmp_path):
    doc = squad_doc([json.loads(json.dumps(EN))])
    para = doc["data"][0]["paragraphs"][0]
    para["sentence_breaks"] = [[0, 5], [6, 10], [11, 21]]
    para["sentences"] = [para["context"][s:e] for s, e in para["sentence_breaks"]]
    para["context"] = para["context"]
    para["qas"][1]["answers"][0]["answer_start"] = 22
    para["qas"][1]["answers"][0]["text"] = para["context"][22:27]
    msg = _error(tmp_path, doc)
    assert "answer_start 22" in msg and "outside every sentence break" in msg and "(id q2)" in msg


def test_empty_question_and_empty_context(tmp_path):
    doc = squad_doc([json.loads(json.dumps(EN))])
    doc["data"][0]["paragraphs"][0]["qas"][0]["question"] = "  "
    assert "field 'question' is empty" in _error(tmp_path, doc)
    doc = squad_doc([json.loads(json.dumps(EN))])
    doc["data"][0]["paragraphs"][0]["context"] = ""
    assert "field 'context' is empty" in _error(tmp_path, doc)


def test_duplicate_question_ids(tmp_path):
    doc = squad_doc([json.loads(json.dumps(EN))])
    doc["data"][0]["paragraphs"][0]["qas"][1]["id"] = "q1"
    assert "duplicate question id 'q1'" in _error(tmp_path, doc)


def test_answer_text_not_at_answer_start(tmp_path):
    doc = squad_doc([json.loads(json.dumps(EN))])
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 3
    assert "is not at answer_start 3" in _error(tmp_path, doc)


def test_sentences_and_breaks_disagree(tmp_path):
    doc = squad_doc([json.loads(json.dumps(EN))])
    doc["data"][0]["paragraphs"][0]["sentences"].pop()
    assert "'sentences' has 2 entries but 'sentence_breaks' has 3" in _error(tmp_path, doc)


def test_overlapping_breaks(tmp_path):
    doc = squad_doc([json.loads(json.dumps(EN))])
    doc["data"][0]["paragraphs"][0]["sentence_breaks"][1][0] = 3
    assert "overlaps the previous break" in _error(tmp_path, doc)


def test_question_without_answers(tmp_path):
    doc = squad_doc([json.loads(json.dumps(EN))])
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"] = []
    assert "question has no answer" in _error(tmp_path, doc)


def test_read_squad_json_keeps_breaks(tmp_path):
    paras = read_squad_json(write_json(tmp_path / "en.json", squad_doc([EN])))
    assert paras[0].sentences == ("Bees have four wings.", "They make honey.", "Honey keeps.")
    assert paras[0].spans[1] == (22, 38)


def test_empty_data_is_an_error_not_a_missing_language(tmp_path):
    """A file with "data": [] used to drop its language silently from the corpus and the benchmark."""
    from scaling.data import load_benchmark, load_corpus

    msg = _error(tmp_path, {"version": "1", "data": []})
    assert "holds no paragraphs ('data' is empty" in msg and "delete the file to leave its language out" in msg
    assert "holds no paragraphs" in _error(tmp_path, {"version": "1", "data": [{"title": "x", "paragraphs": []}]})
    folder = tmp_path / "qa"
    write_json(folder / "en.json", squad_doc([EN]))
    write_json(folder / "de.json", {"version": "1", "data": []})
    for load in (load_corpus, load_benchmark):
        with pytest.raises(DataError, match="^" + re.escape(f"{folder / 'de.json'}: the file holds no paragraphs")):
            load(str(folder))


def test_file_without_questions_is_an_error_in_a_corpus(tmp_path):
    doc = squad_doc([json.loads(json.dumps(EN))])
    doc["data"][0]["paragraphs"][0]["qas"] = []
    assert "paragraphs but no questions" in _error(tmp_path, doc)
