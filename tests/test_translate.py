"""The translation job (jobs/translate.py) on a tiny random NLLB-shaped model built here.

The model's output is nonsense; what is checked is the bookkeeping: rows, group ids, languages and
filter counts equal a direct count, a crash leaves whole shards and a rerun translates only the
missing ones to the same output, and bad requests fail before anything is translated.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from transformers import M2M100ForConditionalGeneration

from scaling.data.sources import load_corpus
from scaling.translate import job as job_mod
from scaling.translate.codes import ModelCodes, UnsupportedLanguageError
from scaling.translate.config import TranslateConfig, load_config
from scaling.translate.filters import FilterSettings, OutputFilter
from scaling.translate.model import ModelSettings, Translator
from scaling.translate.tiny import build_tiny_translator

MODEL_CODES = ["eng_Latn", "swh_Latn", "yor_Latn", "jpn_Jpan"]
TARGETS = ["sw", "yo"]
GROUPS, SHARD_SIZE, BATCH = 10, 4, 4
FILTERS = {"min_length_ratio": 0.3, "max_length_ratio": 2.0, "langid": False}
HAS_LANGID = importlib.util.find_spec("py3langid") is not None


@pytest.fixture(scope="module")
def corpus():
    return load_corpus("parallel-qa:train")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, corpus):
    texts = corpus.table.column("query").to_pylist() + corpus.table.column("passage").to_pylist()
    return str(build_tiny_translator(tmp_path_factory.mktemp("tiny-nllb"), texts, MODEL_CODES, stop_early=True))


def make_config(model: str, out: Path, **extra) -> TranslateConfig:
    raw = {"source": "parallel-qa:train", "source_language": "en", "target_languages": TARGETS, "out": str(out),
           "shard_size": SHARD_SIZE, "max_groups": GROUPS, "seed": 0, "filters": dict(FILTERS),
           "model": {"name": model, "batch_size": BATCH, "max_new_tokens": 8, "device": "cpu"}}
    for key, value in extra.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return TranslateConfig.from_dict(raw)


@pytest.fixture
def count_generate(monkeypatch):
    """Counts model.generate calls; ``fail_after`` makes the call after that many raise (a crash)."""
    state = {"calls": 0, "fail_after": None}
    original = M2M100ForConditionalGeneration.generate

    def counting(self, *args, **kwargs):
        if state["fail_after"] is not None and state["calls"] >= state["fail_after"]:
            raise RuntimeError("simulated crash")
        state["calls"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(M2M100ForConditionalGeneration, "generate", counting)
    return state


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, tiny_model):
    """One uninterrupted run, shared by the tests that compare against it."""
    out = tmp_path_factory.mktemp("full") / "mt"
    manifest = job_mod.run(make_config(tiny_model, out), log=lambda _: None)
    return out, manifest


def direct_reference(tiny_model, corpus):
    """Translate the first GROUPS English rows one text at a time and apply the filters by hand."""
    en = corpus.table.filter(pc.equal(corpus.table.column("lang"), "en")).slice(0, GROUPS).to_pylist()
    tr = Translator(ModelSettings(name=tiny_model, batch_size=1, max_new_tokens=8, device="cpu"))

    def status(src, out):
        if not out.strip():
            return "empty"
        return "kept" if 0.3 <= len(out) / len(src) <= 2.0 else "length_ratio"

    rows, counts = [], {}
    for tgt in TARGETS:
        c = counts.setdefault(tgt, {"translated": 0, "kept": 0, "empty": 0, "length_ratio": 0, "langid": 0})
        for r in en:
            q, p = tr.translate([r["query"]], "en", tgt)[0], tr.translate([r["passage"]], "en", tgt)[0]
            found = {status(r["query"], q), status(r["passage"], p)}
            s = next(reason for reason in ("empty", "length_ratio", "kept") if reason in found)
            c["translated"] += 1
            c[s] += 1
            if s == "kept":
                rows.append((r["group_id"], tgt, q, p))
    return en, rows, counts


def test_bookkeeping_equals_a_direct_count(full_run, tiny_model, corpus):
    out, manifest = full_run
    en, ref_rows, ref_counts = direct_reference(tiny_model, corpus)
    # the fixture exercises every outcome, so the counts below can fail
    assert all(sum(c[k] for c in ref_counts.values()) > 0 for k in ("kept", "empty", "length_ratio"))
    assert manifest["filters"]["counts"] == ref_counts
    result = load_corpus(str(out / "corpus.parquet"))  # what data.train: [OUT/corpus.parquet] reads
    table = result.table
    mt = table.filter(pc.match_substring(table.column("source"), ">mt:"))
    got = sorted(zip(*(mt.column(c).to_pylist() for c in ("group_id", "lang", "query", "passage"))))
    assert got == sorted(ref_rows)
    groups = {r["group_id"] for r in en}
    assert set(table.column("group_id").to_pylist()) == groups  # translated rows join their groups
    originals = corpus.table.filter(pc.is_in(corpus.table.column("group_id"), value_set=pc.unique(mt.column("group_id"))))
    assert len(table) == len(corpus.select_languages(corpus.languages).drop_groups(
        set(corpus.table.column("group_id").to_pylist()) - groups)) + len(ref_rows)
    assert len(originals) == 8 * len(set(mt.column("group_id").to_pylist()))  # every original language kept
    assert set(result.languages) == set(corpus.languages) | set(TARGETS)
    assert manifest["output"]["rows"] == len(table)
    assert manifest["output"]["rows_per_language"]["sw"] == ref_counts["sw"]["kept"]
    assert manifest["code_mapping"] == {"en": "eng_Latn", "sw": "swh_Latn", "yo": "yor_Latn"}
    assert manifest["shards"]["count"] == math.ceil(GROUPS / SHARD_SIZE)
    assert manifest["source"]["groups"] == GROUPS and manifest["seed"] == 0
    assert manifest["source"]["groups_without_source_language"] == 0  # every parallel-qa group has English
    assert manifest["source"]["groups_left_out_by_max_groups"] == corpus.num_groups - GROUPS
    assert manifest["model"]["fingerprint"] == Translator(ModelSettings(name=tiny_model, device="cpu")).fingerprint()
    assert json.loads((out / "manifest.json").read_text()) == manifest


def test_resume_after_a_crash_translates_only_missing_shards(tmp_path, tiny_model, full_run, count_generate):
    out = tmp_path / "mt"
    cfg = make_config(tiny_model, out)
    # generate calls per shard: distinct texts / batch size, per target language
    per_shard = []
    plan = job_mod.prepare(cfg)
    for i in range(len(plan.shards)):
        rows = job_mod._shard_rows(plan, i)
        distinct = len(set(rows.column("query").to_pylist() + rows.column("passage").to_pylist()))
        per_shard.append(math.ceil(distinct / BATCH) * len(TARGETS))
    count_generate["fail_after"] = per_shard[0] + 1  # dies inside shard 1
    with pytest.raises(RuntimeError, match="simulated crash"):
        job_mod.run(cfg, log=lambda _: None)
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["shard-00000.parquet"]  # no partial file
    assert not (out / "manifest.json").exists() and not (out / "corpus.parquet").exists()
    (out / "shards" / ".shard-00001.parquet.dead.tmp").write_bytes(b"half a file")  # a crash while writing
    count_generate.update(calls=0, fail_after=None)
    manifest = job_mod.run(cfg, log=lambda _: None)
    assert sorted(p.name for p in (out / "shards").iterdir()) == [f"shard-{i:05d}.parquet" for i in range(len(per_shard))]
    assert count_generate["calls"] == sum(per_shard[1:])
    assert manifest["shards"]["translated_in_this_run"] == list(range(1, len(per_shard)))
    full_out, full_manifest = full_run
    assert pq.read_table(out / "corpus.parquet").equals(pq.read_table(full_out / "corpus.parquet"))
    assert manifest["filters"]["counts"] == full_manifest["filters"]["counts"]
    count_generate["calls"] = 0
    job_mod.run(cfg, log=lambda _: None)  # complete: nothing left to translate
    assert count_generate["calls"] == 0


def test_a_rerun_with_other_settings_is_refused(full_run, tiny_model):
    out, _ = full_run
    with pytest.raises(ValueError, match=r"other settings \(differs in \['filters'\]\)"):
        job_mod.run(make_config(tiny_model, out, filters={"min_length_ratio": 0.1}), log=lambda _: None)


def test_unsupported_language_errors_before_running(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setattr(Translator, "__init__", lambda *a, **k: pytest.fail("the model was loaded"))
    cfg = make_config(tiny_model, tmp_path / "mt", target_languages=["sw", "haw"])
    with pytest.raises(UnsupportedLanguageError, match=r"\['haw'\] not supported by translation model .*tiny-nllb"):
        job_mod.run(cfg)
    assert not (tmp_path / "mt").exists()


def test_codes_of_the_real_nllb_and_madlad_vocabularies():
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    nllb = ModelCodes.from_vocab(FAIRSEQ_LANGUAGE_CODES + ["<s>", "hello"], model="facebook/nllb-200-distilled-600M")
    assert nllb.style == "nllb" and len(nllb.codes) == 202
    assert nllb.resolve(["de", "deu", "zh", "zh-Hant", "sw", "fa", "ms", "nb"], setting="t") == {
        "de": "deu_Latn", "zh": "zho_Hans", "zh-Hant": "zho_Hant", "sw": "swh_Latn", "fa": "pes_Arab",
        "ms": "zsm_Latn", "nb": "nob_Latn"}
    with pytest.raises(UnsupportedLanguageError, match=r"\['haw', 'tlh'\] not supported .*nllb-200-distilled-600M"):
        nllb.resolve(["de", "haw", "tlh"], setting="target_languages")
    madlad = ModelCodes.from_vocab(["<2de>", "<2sw>", "<2zh_Hant>", "▁the"], model="google/madlad400-3b-mt")
    assert madlad.style == "madlad" and madlad.token(madlad.codes["de"]) == "<2de>"
    assert madlad.codes["zh-Hant"] == "zh_Hant"
    over = ModelCodes.from_vocab(FAIRSEQ_LANGUAGE_CODES, model="nllb", overrides={"ar": "ary_Arab"})
    assert over.codes["ar"] == "ary_Arab"
    with pytest.raises(UnsupportedLanguageError, match="code_overrides maps 'ar' to 'xyz_Arab'"):
        ModelCodes.from_vocab(FAIRSEQ_LANGUAGE_CODES, model="nllb", overrides={"ar": "xyz_Arab"})


def test_shipped_config_is_valid_for_nllb():
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    cfg = load_config(Path(__file__).parents[1] / "configs" / "translate_nllb.yaml", out="unused")
    assert cfg.model.name == "facebook/nllb-200-distilled-600M" and cfg.run.executor == "ray"
    codes = ModelCodes.from_vocab(FAIRSEQ_LANGUAGE_CODES, model=cfg.model.name)
    assert len(codes.resolve(cfg.target_languages, setting="target_languages")) == len(cfg.target_languages) == 10
    if HAS_LANGID:  # every target can be checked by the identifier
        assert OutputFilter(cfg.filters, cfg.target_languages).unchecked == ()


def test_madlad_style_puts_the_target_tag_first(tmp_path, corpus):
    texts = corpus.table.column("query").to_pylist()[:20]
    path = build_tiny_translator(tmp_path / "tiny-madlad", texts, ["en", "sw"], style="madlad")
    tr = Translator(ModelSettings(name=str(path), max_new_tokens=4, device="cpu"))
    assert tr.codes.style == "madlad"
    ids = tr._input_ids(texts[0], "en", "sw")
    assert ids[0] == tr.tokenizer.convert_tokens_to_ids("<2sw>") and ids[-1] == tr.tokenizer.eos_token_id
    assert tr.tokenizer.decode(ids[1:-1]) == " ".join(tr.tokenizer.tokenize(texts[0]))
    assert len(tr.translate(texts[:3], "en", "sw")) == 3


def test_config_is_strict_and_checks_languages(tiny_model, tmp_path):
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['filters.min_ratio'\]"):
        make_config(tiny_model, tmp_path, filters={"min_ratio": 1})
    with pytest.raises(ValueError, match="holds the source language 'en'"):
        make_config(tiny_model, tmp_path, target_languages=["sw", "eng"])
    with pytest.raises(ValueError, match="setting out is empty"):
        load_config(None, ["target_languages=[sw]"])
    with pytest.raises(ValueError, match=r"\['de'\] already in 'parallel-qa:train'"):
        job_mod.prepare(make_config(tiny_model, tmp_path, target_languages=["sw", "de"]),
                        codes=ModelCodes.from_vocab(["eng_Latn", "swh_Latn", "deu_Latn"], model="m"))


def test_cli_dry_run_plans_without_translating(tiny_model, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(Translator, "__init__", lambda *a, **k: pytest.fail("the model was loaded"))
    sys.path.insert(0, str(Path(__file__).parents[1] / "jobs"))
    try:
        import translate as cli
    finally:
        sys.path.pop(0)
    args = ["--out", str(tmp_path / "mt"), "--dry-run", "--set", f"model.name={tiny_model}", "--set", "target_languages=[sw]",
            "--set", "filters.langid=false", "--set", "max_groups=9", "--set", "shard_size=4"]
    assert cli.main(args) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["shards"] == 3 and plan["pending"] == 3 and plan["code_mapping"] == {"en": "eng_Latn", "sw": "swh_Latn"}
    assert cli.main(args[:-4] + ["--set", "target_languages=[xh]"]) == 2
    assert "['xh'] not supported by translation model" in capsys.readouterr().err


def test_missing_identifier_is_a_clear_error_only_when_asked_for(monkeypatch):
    monkeypatch.setitem(sys.modules, "py3langid", None)
    monkeypatch.setitem(sys.modules, "py3langid.langid", None)
    with pytest.raises(ImportError, match=r"hybrid-scaling\[translate\].*filters.langid=false"):
        OutputFilter(FilterSettings(langid=True), ["de"])
    assert OutputFilter(FilterSettings(langid=False), ["de"]).check([("a b", "c d")], "de") == "kept"


@pytest.mark.skipif(not HAS_LANGID, reason="the optional extra 'translate' (py3langid) is not installed")
def test_langid_filter_on_real_sentences(data_dir):
    from scaling.data.qa import read_squad_corpus

    real = read_squad_corpus({c: data_dir / "xquad-r" / f"{c}.json" for c in ("en", "de", "ru", "zh", "es", "el")},
                             source="xquad-r", passage="sentence")
    t = real.table
    by_lang = {lang: t.filter(pc.equal(t.column("lang"), lang)).column("passage").to_pylist()[:8]
               for lang in real.languages}
    targets = ["de", "ru", "zh", "es", "el"]
    filt = OutputFilter(FilterSettings(min_length_ratio=0.0, max_length_ratio=100.0), targets)
    for lang in targets:
        for en, out in zip(by_lang["en"], by_lang[lang]):
            assert filt.check([(en, out)], lang) == "kept", (lang, out)
        # an English "translation" (the model copied its input) and a sentence in another language
        assert filt.check([(by_lang["en"][0], by_lang["en"][0])], lang) == "langid"
    assert filt.check([(by_lang["en"][1], by_lang["ru"][1])], "de") == "langid"
    assert filt.check([(by_lang["en"][1], by_lang["de"][1])], "es") == "langid"
    # one wrong text drops the row: a right-language query with a wrong-language passage
    assert filt.check([(by_lang["en"][2], by_lang["de"][2]), (by_lang["en"][3], by_lang["ru"][3])], "de") == "langid"
    with pytest.raises(ValueError, match=r"does not know target language\(s\) \['fur'\]"):
        OutputFilter(FilterSettings(), ["de", "fur"])
    assert OutputFilter(FilterSettings(langid_unsupported="skip"), ["de", "fur"]).unchecked == ("fur",)


@pytest.mark.skipif(not HAS_LANGID, reason="the optional extra 'translate' (py3langid) is not installed")
def test_langid_counts_in_a_job_equal_a_direct_count(tmp_path, tiny_model, full_run):
    from scaling.translate.filters import LanguageIdentifier, same_language

    out = tmp_path / "mt"
    manifest = job_mod.run(make_config(tiny_model, out, filters={"langid": True}), log=lambda _: None)
    ident = LanguageIdentifier()
    full_out, _ = full_run
    # the same outputs, filtered without the language check
    shards = pa.concat_tables([pq.read_table(p) for p in sorted((full_out / "shards").glob("shard-*.parquet"))])
    expected = {t: 0 for t in TARGETS}
    for r in shards.to_pylist():
        if r["status"] == "kept" and not (same_language(ident.identify(r["query"]), r["lang"])
                                          and same_language(ident.identify(r["passage"]), r["lang"])):
            expected[r["lang"]] += 1
    assert {t: c["langid"] for t, c in manifest["filters"]["counts"].items()} == expected
    assert sum(expected.values()) > 0
    assert manifest["filters"]["identifier"].startswith("py3langid==")


def test_ray_data_actors_give_the_same_corpus(tmp_path, tiny_model, full_run):
    """The cluster path (Ray Data map_batches over translator actors), here on CPU actors."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        out = tmp_path / "mt"
        manifest = job_mod.run(make_config(tiny_model, out, run={"executor": "ray", "actors": 2, "gpus_per_actor": 0,
                                                                 "cpus_per_actor": 0.5}), log=lambda _: None)
    finally:
        ray.shutdown()
    full_out, full_manifest = full_run
    assert pq.read_table(out / "corpus.parquet").equals(pq.read_table(full_out / "corpus.parquet"))
    assert manifest["filters"]["counts"] == full_manifest["filters"]["counts"]
    assert manifest["model"]["fingerprint"] == full_manifest["model"]["fingerprint"]
    assert manifest["shards"]["translated_in_this_run"] == [0, 1, 2]


def test_groups_without_the_source_language_are_counted_not_translated(tmp_path):
    rows = [{"group_id": g, "lang": lang, "query": f"q {g} {lang}", "passage": f"p {g} {lang}", "source": "s"}
            for g, langs in (("a", ["en", "de"]), ("b", ["de"]), ("c", ["en"])) for lang in langs]
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = TranslateConfig.from_dict({"source": str(path), "target_languages": ["sw"], "out": str(tmp_path / "mt"),
                                     "filters": {"langid": False}})
    plan = job_mod.prepare(cfg, codes=ModelCodes.from_vocab(["eng_Latn", "swh_Latn"], model="m"))
    assert plan.skipped_groups == 1 and plan.left_out_groups == 0
    assert plan.shards == (("a", "c"),)
    assert sorted(plan.corpus.table.column("group_id").to_pylist()) == ["a", "a", "c"]  # b is not in the output
