"""Mixing training sources with weights: realised language and batch-type proportions follow the
weights and the temperature on seeded runs (within sampling tolerance, against probabilities
computed by hand), the counts a run records equal a direct count of its batches (also across a
resume), and bad mixes fail naming the setting before Ray starts."""

import json

import numpy as np
import pytest

from scaling.data import ParallelCorpus
from scaling.data.mixing import SourceSpec
from scaling.data.tabular import write_parquet_corpus
from scaling.samplers import CorpusIndex, SamplerConfig, make_sampler
from scaling.samplers.counts import count_batches
from scaling.training.config import TrainConfig


def qa_rows(source, langs, n, prefix):
    """``n`` QA groups, each in every language of ``langs`` (query != passage: X-X and X-Y pairs)."""
    return [{"group_id": f"{prefix}{g}", "lang": lang, "query": f"q {prefix}{g} {lang}", "passage": f"p {prefix}{g} {lang}",
             "source": source} for g in range(n) for lang in langs]


def bitext_rows(source, langs, n, prefix):
    return [{"group_id": f"{prefix}{g}", "lang": lang, "query": f"s {prefix}{g} {lang}", "passage": f"s {prefix}{g} {lang}",
             "source": source} for g in range(n) for lang in langs]


def within(observed, expected, n, sigmas=4.0):
    """A binomial share within ``sigmas`` standard errors of its expectation."""
    return abs(observed - expected) <= sigmas * np.sqrt(expected * (1 - expected) / n)


def draw(sampler, n):
    return [sampler.batch_at(0, step) for step in range(n)]


def test_xx_language_shares_follow_weighted_sizes_with_temperature():
    rows = (qa_rows("a", ["en"], 600, "a-en") + qa_rows("a", ["de"], 200, "a-de")
            + qa_rows("b", ["de"], 200, "b-de") + qa_rows("b", ["sw"], 100, "b-sw"))
    corpus = ParallelCorpus.from_rows(rows, origin="mix")
    cfg = SamplerConfig.of("xx", batch_size=2, seed=3, language_sampling="size", temperature=2.0)
    sampler = make_sampler(cfg, corpus, None, {"a": 1.0, "b": 3.0})
    # weighted sizes: en 600, de 200 + 3 * 200 = 800, sw 3 * 100 = 300; T = 2: p ~ sqrt(size)
    size = {"en": 600, "de": 800, "sw": 300}
    expected = {k: np.sqrt(v) / sum(np.sqrt(list(size.values()))) for k, v in size.items()}
    n = 3000
    counts = count_batches(draw(sampler, n), sampler.index)
    batches_per_lang = {lang: c // 2 for lang, c in counts["query_languages"]["xx"].items()}
    assert sum(batches_per_lang.values()) == n and counts["batches"] == {"xx": n}
    for lang, p in expected.items():
        assert within(batches_per_lang[lang] / n, p, n), (lang, batches_per_lang[lang] / n, p)
    # within German batches, a row of source b (weight 3) is drawn 3 times as often as one of a
    de_rows = [r for b in draw(sampler, n) if b.languages == ("de",) for r in b.query_rows]
    share_b = np.mean([sampler.index.row_source[r] == "b" for r in de_rows])
    assert within(share_b, 0.75, len(de_rows)), share_b
    # the same corpus without weights: sizes 600, 400, 100
    plain = make_sampler(cfg, corpus)
    plain_counts = count_batches(draw(plain, n), plain.index)["query_languages"]["xx"]
    sqrt = {"en": np.sqrt(600), "de": np.sqrt(400), "sw": np.sqrt(100)}
    assert within(plain_counts["sw"] / 2 / n, sqrt["sw"] / sum(sqrt.values()), n)


def test_xy_languages_follow_xy_sizes_with_temperature_in_xy_and_hybrid():
    # 300 groups in en+de, 100 in en+sw: X-Y sizes en 400, de 300, sw 100
    corpus = ParallelCorpus.from_rows(qa_rows("a", ["en", "de"], 300, "ed") + qa_rows("a", ["en", "sw"], 100, "es"),
                                      origin="xy")
    w = {lang: np.sqrt(n) for lang, n in {"en": 400, "de": 300, "sw": 100}.items()}  # T = 2
    # a drawn group is en+de with probability 3/4; its query language is en with w_en / (w_en + w_de)
    expected_en = 0.75 * w["en"] / (w["en"] + w["de"]) + 0.25 * w["en"] / (w["en"] + w["sw"])
    expected_sw = 0.25 * w["sw"] / (w["en"] + w["sw"])
    n = 3000
    for strategy, extra in (("xy", {}), ("hybrid", {"alpha": 0.3})):
        sampler = make_sampler(SamplerConfig.of(strategy, batch_size=2, seed=7, language_sampling="size",
                                                temperature=2.0, **extra), corpus)
        assert sampler.index.xy_size("en") == 400 and sampler.index.xy_size("sw") == 100
        queries = count_batches(draw(sampler, n), sampler.index)["query_languages"]["xy"]
        pairs = sum(queries.values())
        assert within(queries["en"] / pairs, expected_en, pairs), (strategy, queries["en"] / pairs, expected_en)
        assert within(queries["sw"] / pairs, expected_sw, pairs), (strategy, queries["sw"] / pairs, expected_sw)
    # uniform (the default): each of a group's two languages is the query half the time
    uniform = make_sampler(SamplerConfig.of("xy", batch_size=2, seed=7), corpus)
    queries = count_batches(draw(uniform, n), uniform.index)["query_languages"]["xy"]
    assert within(queries["en"] / (2 * n), 0.5, 2 * n) and not within(expected_en, 0.5, 2 * n)


def test_hybrid_mix_of_qa_and_bitext_follows_alpha_and_xy_weights():
    rows = qa_rows("qa", ["en", "de"], 200, "qa") + bitext_rows("bt", ["en", "sw"], 200, "bt")
    corpus = ParallelCorpus.from_rows(rows, origin="mix")
    cfg = SamplerConfig.of("hybrid", batch_size=2, seed=5, alpha=0.3)
    sampler = make_sampler(cfg, corpus, None, {"qa": 1.0, "bt": 2.0})
    n = 4000
    counts = count_batches(draw(sampler, n), sampler.index)
    assert sum(counts["batches"].values()) == n
    assert within(counts["batches"]["xx"] / n, 0.3, n)
    # X-X batches come only from QA (bitext has no monolingual pairs): Swahili never appears in them
    assert set(counts["query_languages"]["xx"]) <= {"en", "de"} and counts["sources"]["xx"] == {"qa": 2 * counts["batches"]["xx"]}
    # X-Y groups: 200 QA groups of weight 1, 200 bitext groups of weight 2 -> bitext share 2/3
    xy_pairs = 2 * counts["batches"]["xy"]
    assert within(counts["sources"]["xy"]["bt"] / xy_pairs, 2 / 3, xy_pairs)
    assert counts["query_languages"]["xy"]["sw"] + counts["passage_languages"]["xy"]["sw"] == counts["sources"]["xy"]["bt"]


def test_equal_weights_draw_exactly_the_unweighted_batches():
    corpus = ParallelCorpus.from_rows(qa_rows("a", ["en", "de"], 30, "a") + qa_rows("b", ["en", "fr"], 30, "b"),
                                      origin="mix")
    cfg = TrainConfig.from_dict({"data": {"train": [{"source": "a.jsonl", "weight": 2.0}, {"source": "b.jsonl", "weight": 2}]}})
    assert cfg.data.source_weights() is None
    sampler = SamplerConfig.of("hybrid", batch_size=4, seed=1, alpha=0.5)
    a = make_sampler(sampler, corpus, None, cfg.data.source_weights())
    b = make_sampler(sampler, CorpusIndex(corpus))
    for step in range(20):
        x, y = a.batch_at(0, step), b.batch_at(0, step)
        assert x.kind == y.kind and (x.query_rows == y.query_rows).all() and (x.passage_rows == y.passage_rows).all()


def test_mix_entries_are_strict():
    ok = TrainConfig.from_dict({"data": {"train": [{"source": "belebele:train", "weight": 2.0,
                                                    "options": {"positive": "answer"}}, "flores-plus:dev"]}})
    assert ok.data.train[0] == SourceSpec("belebele:train", 2.0, {"positive": "answer"})
    assert ok.data.labels == ("belebele:train (weight 2, positive=answer)", "flores-plus:dev")
    assert TrainConfig.from_dict(ok.to_dict()) == ok  # what plan.json holds reads back the same
    assert TrainConfig().to_dict()["data"]["train"] == ("parallel-qa:train",)  # plain entries stay plain strings
    bad = [
        ([{"source": "x.jsonl", "weight": 0}], r"data\.train\[0\]\.weight must be a number > 0, not 0"),
        (["a.jsonl", {"source": "b.jsonl", "weight": -1.5}], r"data\.train\[1\]\.weight must be a number > 0, not -1\.5"),
        ([{"source": "x.jsonl", "weight": True}], r"data\.train\[0\]\.weight must be a number > 0"),
        ([{"source": "belebele:train", "options": {"max_queries": 3}}],
         r"unknown option data\.train\[0\]\.options\.max_queries of source 'belebele'"),
        ([{"source": "parallel-qa:train", "options": {"languages": ["de"]}}], r"source 'parallel-qa:train' takes no options"),
        ([{"source": "x.jsonl", "wieght": 2}],
         r"unknown setting data\.train\[0\]\.wieght \(did you mean data\.train\[0\]\.weight\?\)"),
        (["a.jsonl", "a.jsonl"], r"data\.train\[1\] repeats source 'a\.jsonl'"),
    ]
    for train, message in bad:
        with pytest.raises(ValueError, match=message):
            TrainConfig.from_dict({"data": {"train": train}})


def _mix_config(tmp_path, **data):
    a = tmp_path / "qa.parquet"
    b = tmp_path / "bitext.parquet"
    write_parquet_corpus(ParallelCorpus.from_rows(qa_rows("qa", ["en", "de"], 24, "qa"), origin="qa"), a)
    write_parquet_corpus(ParallelCorpus.from_rows(bitext_rows("bt", ["en", "sw"], 24, "bt"), origin="bt"), b)
    return TrainConfig.from_dict({
        "encoder": {"model": "tiny:hidden=32,layers=2", "query_prefix": "", "passage_prefix": "", "max_length": 16},
        "sampler": {"strategy": "hybrid", "batch_size": 4, "seed": 2, "alpha": 0.5, "steps_per_epoch": 4},
        "optim": {"lr": 1e-3, "warmup_steps": 1, "max_steps": 10},
        "data": {"train": [str(a), {"source": str(b), "weight": 3.0}], "heldout": None, **data},
        "run": {"storage_path": str(tmp_path / "runs"), "num_workers": 1, "report_every": 2, "checkpoint_every": 2}})


def test_recorded_counts_equal_a_direct_count_across_a_resume(tmp_path):
    from scaling.training.context import LocalWorker
    from scaling.training.outcome import TrainOutcome
    from scaling.training.trainer import plan_run
    from scaling.training.worker import run_worker

    cfg = _mix_config(tmp_path)
    plan = plan_run(cfg.with_values({"run.fail_at_step": 5}))
    # the plan's composition: rows per entry (rows are labelled by their entry's source) and language
    assert plan.corpus.composition == {cfg.data.sources[0].source: {"de": 24, "en": 24},
                                       cfg.data.sources[1].source: {"en": 24, "sw": 24}}
    assert plan.corpus.sources == (cfg.data.sources[0].source, f"{cfg.data.sources[1].source} (weight 3)")
    ctx = LocalWorker(tmp_path / "local")
    with pytest.raises(RuntimeError, match="simulated worker failure at step 5"):
        run_worker(plan, ctx)
    run_worker(plan, ctx)  # resumes from the checkpoint of step 4
    outcome = TrainOutcome.read(ctx.saved[-1])
    # a direct count: the same sampler, iterated as the worker does (epochs of 4 steps), 10 batches
    sampler = make_sampler(cfg.sampler, plan.read_corpus(), None, cfg.data.source_weights())
    batches = []
    while len(batches) < 10:
        batches.extend(sampler)
    direct = count_batches(batches[:10], sampler.index)
    assert outcome.sampling == json.loads(json.dumps(direct))
    assert sum(outcome.sampling["batches"].values()) == 10 == sum(outcome.batch_counts.values())
    assert outcome.sampling["batches"]["xx"] == sum(v for k, v in outcome.batch_counts.items() if k.startswith("xx:"))


def test_a_source_outside_the_training_languages_is_refused_before_ray(tmp_path):
    from scaling.plan import PlanBuilder

    cfg = _mix_config(tmp_path, languages=["en", "de"])
    PlanBuilder().check(cfg)  # both sources have English
    cfg = _mix_config(tmp_path, languages=["de"])
    with pytest.raises(ValueError, match=r"data\.train\[1\] '.*bitext\.parquet \(weight 3\)' has no data in any of "
                                         r"data\.languages \['de'\] \(its languages: en, sw\)"):
        PlanBuilder().check(cfg)


def test_a_zero_shot_language_in_training_is_refused_before_ray(tmp_path):
    from scaling.plan import PlanBuilder
    from scaling.sweep.study import StudyConfigError, build_study

    cfg = _mix_config(tmp_path, languages=["en", "sw"])
    PlanBuilder(zero_shot_languages=["de"]).check(cfg)
    with pytest.raises(ValueError, match=r"evaluation language\(s\) \['sw'\] are declared zero-shot \(zero_shot\.languages\) "
                                         r"but this trial trains on them"):
        PlanBuilder(zero_shot_languages=["swh"]).check(cfg)
    with pytest.raises(ValueError, match=r"evaluation language\(s\) \['de'\] are declared zero-shot"):  # all corpus languages
        PlanBuilder(zero_shot_languages=["de"]).check(_mix_config(tmp_path))
    base = {"axes": {"languages": [["en", "de"]]}, "benchmarks": ["parallel-qa:eval"],
            "train": {"data": {"train": ["parallel-qa:train"]}}}
    study = build_study({**base, "zero_shot": {"items": "refuse", "languages": ["sw", "yo"]}}, [])
    assert study.zero_shot == "refuse" and study.zero_shot_languages == ("sw", "yo")
    assert study.trials[0].identity["zero_shot"] == {"items": "refuse", "languages": ["sw", "yo"]}
    assert build_study({**base, "zero_shot": "drop"}, []).trials[0].identity["zero_shot"] == "drop"  # unchanged
    with pytest.raises(StudyConfigError, match=r"unknown setting zero_shot\.langs \(did you mean zero_shot\.languages\?\)"):
        build_study({**base, "zero_shot": {"langs": ["sw"]}}, [])
    with pytest.raises(StudyConfigError, match=r"zero_shot\.items must be 'drop' or 'refuse'"):
        build_study({**base, "zero_shot": {"items": "keep"}}, [])


def test_a_study_plans_a_weighted_mix_of_adapters_and_names_the_bad_trial(tmp_path):
    from pathlib import Path

    from scaling.store import ResultStore
    from scaling.sweep.driver import StudyPlanner
    from scaling.sweep.study import StudyConfigError, build_study

    fixtures = Path(__file__).parent / "fixtures"
    raw = {"study": {"name": "mix"}, "axes": {"languages": [["en", "de"]], "strategy": ["xy"]},
           "benchmarks": ["parallel-qa:eval"], "storage": str(tmp_path / "results"),
           "train": {"encoder": {"model": "tiny:hidden=32,layers=2"}, "sampler": {"batch_size": 2},
                     "data": {"train": [{"source": "belebele:all", "weight": 2, "options": {"path": str(fixtures / "belebele")}},
                                        {"source": "flores-plus:dev", "options": {"path": str(fixtures / "flores-plus")}}],
                              "heldout": None}}}
    planner = StudyPlanner(build_study(raw, []), ResultStore(tmp_path / "results" / "mix"))
    planner.check()
    label = f"belebele:all (weight 2, path={fixtures / 'belebele'}), flores-plus:dev (path={fixtures / 'flores-plus'})"
    assert list(planner.identity()["data"]["training"]) == [label]
    raw["axes"]["languages"] = [["en", "de"], ["de", "sw"]]  # FLORES+ (en, fr, zh) has neither German nor Swahili
    with pytest.raises(StudyConfigError, match=r"trial \w+ .*data\.train\[1\] 'flores-plus:dev \(path=.*\)' has no data in "
                                               r"any of data\.languages \['de', 'sw'\]"):
        StudyPlanner(build_study(raw, []), ResultStore(tmp_path / "results" / "mix2")).check()


def test_groups_spanning_sources_take_the_mean_weight_of_their_rows():
    """A translated corpus keeps its original's group ids: its rows join those groups."""
    original = qa_rows("orig", ["en", "de"], 3, "g")
    translated = [{**r, "lang": "sw", "query": r["query"] + " sw", "passage": r["passage"] + " sw", "source": "mt"}
                  for r in qa_rows("mt", ["en"], 3, "g")]
    corpus = ParallelCorpus.from_rows(original + translated, origin="mix")
    index = CorpusIndex(corpus, None, {"orig": 1.0, "mt": 4.0})
    assert index.multi_weights.tolist() == pytest.approx([2.0, 2.0, 2.0])  # (1 + 1 + 4) / 3 per group
    assert index.mono_weights["sw"].tolist() == [4.0, 4.0, 4.0] and index.mono_size("sw") == 12.0
    assert index.mono_size("de") == 3.0
    assert CorpusIndex(corpus, ["en", "sw"], {"orig": 1.0, "mt": 4.0}).multi_weights.tolist() == [2.5, 2.5, 2.5]
    with pytest.raises(ValueError, match=r"rows of source\(s\) \['mt'\] have no weight"):
        CorpusIndex(corpus, None, {"orig": 1.0})


def test_same_content_with_other_source_labels_gets_its_own_plan_file(tmp_path):
    """A study's plans share corpus files by content hash, which leaves out ``source``: a mix
    must not read another trial's file whose rows are labelled differently."""
    from scaling.plan import PlanBuilder
    from scaling.store import ResultStore

    mix = _mix_config(tmp_path)
    together = tmp_path / "together.parquet"
    write_parquet_corpus(ParallelCorpus.from_rows(qa_rows("qa", ["en", "de"], 24, "qa")
                                                  + bitext_rows("bt", ["en", "sw"], 24, "bt"), origin="both"), together)
    single = mix.with_values({"data.train": [str(together)]})
    builder = PlanBuilder(shared=ResultStore(tmp_path / "study"))
    plans = [builder.plan(cfg, run_location=str(tmp_path / f"run{i}"), scratch=tmp_path / f"s{i}")
             for i, cfg in enumerate((single, mix))]
    assert plans[0].corpus.content_hash == plans[1].corpus.content_hash and plans[0].corpus.path != plans[1].corpus.path
    assert set(plans[1].read_corpus().table.column("source").to_pylist()) == {s.source for s in mix.data.sources}
    make_sampler(mix.sampler, plans[1].read_corpus(), None, mix.data.source_weights())  # what the worker does
