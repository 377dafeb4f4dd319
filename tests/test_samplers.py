"""Batch strategies: language structure, no repeated group, determinism, resume, bad settings."""

import collections

import numpy as np
import pytest

from scaling.data import ParallelCorpus, load_corpus
from scaling.samplers import SamplerConfig, SamplerConfigError, make_sampler


@pytest.fixture(scope="module")
def corpus():
    return load_corpus("parallel-qa")


def rows(corpus):
    t = corpus.table
    return t.column("group_id").to_pylist(), t.column("lang").to_pylist()


@pytest.mark.parametrize("strategy", ["xx", "xy", "hybrid", "multilingual", "single"])
def test_every_batch_has_the_promised_structure(corpus, strategy):
    groups, langs = rows(corpus)
    sampler = make_sampler(SamplerConfig.of(strategy, batch_size=16, seed=3), corpus)
    batches = list(sampler)
    assert len(batches) == len(sampler)  # the reported length is what it yields
    for b in batches:
        q_groups = [groups[r] for r in b.query_rows]
        assert [groups[r] for r in b.passage_rows] == q_groups  # positives are translations of the query
        assert len(set(q_groups)) == len(q_groups) == 16  # each group at most once per global batch
        q_langs, p_langs = [langs[r] for r in b.query_rows], [langs[r] for r in b.passage_rows]
        if b.kind in ("xx", "single"):
            assert set(q_langs) == set(p_langs) == set(b.languages) and len(b.languages) == 1
            assert np.array_equal(b.query_rows, b.passage_rows)
        elif b.kind == "xy":
            assert all(x != y for x, y in zip(q_langs, p_langs))
        elif b.kind == "multilingual":
            assert q_langs == p_langs and len(set(q_langs)) > 1
        if strategy == "single":
            assert b.languages == ("en",)


def test_hybrid_mixes_at_rate_alpha(corpus):
    sampler = make_sampler(SamplerConfig.of("hybrid", batch_size=8, alpha=0.3, steps_per_epoch=2000), corpus)
    kinds = collections.Counter(b.kind for b in sampler)
    assert abs(kinds["xx"] / 2000 - 0.3) < 0.04 and set(kinds) == {"xx", "xy"}
    only_xx = make_sampler(SamplerConfig.of("hybrid", batch_size=8, alpha=1.0), corpus)
    assert {b.kind for b in only_xx} == {"xx"}


def test_size_proportional_language_sampling():
    rows_ = []
    for g in range(400):
        for lang in (["en", "de"] if g < 100 else ["en"]):
            rows_.append({"group_id": f"g{g}", "lang": lang, "query": f"q{g}{lang}", "passage": f"p{g}{lang}", "source": "s"})
    corpus = ParallelCorpus.from_rows(rows_, origin="toy")
    sampler = make_sampler(SamplerConfig.of("xx", batch_size=4, language_sampling="size", steps_per_epoch=3000), corpus)
    share_en = sum(b.languages == ("en",) for b in sampler) / 3000
    assert abs(share_en - 0.8) < 0.03  # 400 vs 100 groups
    uniform = make_sampler(SamplerConfig.of("xx", batch_size=4, steps_per_epoch=3000), corpus)
    assert abs(sum(b.languages == ("en",) for b in uniform) / 3000 - 0.5) < 0.04


def test_deterministic_across_ranks_and_after_resume(corpus):
    config = SamplerConfig.of("hybrid", batch_size=16, seed=7)
    a, b = make_sampler(config, corpus), make_sampler(config, corpus)  # two workers build their own
    full = [x for x in a] + [x for x in a]  # two epochs
    for x, y in zip(full, [y for y in b] + [y for y in b]):
        assert x.kind == y.kind and np.array_equal(x.query_rows, y.query_rows)
    # each worker takes its slice of the same global batch
    g = full[0]
    halves = [g.slice(r, 2) for r in range(2)]
    assert np.array_equal(np.concatenate([h.query_rows for h in halves]), g.query_rows)
    # resume mid-epoch from a saved state: the same continuation
    c = make_sampler(config, corpus)
    it = iter(c)
    first = [next(it) for _ in range(5)]
    state = c.state_dict()
    resumed = make_sampler(config, corpus)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert [x.step for x in first + rest] == list(range(len(c)))
    for x, y in zip(first + rest, full[:len(c)]):
        assert np.array_equal(x.query_rows, y.query_rows) and np.array_equal(x.passage_rows, y.passage_rows)
    other_seed = make_sampler(SamplerConfig.of("hybrid", batch_size=16, seed=8), corpus)
    assert not np.array_equal(next(iter(other_seed)).query_rows, full[0].query_rows)
    with pytest.raises(SamplerConfigError, match="does not match this run"):
        other_seed.load_state_dict(state)


def test_bad_settings_are_refused_before_training(corpus):
    with pytest.raises(SamplerConfigError, match="unknown sampler.strategy 'mixed'"):
        make_sampler(SamplerConfig.of("mixed"), corpus)
    with pytest.raises(SamplerConfigError, match=r"sampler.alpha must be in \[0, 1\]"):
        make_sampler(SamplerConfig.of("hybrid", alpha=1.5), corpus)
    with pytest.raises(SamplerConfigError, match=r"training languages \['th'\] are not in the corpus"):
        make_sampler(SamplerConfig.of("xy"), corpus, languages=["en", "th"])
    with pytest.raises(SamplerConfigError, match="batch_size 100 is larger than the groups available for"):
        make_sampler(SamplerConfig.of("xx", batch_size=100), corpus)
    with pytest.raises(SamplerConfigError, match="sampler.language 'th'"):
        make_sampler(SamplerConfig.of("single", language="th"), corpus)


def test_bitext_cannot_make_monolingual_batches():
    rows_ = [{"group_id": f"g{i}", "lang": lang, "query": f"s{i}{lang}", "passage": f"s{i}{lang}", "source": "bitext"}
             for i in range(10) for lang in ("en", "de")]
    corpus = ParallelCorpus.from_rows(rows_, origin="bitext")
    for strategy in ("xx", "hybrid", "multilingual"):
        with pytest.raises(SamplerConfigError, match="bitext"):
            make_sampler(SamplerConfig.of(strategy, batch_size=4), corpus)
    xy = make_sampler(SamplerConfig.of("xy", batch_size=4), corpus)
    b = next(iter(xy))
    assert all(q != p for q, p in zip(b.query_rows, b.passage_rows))
    assert make_sampler(SamplerConfig.of("hybrid", alpha=0.0, batch_size=4), corpus).kind == "hybrid"


def test_single_language_ignores_the_size_of_other_languages():
    rows_ = [{"group_id": f"g{g}", "lang": lang, "query": f"q{g}{lang}", "passage": f"p{g}{lang}", "source": "s"}
             for g in range(40) for lang in (["en", "de"] if g < 3 else ["en"])]
    corpus = ParallelCorpus.from_rows(rows_, origin="toy")  # only 3 German groups, 40 English ones
    sampler = make_sampler(SamplerConfig.of("single", batch_size=16, language="en"), corpus)
    assert {b.languages for b in sampler} == {("en",)}
    with pytest.raises(SamplerConfigError, match=r"larger than the groups available for de \(3\)"):
        make_sampler(SamplerConfig.of("single", batch_size=16, language="de"), corpus)


@pytest.mark.parametrize("settings,message", [
    ({"alpah": 0.3}, r"unknown setting 'sampler.alpah'.*did you mean sampler.alpha"),
    ({"alpha": "0.3"}, r"sampler.alpha must be in \[0, 1\], not '0.3'"),
    ({"temperature": 0}, "sampler.temperature must be a number > 0"),
    ({"language_sampling": "sizes"}, "sampler.language_sampling must be 'uniform' or 'size'"),
])
def test_strategy_parameters_are_checked_when_the_configuration_is_read(settings, message):
    with pytest.raises(SamplerConfigError, match=message):
        SamplerConfig.of("hybrid", **settings)
    with pytest.raises(SamplerConfigError, match="not a sampler setting nor a parameter of strategy 'xy'"):
        SamplerConfig.of("xy", alpha=0.5)  # xy takes no alpha
    config = SamplerConfig.of("hybrid", alpha=0.25, batch_size=8)
    assert SamplerConfig.from_dict(config.to_dict()) == config and config.recipe == "hybrid a=0.25"
