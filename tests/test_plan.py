"""Trial plans: built once on the driver, each source loaded once; workers and evaluation read
the plan alone (run here in-process, with every source loader made to fail)."""

from __future__ import annotations

import json

import pytest

from conftest import TINY_STUDY, crash_at, crashed_run
from scaling.data.suites import BenchmarkSuite
from scaling.plan import TrialPlan
from scaling.store import ResultStore
from scaling.sweep.study import build_study


def _counting(monkeypatch, module, name, calls):
    real = getattr(module, name)

    def counted(source, *args, **kwargs):
        calls.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(module, name, counted)


def _forbid_sources(monkeypatch):
    import scaling.data
    import scaling.data.sources
    import scaling.plan.builder

    def refuse(*args, **kwargs):
        raise AssertionError(f"a source was loaded after planning: {args}")

    for module in (scaling.data, scaling.data.sources, scaling.plan.builder):
        monkeypatch.setattr(module, "load_corpus", refuse)
        monkeypatch.setattr(module, "load_benchmark", refuse)


@pytest.fixture
def planned(tmp_path, monkeypatch):
    import scaling.plan.builder as builder
    from scaling.sweep.driver import plan_trials

    raw = json.loads(json.dumps(TINY_STUDY))
    raw["storage"] = str(tmp_path / "results")
    raw["eval"] = {"ks": [1, 3], "settings": ["multi", "cross"]}
    study = build_study(raw, [])
    store = ResultStore(tmp_path / "results" / "tiny")
    corpus_loads, benchmark_loads, samplers = [], [], []
    _counting(monkeypatch, builder, "load_corpus", corpus_loads)
    _counting(monkeypatch, builder, "load_benchmark", benchmark_loads)
    _counting(monkeypatch, builder, "make_sampler", samplers)
    plans = plan_trials(study, store, list(study.trials))
    return study, plans, corpus_loads, benchmark_loads, samplers


def test_each_source_is_loaded_once_for_the_whole_study(planned):
    study, plans, corpus_loads, benchmark_loads, samplers = planned
    assert len(plans) == 2 and len(samplers) == 2  # each trial checked once: the plan reuses the study's check
    assert sorted(corpus_loads) == ["parallel-qa:eval", "parallel-qa:train"]  # training data and held-out set, once
    assert benchmark_loads == ["parallel-qa:eval"]  # for the zero-shot check and for evaluation alike
    a, b = plans.values()
    assert a.corpus.path == b.corpus.path and a.benchmarks[0].path == b.benchmarks[0].path  # written once
    assert a.corpus.dropped_groups == {"parallel-qa:eval": 0} and a.corpus.rows == 560
    assert a.eval.ks == (1, 3) and a.eval.settings == ("multi", "cross")
    assert a.config.encoder.model.endswith("init_model")  # the tiny model, materialised on the driver
    assert a.config.run.name.startswith(f"trial-{a.trial_id}-")
    again = TrialPlan.read(a.location)
    assert again.to_dict() == a.to_dict()


def test_worker_and_evaluation_read_only_the_plan(planned, tmp_path, monkeypatch):
    from scaling.eval.stage import evaluate_plan
    from scaling.training.context import LocalWorker
    from scaling.training.outcome import MODEL_FOLDER, TrainOutcome
    from scaling.training.worker import run_worker

    study, plans, *_ = planned
    plan = TrialPlan.read(next(iter(plans.values())).location)
    plan = TrialPlan.from_dict({**plan.to_dict(), "config": {**plan.config.to_dict(),
                                                             "run": {**plan.config.to_dict()["run"], "num_workers": 1}}})
    _forbid_sources(monkeypatch)
    steps = []
    ctx = LocalWorker(tmp_path / "local")
    run_worker(plan, ctx, hooks=[lambda step, rank, world, resumed: steps.append(step)])
    assert steps == [0, 1, 2, 3] and [r["step"] for r in ctx.reports] == [4]
    outcome = TrainOutcome.read(ctx.saved[-1])
    assert [h["step"] for h in outcome.history] == [2, 4] and "heldout_loss_xy" in outcome.metrics
    result = evaluate_plan(plan, ctx.saved[-1] / MODEL_FOLDER)
    settings = {(r.setting, r.metric) for r in result.records if r.query_lang == "*"}
    assert ("multi", "map") in settings and ("cross", "recall@3") in settings
    assert not {s for s, _ in settings} - {"multi", "cross"} and ("multi", "recall@10") not in settings
    _pooled_stage_loads_weights_only_where_it_encodes(plan, ctx.saved[-1] / MODEL_FOLDER, result, tmp_path, monkeypatch)


def _pooled_stage_loads_weights_only_where_it_encodes(plan, model_dir, local, tmp_path, monkeypatch):
    """eval.encoder: ray-data in the stage. With two actors the pool is keyed by the fingerprint
    saved with the model (nothing computed or loaded here before the actors), and this process
    ranks every benchmark from the entries the pool wrote without loading the weights at all.
    With the default pool of one (one CPU), this process encodes the shards itself: it loads the
    weights once, before any pool is on disk, and has freed them when it ranks."""
    import gc
    import weakref

    import ray

    import scaling.eval.embeddings as embeddings
    import scaling.eval.stage as stage
    from scaling.eval.stage import evaluate_plan

    loads, real_load = [], stage.DualEncoder.load

    def counted_load(cls, folder):
        loaded = real_load(folder)
        loads.append((sorted(cache.glob("sharded/*/pool.json")), weakref.ref(loaded)))
        return loaded

    def ranking(*args, **kwargs):  # the stage's ranking starts: the pool's model must be gone
        gc.collect()
        assert all(ref() is None for _, ref in loads), "the model was not freed before ranking"
        return real_evaluate_suite(*args, **kwargs)

    real_evaluate_suite = stage.evaluate_suite
    monkeypatch.setattr(embeddings, "model_fingerprint", lambda *a: pytest.fail("the fingerprint was computed"))
    monkeypatch.setattr(stage.DualEncoder, "load", classmethod(counted_load))
    monkeypatch.setattr(stage, "evaluate_suite", ranking)
    want = {(r.setting, r.metric, r.query_lang): r.value for r in local.records}
    for actors, loads_here in ((2, 0), (None, 1)):
        cache, loads[:] = tmp_path / f"pool-cache-{actors}", []
        pooled_plan = TrialPlan.from_dict({**plan.to_dict(), "eval": {
            **plan.to_dict()["eval"], "encoder": "ray-data", "encoder_actors": actors, "cache_dir": str(cache)}})
        assert stage.pool_runs_apart(pooled_plan) == (actors == 2)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            pooled = evaluate_plan(pooled_plan, model_dir)
        finally:
            ray.shutdown()
        assert len(loads) == loads_here and all(pools == [] for pools, _ in loads)  # loaded before any pool existed
        assert len(list(cache.glob("sharded/*/pool.json"))) == 2  # queries' and candidates' pools
        assert pooled.cached and all(pooled.cached.values())
        got = {(r.setting, r.metric, r.query_lang): r.value for r in pooled.records}
        assert got.keys() == want.keys()
        assert all(abs(got[k] - want[k]) <= 0.01 * max(1.0, abs(want[k])) for k in want)  # fp16; rank distance in ranks


def one_worker_plan(plans, **run) -> TrialPlan:
    """The first trial's plan on one local worker, with ``run`` settings changed."""
    base = next(iter(plans.values())).to_dict()
    base["config"]["run"].update(num_workers=1, **run)
    return TrialPlan.from_dict(base)


def test_a_resumed_local_run_continues_from_its_checkpoint(planned, tmp_path, monkeypatch):
    from scaling.training.context import LocalWorker
    from scaling.training.outcome import TrainOutcome
    from scaling.training.worker import run_worker

    plan = one_worker_plan(planned[1], checkpoint_every=2, report_every=2)
    straight = LocalWorker(tmp_path / "straight")
    run_worker(plan, straight)
    broken = crashed_run(plan, tmp_path / "broken", 3)
    run_worker(plan, broken, hooks=[crash_at(3)])  # resumes from the step-2 checkpoint
    a, b = (TrainOutcome.read(w.saved[-1]) for w in (straight, broken))
    assert b.metrics["resumed_from"] == 2 and a.metrics["resumed_from"] == -1
    assert [h["loss"] for h in a.history] == pytest.approx([h["loss"] for h in b.history], rel=1e-6)


def test_a_suite_and_its_rule_survive_the_plan_files(tmp_path):
    from scaling.data.tatoeba_retrieval import build_tatoeba
    from scaling.plan.files import read_suite, write_suite

    for code, lines in (("deu", ["Hallo.", "Danke."]), ("fra", ["Bonjour.", "Merci.", "Oui."])):
        (tmp_path / f"tatoeba.{code}-eng.{code}").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (tmp_path / f"tatoeba.{code}-eng.eng").write_text("\n".join(["Hello.", "Thanks.", "Yes."][:len(lines)]) + "\n",
                                                          encoding="utf-8")
    suite = build_tatoeba(tmp_path)
    store = ResultStore(tmp_path / "store")
    write_suite(store, "data/tatoeba", suite)
    back = read_suite(store, "data/tatoeba")
    assert isinstance(back, BenchmarkSuite) and back.rule == suite.rule and list(back.members) == ["de", "fr"]
    assert [b.fingerprint() for b in back] == [b.fingerprint() for b in suite]
    assert back["fr"].relevance == suite["fr"].relevance


def test_an_unreadable_latest_checkpoint_falls_back_to_the_one_before(planned, tmp_path):
    from scaling.training.context import LocalWorker
    from scaling.training.outcome import TrainOutcome
    from scaling.training.worker import run_worker

    plan = one_worker_plan(planned[1], checkpoint_every=1, report_every=1)
    straight = LocalWorker(tmp_path / "straight")
    run_worker(plan, straight)
    broken = crashed_run(plan, tmp_path / "broken", 3)
    (broken.saved[-1] / "state.pt").write_bytes(b"truncated")  # the step-3 checkpoint
    run_worker(plan, broken, hooks=[crash_at(3)])
    a, b = (TrainOutcome.read(w.saved[-1]) for w in (straight, broken))
    assert b.metrics["resumed_from"] == 2
    assert [h["loss"] for h in a.history] == pytest.approx([h["loss"] for h in b.history], rel=1e-6)

    gone = crashed_run(plan, tmp_path / "gone", 3)
    for folder in gone.saved:
        (folder / "state.pt").write_bytes(b"")
    with pytest.raises(RuntimeError, match="no checkpoint of this run can be read .*delete the run folder"):
        run_worker(plan, gone, hooks=[crash_at(3)])
