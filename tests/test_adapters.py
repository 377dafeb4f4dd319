"""Hub-dataset adapters on local fixtures in the published layouts (tests/fixtures/<dataset>/):
rows, groups and languages counted by hand; the hub path, fed the same records without a
download, gives the same corpus; bad codes, options and layouts fail naming what is wrong."""

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scaling.data import DataError, SourceNotFoundError, belebele, flores_plus, load_corpus, mmarco
from scaling.data.sources import parse_source

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture()
def fixtures_dir(monkeypatch):
    monkeypatch.setenv("SCALING_DATA_DIR", str(FIXTURES))
    return FIXTURES


def rows_by(corpus, *keys):
    return {tuple(r[k] for k in keys): r for r in corpus.table.to_pylist()}


# ---- Belebele ------------------------------------------------------------------------------
def test_belebele_questions_are_groups_parallel_across_languages(fixtures_dir):
    corpus = load_corpus("belebele:all")
    assert corpus.languages == ("de", "en", "sw")  # deu_Latn, eng_Latn, swh_Latn mapped to canonical codes
    assert len(corpus) == 12 and corpus.num_groups == 4  # 4 questions x 3 languages
    assert corpus.cross_lingual_pairs() == 4 * 3 * 2
    rows = rows_by(corpus, "group_id", "lang")
    gid = "belebele/https://en.wikibooks.org/wiki/River_farming/1"
    assert rows[(gid, "de")]["query"] == "Wann pflanzen die Bauern?"
    assert rows[(gid, "en")]["passage"].startswith("The river floods every spring.")
    assert rows[(gid, "sw")]["query"] == "Wakulima hupanda lini?"
    # both questions on one passage are separate groups sharing the passage text
    other = "belebele/https://en.wikibooks.org/wiki/River_farming/2"
    assert rows[(other, "en")]["passage"] == rows[(gid, "en")]["passage"] and not corpus.is_bitext


def test_belebele_train_and_eval_partition_passages(fixtures_dir):
    every = load_corpus("belebele:all")
    parts = {s: load_corpus(f"belebele:{s}", options={"eval_fraction": 0.5}) for s in ("train", "eval")}
    ids = {s: set(c.table.column("group_id").to_pylist()) for s, c in parts.items()}
    assert ids["train"].isdisjoint(ids["eval"]) and ids["train"] | ids["eval"] == set(every.table.column("group_id").to_pylist())
    for s, group_ids in ids.items():  # a passage's questions fall on one side, with the hash's verdict
        links = {g.rsplit("/", 1)[0][len("belebele/"):] for g in group_ids}
        assert all(belebele.in_eval(link, 0.5) == (s == "eval") for link in links)
    assert len(parts["train"]) + len(parts["eval"]) == len(every)


def test_belebele_answer_positive_and_language_option(fixtures_dir):
    corpus = load_corpus("belebele:all", options={"positive": "answer", "languages": ["en", "swh_Latn"]})
    assert corpus.languages == ("en", "sw")
    rows = rows_by(corpus, "group_id", "lang")
    assert rows[("belebele/https://en.wikibooks.org/wiki/River_farming/1", "en")]["passage"] == "After the water recedes"
    assert rows[("belebele/https://en.wikinews.org/wiki/Penguins/1", "sw")]["passage"] == "Huogelea haraka"


def test_belebele_hub_path_gives_the_local_corpus(monkeypatch, fixtures_dir):
    import datasets

    served = []

    def fake_fetch(name, config, split):
        assert name == "facebook/belebele" and split == "test"
        served.append(config)
        lines = (FIXTURES / "belebele" / "data" / f"{config}.jsonl").read_text(encoding="utf-8").splitlines()
        return datasets.Dataset.from_list([json.loads(line) for line in lines])

    monkeypatch.setattr(belebele, "hub_config_names", lambda name: ["deu_Latn", "eng_Latn", "swh_Latn"])
    monkeypatch.setattr(belebele, "fetch_hub_dataset", fake_fetch)
    monkeypatch.setenv("SCALING_DATA_DIR", str(fixtures_dir / "nowhere"))
    monkeypatch.delenv("SCALING_OFFLINE", raising=False)
    hub = load_corpus("belebele:all", options={"languages": ["de", "en"]})
    assert served == ["deu_Latn", "eng_Latn"]
    local = load_corpus("belebele:all", data_dir=str(FIXTURES), options={"languages": ["de", "en"]})
    assert hub.fingerprint() == local.fingerprint() and len(hub) == 8


def test_belebele_unmappable_code_and_bad_rows_are_named(tmp_path):
    shutil.copytree(FIXTURES / "belebele", tmp_path / "belebele")
    bad = tmp_path / "belebele" / "data" / "zzz_Latn.jsonl"
    shutil.copy(tmp_path / "belebele" / "data" / "eng_Latn.jsonl", bad)
    with pytest.raises(DataError, match=r"zzz_Latn\.jsonl: language code 'zzz_Latn' of belebele maps to no known language"):
        load_corpus("belebele:all", data_dir=str(tmp_path))
    bad.unlink()
    path = tmp_path / "belebele" / "data" / "deu_Latn.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[2])
    del row["question"]
    path.write_text("\n".join(lines[:2] + [json.dumps(row)] + lines[3:]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"deu_Latn\.jsonl: record line 3: missing field\(s\) \['question'\]"):
        load_corpus("belebele:all", data_dir=str(tmp_path))


# ---- mMARCO --------------------------------------------------------------------------------
def test_mmarco_queries_are_groups_by_id_with_their_first_positive(fixtures_dir):
    corpus = load_corpus("mmarco:train")
    assert corpus.languages == ("en", "pt", "zh")
    # queries 101, 102, 103 in three languages, but 103 is missing from the Chinese query file
    assert len(corpus) == 8 and corpus.num_groups == 3
    rows = rows_by(corpus, "group_id", "lang")
    assert rows[("mmarco/101", "en")]["passage"] == "A delta forms where a river meets the sea."  # first positive: 7
    assert rows[("mmarco/101", "zh")]["query"] == "什么是河流三角洲"
    assert rows[("mmarco/102", "pt")]["passage"] == "O monte Quenia tem 5199 metros."
    assert ("mmarco/103", "zh") not in rows
    assert corpus.cross_lingual_pairs() == 2 * (3 * 2) + 1 * (2 * 1)
    first = load_corpus("mmarco:train", options={"max_queries": 1, "languages": ["en", "pt"]})
    assert set(first.table.column("group_id").to_pylist()) == {"mmarco/101"} and len(first) == 2


def test_mmarco_hub_path_reads_the_same_files(monkeypatch, fixtures_dir):
    asked = []

    def fake_file(name, rel):
        assert name == "unicamp-dl/mmarco"
        asked.append(rel)
        return FIXTURES / "mmarco" / rel

    monkeypatch.setattr(mmarco, "hub_file", fake_file)
    monkeypatch.setenv("SCALING_DATA_DIR", str(fixtures_dir / "nowhere"))
    monkeypatch.delenv("SCALING_OFFLINE", raising=False)
    hub = load_corpus("mmarco:train", options={"languages": ["eng", "zh"]})
    assert asked[0] == "data/triples.train.ids.small.tsv"
    assert "data/google/collections/chinese_collection.tsv" in asked
    local = load_corpus("mmarco:train", data_dir=str(FIXTURES), options={"languages": ["en", "zh"]})
    assert hub.fingerprint() == local.fingerprint()


def test_mmarco_missing_file_names_the_layout(tmp_path):
    (tmp_path / "mmarco").mkdir()
    with pytest.raises(DataError, match=r"mmarco: no language has both its query and collection files under data/google/"):
        load_corpus("mmarco:train", data_dir=str(tmp_path))
    shutil.copytree(FIXTURES / "mmarco", tmp_path / "mmarco", dirs_exist_ok=True)
    (tmp_path / "mmarco" / "data" / "triples.train.ids.small.tsv").unlink()
    with pytest.raises(DataError, match=r"triples\.train\.ids\.small\.tsv: file not found \(a local mMARCO copy"):
        load_corpus("mmarco:train", data_dir=str(tmp_path))


# ---- MIRACL --------------------------------------------------------------------------------
def test_miracl_is_monolingual_with_first_positives(fixtures_dir):
    corpus = load_corpus("miracl:train")
    assert corpus.languages == ("sw", "te")
    assert len(corpus) == 3  # sw query 2 has no positive passage: skipped
    assert corpus.cross_lingual_pairs() == 0 and set(corpus.group_sizes()) == {1}  # no invented X-Y pairs
    rows = rows_by(corpus, "group_id", "lang")
    first = rows[("miracl/sw/1", "sw")]
    assert first["passage"].startswith("Kilimanjaro ni mlima") and first["title"] == "Kilimanjaro"
    assert ("miracl/sw/2", "sw") not in rows


def test_miracl_hub_failure_is_a_clear_error(monkeypatch, fixtures_dir):
    monkeypatch.setenv("SCALING_DATA_DIR", str(fixtures_dir / "nowhere"))
    with pytest.raises(SourceNotFoundError, match=r"miracl is not available: .*nowhere/miracl does not exist.*"
                                                  r"<lang>/<split>\.jsonl"):
        load_corpus("miracl:train")


# ---- FLORES+ -------------------------------------------------------------------------------
def test_flores_plus_is_bitext_grouped_by_id_per_split(fixtures_dir):
    dev = load_corpus("flores-plus:dev")
    assert dev.languages == ("en", "fr", "zh") and dev.is_bitext
    assert len(dev) == 6 and dev.num_groups == 2 and dev.cross_lingual_pairs() == 2 * 3 * 2
    rows = rows_by(dev, "group_id", "lang")
    assert rows[("flores-plus/dev/1", "fr")]["query"] == "La tempete a atteint la cote la nuit."
    devtest = load_corpus("flores-plus:devtest", options={"languages": ["eng_Latn", "fra_Latn"]})
    assert set(devtest.table.column("group_id").to_pylist()) == {"flores-plus/devtest/100", "flores-plus/devtest/101"}


def test_flores_plus_row_language_must_match_its_file(tmp_path):
    shutil.copytree(FIXTURES / "flores-plus", tmp_path / "flores-plus")
    path = tmp_path / "flores-plus" / "dev" / "fra_Latn.parquet"
    rows = pq.read_table(path).to_pylist()
    rows[1]["iso_639_3"] = "eng"
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(DataError, match=r"fra_Latn\.parquet: record row 1: row language eng_Latn differs"):
        load_corpus("flores-plus:dev", data_dir=str(tmp_path))


def test_flores_plus_hub_path(monkeypatch, fixtures_dir):
    import datasets

    def fake_fetch(name, config, split):
        assert name == "openlanguagedata/flores_plus"
        return datasets.Dataset(pq.read_table(FIXTURES / "flores-plus" / split / f"{config}.parquet"))

    monkeypatch.setattr(flores_plus, "hub_config_names", lambda name: ["eng_Latn", "fra_Latn", "zho_Hans"])
    monkeypatch.setattr(flores_plus, "fetch_hub_dataset", fake_fetch)
    monkeypatch.delenv("SCALING_OFFLINE", raising=False)
    hub = load_corpus("flores-plus:dev", data_dir=str(fixtures_dir / "nowhere"))
    assert hub.fingerprint() == load_corpus("flores-plus:dev").fingerprint()


# ---- source strings and options -------------------------------------------------------------
def test_adapter_source_strings_and_option_errors(fixtures_dir):
    assert parse_source("belebele:train") == ("belebele", "train")
    assert parse_source("flores-plus:devtest") == ("flores-plus", "devtest")
    with pytest.raises(ValueError, match=r"unknown option train\.data\.train\[0\]\.options\.positve of source 'belebele' "
                                         r"\(did you mean 'positive'\?\)"):
        load_corpus("belebele:train", options={"positve": "answer"}, where="train.data.train[0].options")
    with pytest.raises(ValueError, match="option positive must be 'passage' or 'answer'"):
        load_corpus("belebele:train", options={"positive": "title"})
    with pytest.raises(ValueError, match="option max_queries must be an integer >= 1"):
        load_corpus("mmarco:train", options={"max_queries": 0})
    with pytest.raises(DataError, match=r"unknown split 'test' of belebele \(choose from \['train', 'eval', 'all'\]\)"):
        load_corpus("belebele:test")
    with pytest.raises(ValueError, match="source 'parallel-qa:train' takes no options"):
        load_corpus("parallel-qa:train", options={"max_queries": 3})
    with pytest.raises(DataError, match=r"mmarco \(google\) has no language\(s\) \['sw'\]"):
        load_corpus("mmarco:train", options={"languages": ["sw"]})
    with pytest.raises(SourceNotFoundError, match="option path: no such folder"):
        load_corpus("miracl:train", options={"path": str(fixtures_dir / "nowhere")})
    assert len(load_corpus("miracl:train", options={"path": str(fixtures_dir / "miracl"), "max_queries": 1})) == 2
