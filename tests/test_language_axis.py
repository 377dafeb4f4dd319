"""The language axis up to 205 languages: named nested orderings, and the seen / zero-shot
evaluation languages each trial records."""

import json

import pytest

from conftest import TINY_STUDY
from scaling.languages import (
    FLORES_200_CODES,
    METHOD_LANGUAGES,
    NAMED_ORDERINGS,
    XTREME_R_LANGUAGES,
    canonical,
    named_ordering,
)
from scaling.store import ResultStore
from scaling.sweep.driver import StudyPlanner, evaluation_languages
from scaling.sweep.study import StudyConfigError, build_study


def test_named_orderings_are_nested_and_reach_all_205_flores_varieties():
    flores = NAMED_ORDERINGS["flores-200"]
    assert len(flores) == len(set(flores)) == 205
    assert set(flores) == {canonical(c) for c in FLORES_200_CODES}
    assert flores[:9] == NAMED_ORDERINGS["method"] == tuple(METHOD_LANGUAGES)
    assert flores[:50] == NAMED_ORDERINGS["xtreme-r"]  # the method's nine, then the rest of XTREME-R's 50
    assert set(NAMED_ORDERINGS["xtreme-r"]) == {canonical(c) for c in XTREME_R_LANGUAGES}
    ordering = named_ordering("flores-200")
    assert all(ordering.first(k) == ordering.first(k + 1)[:k] for k in range(1, 205))
    assert canonical("kor_Hang") == canonical("ko") == "ko"  # FLORES's Korean meets XQuAD's and Tatoeba's
    with pytest.raises(ValueError, match="unknown language ordering 'flores200'.*flores-200"):
        named_ordering("flores200")


def _study(languages) -> dict:
    raw = json.loads(json.dumps(TINY_STUDY))
    raw["axes"]["languages"] = languages
    raw["axes"]["strategy"] = ["xy"]
    return raw


def test_a_study_cuts_nested_subsets_from_a_named_ordering():
    study = build_study(_study({"ordering": "flores-200", "counts": [10, 50, 205]}), [])
    sizes = sorted(t.axes["num_languages"] for t in study.trials)
    assert sizes == [10, 50, 205]
    by_k = {t.axes["num_languages"]: t.config.data.languages for t in study.trials}
    assert by_k[50][:10] == by_k[10] and by_k[205][:50] == by_k[50]
    with pytest.raises(StudyConfigError, match=r"counts \[206\]: the ordering \(flores-200\) has 205 languages; "
                                               r"choose counts within 1..205"):
        build_study(_study({"ordering": "flores-200", "counts": [206]}), [])
    with pytest.raises(StudyConfigError, match="unknown language ordering 'xtreme'"):
        build_study(_study({"ordering": "xtreme", "counts": [5]}), [])
    with pytest.raises(StudyConfigError, match="counts should be a list of integers"):
        build_study(_study({"ordering": "method", "counts": "9"}), [])


def test_train_data_languages_of_a_study_without_a_language_axis_reach_every_trial():
    raw = _study(None)
    raw["train"]["data"]["languages"] = ["en", "deu", "zh"]  # once silently replaced by "every language"
    study = build_study(raw, [])
    assert {t.config.data.languages for t in study.trials} == {("en", "de", "zh")}
    assert {t.axes["num_languages"] for t in study.trials} == {3}  # recorded with the results
    with pytest.raises(StudyConfigError, match="axes.languages and train.data.languages both set"):
        build_study({**raw, "axes": {**raw["axes"], "languages": [["en", "de"]]}}, [])
    raw["train"]["data"]["languages"] = "en"
    with pytest.raises(StudyConfigError, match="train.data.languages should be a non-empty list"):
        build_study(raw, [])


def test_more_languages_than_the_training_data_has_is_refused_before_ray(tmp_path, data_dir):
    raw = _study({"ordering": "flores-200", "counts": [20]})  # parallel-qa has 8 languages
    raw["storage"] = str(tmp_path)
    study = build_study(raw, [])
    with pytest.raises(ValueError, match="data.languages|languages"):
        StudyPlanner(study, ResultStore(str(tmp_path / "tiny"))).check()


def test_each_trial_records_its_seen_and_zero_shot_evaluation_languages(tmp_path, data_dir):
    raw = _study([["en", "de"]])
    raw["storage"] = str(tmp_path)
    study = build_study(raw, [])
    plan = StudyPlanner(study, ResultStore(str(tmp_path / "tiny"))).plan(list(study.trials))[study.trials[0].trial_id]
    languages = evaluation_languages(plan)
    (name, split), = languages.items()
    member = plan.benchmarks[0].members[name]
    assert sorted(split["seen"]) == ["de", "en"]
    assert sorted(split["seen"] + split["zero_shot"]) == sorted(member["languages"])
    assert len(member["languages"]) == 8 and not set(split["zero_shot"]) & {"en", "de"}


def test_a_benchmark_cut_to_some_languages(data_dir):
    from scaling.data.errors import DataError
    from scaling.data.sources import load_benchmark, split_language_subset

    assert split_language_subset("tatoeba?languages=de, sw,xh") == ("tatoeba", ["de", "sw", "xh"])
    assert split_language_subset("xquad-r") == ("xquad-r", None)
    tatoeba = load_benchmark("tatoeba?languages=deu,sw,xho", data_dir=data_dir)
    assert len(list(tatoeba)) == 3
    whole = {b.name: b for b in load_benchmark("tatoeba", data_dir=data_dir)}
    for member in tatoeba:  # each member is the whole pair set of its language, unchanged
        assert member.fingerprint() == whole[member.name].fingerprint()
    pool = next(iter(load_benchmark("sib-200?languages=de,en,sw", data_dir=data_dir)))
    assert set(pool.query_languages) == set(pool.candidate_languages) == {"de", "en", "sw"}
    with pytest.raises(DataError, match="unknown language code 'klingon'"):
        load_benchmark("tatoeba?languages=klingon", data_dir=data_dir)
    with pytest.raises(DataError, match="empty language list"):
        load_benchmark("tatoeba?languages=", data_dir=data_dir)


def test_a_study_benchmark_entry_may_name_its_languages():
    raw = _study(None)
    raw["benchmarks"] = ["parallel-qa:eval", {"source": "tatoeba", "languages": ["de", "sw"]}]
    assert build_study(raw, []).benchmarks == ("parallel-qa:eval", "tatoeba?languages=de,sw")
    raw["benchmarks"] = [{"source": "tatoeba", "langs": ["de"]}]
    with pytest.raises(StudyConfigError, match=r"unknown setting benchmarks\[\]\.langs"):
        build_study(raw, [])
    raw["benchmarks"] = [{"source": "tatoeba", "languages": [True]}]
    with pytest.raises(StudyConfigError, match=r"benchmarks\[tatoeba\]\.languages: a language code was read as a boolean"):
        build_study(raw, [])
