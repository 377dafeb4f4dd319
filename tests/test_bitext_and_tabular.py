"""Tatoeba, SIB-200 and JSONL/Parquet corpora, with their bad-input errors."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scaling.data import DataError, ParallelCorpus
from scaling.data.bitext import read_sib200_corpus, read_tatoeba_corpus
from scaling.data.tabular import read_tabular_corpus, write_parquet_corpus


def _tatoeba(tmp_path, code="deu", xs=("Hallo.", "Danke."), es=("Hello.", "Thanks.")):
    (tmp_path / f"tatoeba.{code}-eng.{code}").write_text("\n".join(xs) + "\n", encoding="utf-8")
    (tmp_path / f"tatoeba.{code}-eng.eng").write_text("\n".join(es) + "\n", encoding="utf-8")
    return tmp_path


def test_tatoeba_groups_pair_each_line_with_its_english(tmp_path):
    _tatoeba(tmp_path)
    _tatoeba(tmp_path, "fra", ("Bonjour.",), ("Good morning.",))
    corpus = read_tatoeba_corpus(tmp_path)
    assert corpus.languages == ("de", "en", "fr") and corpus.num_groups == 3 and corpus.is_bitext
    rows = {(r["group_id"], r["lang"]): r["query"] for r in corpus.table.to_pylist()}
    assert rows[("tatoeba/deu/1", "de")] == "Danke." and rows[("tatoeba/deu/1", "en")] == "Thanks."
    assert rows[("tatoeba/fra/0", "en")] == "Good morning."  # English sides differ per file
    assert read_tatoeba_corpus(tmp_path, ["fr"]).num_groups == 1


def test_tatoeba_line_counts_must_agree(tmp_path):
    _tatoeba(tmp_path, xs=("Hallo.", "Danke.", "Bitte."))
    with pytest.raises(DataError, match=r"tatoeba\.deu-eng\.deu: has 3 lines but tatoeba\.deu-eng\.eng has 2"):
        read_tatoeba_corpus(tmp_path)


def test_tatoeba_empty_line_and_missing_side(tmp_path):
    _tatoeba(tmp_path, xs=("Hallo.", " "))
    with pytest.raises(DataError, match="record line 2: empty sentence"):
        read_tatoeba_corpus(tmp_path)
    (tmp_path / "tatoeba.deu-eng.eng").unlink()
    with pytest.raises(DataError, match="no Tatoeba files found|file not found"):
        read_tatoeba_corpus(tmp_path)


def test_tatoeba_unknown_language_lists_available(tmp_path):
    _tatoeba(tmp_path)
    with pytest.raises(DataError, match="no data for \\['ja'\\].*available: de"):
        read_tatoeba_corpus(tmp_path, ["ja"])


def test_tatoeba_file_without_a_language_code_names_the_file(tmp_path):
    from scaling.data import load_benchmark, load_corpus

    _tatoeba(tmp_path)
    _tatoeba(tmp_path, "xyz")  # three letters, but no language
    bad = tmp_path / "tatoeba.xyz-eng.xyz"
    for load in (read_tatoeba_corpus, load_corpus, load_benchmark):
        with pytest.raises(DataError) as exc:
            load(tmp_path if load is read_tatoeba_corpus else str(tmp_path))
        msg = str(exc.value)
        assert msg.startswith(f"{bad}: the file name does not give its language (unknown language code 'xyz'")
        assert "rename tatoeba.xyz-eng.xyz and tatoeba.xyz-eng.eng to an ISO 639-3 code" in msg


def _sib(tmp_path, code, rows, split="train"):
    d = tmp_path / code
    d.mkdir(exist_ok=True)
    (d / f"{split}.tsv").write_text("index_id\tcategory\ttext\n" + "".join(f"{a}\t{b}\t{c}\n" for a, b, c in rows),
                                    encoding="utf-8")


def test_sib200_groups_are_index_ids_across_languages(tmp_path):
    _sib(tmp_path, "deu_Latn", [("7", "travel", "Hallo Welt."), ("9", "sports", "Tor!")])
    _sib(tmp_path, "zho_Hant", [("7", "travel", "你好世界。"), ("9", "sports", "進球！")])
    corpus = read_sib200_corpus(tmp_path)
    assert corpus.languages == ("de", "zh-Hant") and corpus.num_groups == 2 and corpus.is_bitext
    assert corpus.group_sizes() == {2: 2}


def test_sib200_bad_rows(tmp_path):
    _sib(tmp_path, "deu_Latn", [("7", "travel", "Hallo."), ("7", "travel", "Nochmal.")])
    with pytest.raises(DataError, match="train.tsv: record line 3: duplicate index_id '7'"):
        read_sib200_corpus(tmp_path)
    (tmp_path / "deu_Latn" / "train.tsv").write_text("id\ttext\n1\tx\n", encoding="utf-8")
    with pytest.raises(DataError, match="header should be"):
        read_sib200_corpus(tmp_path)
    with pytest.raises(ValueError, match="unknown SIB-200 split"):
        read_sib200_corpus(tmp_path, splits=("validation",))


def test_sib200_folder_without_a_language_code_names_the_folder(tmp_path):
    _sib(tmp_path, "deu_Latn", [("7", "travel", "Hallo.")])
    _sib(tmp_path, "foo_Latn", [("7", "travel", "Hallo.")])
    with pytest.raises(DataError) as exc:
        read_sib200_corpus(tmp_path)
    assert str(exc.value).startswith(f"{tmp_path / 'foo_Latn'}: the folder name does not give its language")
    assert "rename the folder to its FLORES-200 code, e.g. deu_Latn" in str(exc.value)


ROWS = [
    {"group_id": "g1", "lang": "en", "query": "Q?", "passage": "P.", "source": "s"},
    {"group_id": "g1", "lang": "deu", "query": "F?", "passage": "A.", "source": "s", "title": "T"},
    {"group_id": "g2", "lang": "en", "query": "Q2?", "passage": "P2.", "source": "s"},
]


def _jsonl(tmp_path, rows, name="c.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_corpus(tmp_path):
    corpus = read_tabular_corpus(_jsonl(tmp_path, ROWS))
    assert len(corpus) == 3 and corpus.languages == ("de", "en") and corpus.group_sizes() == {2: 1, 1: 1}
    stats = {s.lang: (s.pairs, s.cross_pairs) for s in corpus.language_stats()}
    assert stats == {"en": (2, 1), "de": (1, 1)}


@pytest.mark.parametrize("bad,message", [
    ('{"group_id": "g1", "lang": "en",', "record line 2: malformed JSON"),
    ({"group_id": "g9", "lang": "en", "query": "Q"}, "record line 2: missing field(s) ['passage', 'source']"),
    ({"group_id": "g9", "lang": "en", "query": "Q", "passage": "", "source": "s"}, "record line 2: field 'passage' is empty"),
    ({"group_id": "g1", "lang": "eng", "query": "Q", "passage": "P", "source": "s"}, "record line 2: duplicate (group_id, lang)"),
    ({"group_id": "g9", "lang": "xx1", "query": "Q", "passage": "P", "source": "s"},
     "record line 2: unknown language code 'xx1'"),
    ({"group_id": "g9", "lang": "en", "query": 3, "passage": "P", "source": "s"},
     "record line 2: field 'query' should be a string"),
    ({"group_id": "g9", "lang": "en", "query": "Q", "passage": "P", "source": "s", "extra": "x"}, "unknown field(s) ['extra']"),
])
def test_jsonl_bad_input_names_file_and_line(tmp_path, bad, message):
    path = _jsonl(tmp_path, [ROWS[0], bad])
    with pytest.raises(DataError) as exc:
        read_tabular_corpus(path)
    assert str(path) in str(exc.value) and message in str(exc.value)


def test_empty_jsonl_is_an_error(tmp_path):
    with pytest.raises(DataError, match="holds no rows"):
        read_tabular_corpus(_jsonl(tmp_path, []))


def test_parquet_roundtrip_is_atomic_and_equal(tmp_path):
    corpus = read_tabular_corpus(_jsonl(tmp_path, ROWS))
    out = tmp_path / "c.parquet"
    write_parquet_corpus(corpus, out)
    assert not list(tmp_path.glob("*.tmp"))
    again = read_tabular_corpus(out)
    assert again.table.equals(corpus.table)


def test_parquet_missing_column(tmp_path):
    pq.write_table(pa.table({"group_id": ["g"], "lang": ["en"], "query": ["q"]}), tmp_path / "x.parquet")
    with pytest.raises(DataError, match="missing column\\(s\\) \\['passage', 'source'\\]"):
        read_tabular_corpus(tmp_path / "x.parquet")


def test_corpus_selection_and_dropping():
    corpus = ParallelCorpus.from_rows(ROWS, origin="rows")
    assert corpus.select_languages(["deu_Latn"]).languages == ("de",)
    assert corpus.drop_groups(["g1"]).num_groups == 1
    with pytest.raises(ValueError, match="not in this corpus"):
        corpus.select_languages(["fr"])
