"""Source strings, the data directory, the download cache and offline errors (no network)."""

import json
import shutil

import pytest

from scaling.data import DataError, SourceNotFoundError, load_benchmark, load_corpus
from scaling.data.remote import fetch_url
from scaling.data.sources import REGISTRY, locate, parse_source

ROW = {"group_id": "g1", "lang": "en", "query": "Q?", "passage": "P.", "source": "s"}


def test_parse_source():
    assert parse_source("sib-200:dev") == ("sib-200", "dev")
    assert parse_source("parallel-qa") == ("parallel-qa", None)
    assert parse_source("C:/data/x.jsonl") == ("C:/data/x.jsonl", None)


def test_registered_dataset_missing_offline_says_where_to_put_it(monkeypatch, tmp_path):
    monkeypatch.setenv("SCALING_DATA_DIR", str(tmp_path))
    with pytest.raises(SourceNotFoundError) as exc:
        load_corpus("xquad-r")
    msg = str(exc.value)
    assert f"{tmp_path}/xquad-r does not exist" in msg and "downloads are off" in msg
    assert "put its files in <data dir>/xquad-r/" in msg


def test_dataset_without_public_address_says_so(monkeypatch, tmp_path):
    monkeypatch.delenv("SCALING_OFFLINE")
    monkeypatch.delenv("SCALING_DATA_DIR", raising=False)
    with pytest.raises(SourceNotFoundError, match="no data directory is set.*no public download address"):
        load_corpus("mlqa-r")


def test_download_fetches_once_into_the_cache(monkeypatch, tmp_path):
    """The real download path, on file:// URLs: files land in the cache and are reused."""
    monkeypatch.delenv("SCALING_OFFLINE")
    monkeypatch.delenv("SCALING_DATA_DIR", raising=False)
    remote = tmp_path / "remote"
    remote.mkdir()
    for lang in ("en", "de"):  # serve our own eval files as if they were XQuAD-R's
        shutil.copy(locate(REGISTRY["parallel-qa"], split="eval") / f"{lang}.json", remote / f"{lang}.json")
    entry = REGISTRY["xquad-r"]
    monkeypatch.setitem(REGISTRY, "xquad-r", type(entry)(**{**entry.__dict__, "url_base": remote.as_uri() + "/"}))
    corpus = load_corpus("xquad-r", languages=["en", "de"])
    assert corpus.languages == ("de", "en") and corpus.num_groups == 30
    shutil.rmtree(remote)  # a second load must not need the source any more
    assert load_corpus("xquad-r", languages=["de"]).num_groups == 30


def test_failed_download_leaves_no_partial_file(monkeypatch, tmp_path):
    monkeypatch.delenv("SCALING_OFFLINE")
    dest = tmp_path / "cache" / "x.jsonl"
    with pytest.raises(SourceNotFoundError) as exc:
        fetch_url("http://127.0.0.1:9/x.jsonl", dest, timeout=5)  # nothing listens on the discard port
    assert "download failed" in str(exc.value) and f"put the file at {dest}" in str(exc.value)
    assert not dest.exists() and not list(dest.parent.glob("*.part"))


def test_url_corpus_is_cached(monkeypatch, tmp_path):
    monkeypatch.delenv("SCALING_OFFLINE")
    src = tmp_path / "c.jsonl"
    src.write_text(json.dumps(ROW) + "\n", encoding="utf-8")
    assert len(load_corpus(src.as_uri())) == 1
    src.unlink()
    assert len(load_corpus(src.as_uri())) == 1
    with pytest.raises(DataError, match="cannot tell the format of URL"):
        load_corpus("https://example.org/data.csv")


def test_local_paths(tmp_path):
    (tmp_path / "c.jsonl").write_text(json.dumps(ROW) + "\n", encoding="utf-8")
    assert load_corpus(str(tmp_path / "c.jsonl")).languages == ("en",)
    with pytest.raises(SourceNotFoundError, match="not a registered dataset"):
        load_corpus(str(tmp_path / "missing.jsonl"))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("x")
    with pytest.raises(DataError, match="cannot tell what this folder holds"):
        load_corpus(str(tmp_path / "junk"))


def test_unknown_split_and_language():
    with pytest.raises(DataError, match="unknown split 'test' of parallel-qa"):
        load_corpus("parallel-qa:test")
    with pytest.raises(DataError, match="parallel-qa has no language\\(s\\) \\['th'\\]"):
        load_corpus("parallel-qa", languages=["th"])


def test_beir_folder_needs_a_language(tmp_path):
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "Bees"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "bees?"}\n')
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    with pytest.raises(DataError, match="no lang field and no corpus language was given .*add \\?corpus_lang="):
        load_benchmark(str(tmp_path))
    with pytest.raises(DataError, match="is a benchmark, not a training corpus"):
        load_corpus(str(tmp_path))


@pytest.mark.parametrize("name", ["train.json", "xquad.questions.json"])
def test_squad_file_without_a_language_code_names_the_file(tmp_path, name):
    from conftest import paragraph, squad_doc, write_json

    doc = squad_doc([paragraph(["Bees have four wings."], [("q1", "How many wings?", 0)])])
    write_json(tmp_path / "en.json", doc)
    write_json(tmp_path / name, doc)
    for load in (load_corpus, load_benchmark):
        with pytest.raises(DataError) as exc:
            load(str(tmp_path))
        msg = str(exc.value)
        assert msg.startswith(f"{tmp_path / name}: the file name does not give its language (unknown language code")
        assert msg.endswith("(name SQuAD files in a folder by language: rename it to <lang>.json or "
                            "<prefix>.<lang>.json, e.g. en.json)")
