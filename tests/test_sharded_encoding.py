"""Sharded encoding with a Ray Data actor pool (scaling.eval.sharded_encoding): the same vectors
as one process, in input order; a crashed job resumes from its shards; bad input is refused."""

from __future__ import annotations

import io
import json
import sys
import uuid
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from scaling.data.errors import DataError
from scaling.eval.sharded_encoding import Progress, ShardedEncodingConfig, TextColumn, encode_sharded, shard_bounds, shard_done
from scaling.eval.shards import _shard
from scaling.models.encoder import DualEncoder, EncoderConfig

TINY = EncoderConfig(model="tiny:hidden=32,layers=2", query_prefix="", passage_prefix="", max_length=24)
# fp16 storage rounds each component to 11 significant bits (cosine 1 - O(1e-7)); the shard's own
# length-sorted batches differ from one global sort, which moves float32 sums slightly (measured:
# min cosine 0.99994 on 1,200 SIB-200 sentences with e5-small).
FP16_COSINE = 1 - 1e-4


def _texts(n: int) -> pa.Table:
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()
    rng = np.random.default_rng(0)
    rows = [{"id": f"t{i}", "lang": ("de", "en", "fr")[i % 3],
             "text": " ".join(rng.choice(words, int(rng.integers(1, 15))))} for i in range(n)]
    return pa.Table.from_pylist(rows)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from scaling.models.families import family_for

    texts = _texts(50).column("text").to_pylist()
    return family_for(TINY.model).instantiate(TINY, texts, seed=0).save(tmp_path_factory.mktemp("m") / "model")


# ---- before Ray: settings and input ----------------------------------------------------------------
def test_bad_input_is_a_clear_error_before_ray(tmp_path, tiny_model):
    import ray

    with pytest.raises(ValueError, match="actors must be an integer >= 1"):
        ShardedEncodingConfig(actors=0)
    with pytest.raises(ValueError, match="shard_rows must be >= 1"):
        ShardedEncodingConfig(shard_rows=0)
    kwargs = dict(model_key="k", encoder_config=TINY, cache_dir=tmp_path)
    with pytest.raises(DataError, match="model folder does not exist") as err:
        encode_sharded(tmp_path / "no-such-model", ["a"], "passage", **kwargs)
    assert "no-such-model" in str(err.value)
    with pytest.raises(DataError, match="encoder.json is missing"):
        encode_sharded(tmp_path, ["a"], "passage", **kwargs)
    with pytest.raises(DataError, match="no texts"):
        encode_sharded(tiny_model, [], "passage", **kwargs)
    with pytest.raises(DataError, match="no 'text' column"):
        encode_sharded(tiny_model, pa.table({"body": ["a"]}), "passage", **kwargs)
    with pytest.raises(DataError, match="1 rows have no text"):
        encode_sharded(tiny_model, pa.table({"text": ["a", None]}), "passage", **kwargs)
    assert not ray.is_initialized()  # every refusal came before a cluster was started


def test_pool_follows_the_evaluation_reservation():
    """One actor per whole GPU, one with every CPU without GPUs; a pool of one runs in this
    process unless the Ray Data pool is asked for by name; eval.encoder_actors splits the rest."""
    cpu = ShardedEncodingConfig.for_resources(4, 0)
    assert (cpu.actors, cpu.cpus_per_actor, cpu.gpus_per_actor, cpu.in_process) == (1, 4.0, 0.0, True)
    gpu = ShardedEncodingConfig.for_resources(8, 2)
    assert (gpu.actors, gpu.cpus_per_actor, gpu.gpus_per_actor, gpu.in_process) == (2, 4.0, 1.0, False)
    half = ShardedEncodingConfig.for_resources(1, 0.5)
    assert (half.actors, half.gpus_per_actor, half.in_process) == (1, 0.5, True)
    assert ShardedEncodingConfig.for_resources(0.5, 0).actors == 1
    split = ShardedEncodingConfig.for_resources(4, 0, actors=2)
    assert (split.actors, split.cpus_per_actor, split.in_process) == (2, 2.0, False)
    assert not ShardedEncodingConfig(actors=1, executor="ray-data").in_process
    with pytest.raises(ValueError, match="executor 'thread': choose one of"):
        ShardedEncodingConfig(executor="thread")
    with pytest.raises(ValueError, match="in-process executor is one worker, not 2 actors"):
        ShardedEncodingConfig(actors=2, executor="in-process")


def test_the_stage_pool_follows_eval_settings():
    from scaling.eval.evaluate import EvalConfig
    from scaling.eval.sharded_encoding import pool_config

    pooled = pool_config(EvalConfig(encoder="ray-data", encoder_actors=2, batch_size=8, device="cpu"), 2, 0)
    assert (pooled.actors, pooled.cpus_per_actor, pooled.batch_size, pooled.device, pooled.in_process) == (
        2, 1.0, 8, "cpu", False)
    assert pool_config(EvalConfig(encoder="ray-data"), 2, 0).in_process
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="eval.encoder_actors must be an integer >= 1"):
            EvalConfig(encoder="ray-data", encoder_actors=bad)
    with pytest.raises(ValueError, match="sizes the ray-data pool; set eval.encoder: ray-data"):
        EvalConfig(encoder_actors=2)


def test_shard_layout_tapers_the_last_two_shards_into_halves():
    """By hand: 20,000 rows in shards of 2,048 are 8 full shards, then 3,616 rows in halves of
    what is left (1,808, 904, 452) with the last 452 kept whole (a half would leave a piece
    under 2,048 / 8 = 256); 4,000 rows are tapered from their first half on."""
    sizes = lambda n, rows: [b - a for a, b in shard_bounds(n, rows)]  # noqa: E731
    assert sizes(20_000, 2048) == [2048] * 8 + [1808, 904, 452, 452]
    assert sizes(230, 40) == [40, 40, 40, 40, 35, 17, 9, 9]
    assert sizes(400, 40) == [40] * 9 + [20, 10, 5, 5]
    assert sizes(4000, 2048) == [2000, 1000, 500, 500] and sizes(80, 40) == [40, 20, 10, 5, 5]
    assert sizes(240, 2048) == [240] and sizes(1, 5) == [1]
    for n, rows in [(81, 40), (4097, 2048), (50, 1), (1000, 7)]:
        bounds = shard_bounds(n, rows)
        assert bounds[0][0] == 0 and bounds[-1][1] == n and all(b == c for (_, b), (c, _) in zip(bounds, bounds[1:]))
        assert all(0 < b - a <= rows for a, b in bounds)


def test_text_fingerprint_sees_every_field_and_boundary():
    base = TextColumn.of(pa.table({"text": ["ab", "c"], "id": ["1", "2"], "lang": ["en", "en"]}))
    same = TextColumn.of(pa.table({"text": pa.chunked_array([["ab"], ["c"]]), "id": ["1", "2"], "lang": ["en", "en"]}))
    assert base.fingerprint("passage") == same.fingerprint("passage")
    others = [TextColumn.of(pa.table({"text": ["a", "bc"], "id": ["1", "2"], "lang": ["en", "en"]})),
              TextColumn.of(pa.table({"text": ["ab", "c"], "id": ["1", "3"], "lang": ["en", "en"]})),
              TextColumn.of(pa.table({"text": ["ab", "c"], "id": ["1", "2"], "lang": ["en", "de"]}))]
    prints = {base.fingerprint("passage"), base.fingerprint("query")} | {o.fingerprint("passage") for o in others}
    assert len(prints) == 5


def test_progress_line_gives_rate_and_time_left():
    import time

    out = io.StringIO()
    p = Progress(total=3000, done=1000, enabled=True, stream=out)  # 1000 were on disk already
    p.started = time.monotonic() - 10
    p.advance(500)  # 500 encoded here in 10 s: 50 texts/s, 1500 left: 30 s
    assert out.getvalue() == "\r[encode] [##########..........] 1,500 of 3,000 texts, 50 texts/s, about 0m30s left"
    assert not Progress(10, 0, stream=io.StringIO()).enabled  # not a terminal: quiet


# ---- with a local Ray: two actors -----------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    """Workers get their environment at ray.init, before any test's own (function-scoped) one:
    offline, and a cache folder of the module's (yielded)."""
    import ray

    cache = tmp_path_factory.mktemp("worker-cache")
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False,
             runtime_env={"env_vars": {"SCALING_CACHE_DIR": str(cache), "SCALING_OFFLINE": "1"}})
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # actors unpickle the test's loaders
    yield cache
    ray.shutdown()


TWO = ShardedEncodingConfig(actors=2, cpus_per_actor=1, batch_size=16, shard_rows=40)
HERE = ShardedEncodingConfig(actors=1, batch_size=16, shard_rows=40)  # a pool of one: in this process
EXECUTORS = pytest.mark.parametrize("pool", [TWO, HERE], ids=["ray-data-2-actors", "in-process"])


@EXECUTORS
def test_two_actors_equal_one_process_e5(tmp_path, ray_local, pool):
    """offline multilingual-e5-small, 230 texts in 8 shards on 2 actors (or in this process) vs
    DualEncoder.encode."""
    from scaling.data import load_benchmark
    from scaling.eval.embeddings import model_fingerprint

    bench = load_benchmark("parallel-qa:eval").single()
    table = bench.candidates.slice(0, 230)
    config = EncoderConfig()
    encoder = DualEncoder.from_config(config)
    reference = encoder.encode(table.column("text").to_pylist(), "passage", batch_size=32, device="cpu")
    out = encode_sharded(partial(DualEncoder.from_config, config), table, "passage",
                         model_key=model_fingerprint(encoder), encoder_config=encoder.config, config=pool,
                         cache_dir=tmp_path)
    assert (out.encoded_shards, out.total_shards, out.pool.shard_rows) == (8, 8, (40, 40, 40, 40, 35, 17, 9, 9))
    assert sorted(t.shard for t in out.timeline) == list(range(8)) and sum(t.rows for t in out.timeline) == 230
    assert all(out.started <= t.started <= t.ended for t in out.timeline)
    import os

    actors = {t.actor for t in out.timeline}
    if pool.in_process:
        assert out.executor == "in-process" and actors == {os.getpid()}
    else:
        assert out.executor == "ray-data" and len(actors) <= 2 and os.getpid() not in actors
    phases = out.phases()
    assert phases["start"] + phases["all busy"] + phases["tail"] + phases["after"] == pytest.approx(out.seconds, abs=0.05)
    assert 0 <= phases["idle share"] < 1
    got = out.embeddings()
    assert got.dtype == np.float32 and got.shape == reference.shape
    cos = (got * reference).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(reference, axis=1)
    assert cos.min() >= FP16_COSINE
    assert np.abs(got - reference).max() < 1e-3  # fp16 rounding of components below 1
    rows = out.pool.input_rows()  # the shards hold the rows longest first; rows maps them back
    assert sorted(rows.tolist()) == list(range(230))
    texts, input_ids, input_langs = (table.column(c).to_pylist() for c in ("text", "id", "lang"))
    # longest first: by UTF-8 bytes on the pool, by the tokenizer's counts in this process
    tokens = [len(ids) for ids in encoder.token_ids(texts, "passage")]
    lengths = [tokens[r] for r in rows] if pool.in_process else [len(texts[r].encode()) for r in rows]
    assert lengths == sorted(lengths, reverse=True) and lengths[0] > lengths[-1]
    order = json.loads((out.pool.folder / "encoding.json").read_text())["order"]
    assert order == ("tokens-descending" if pool.in_process else "utf8-bytes-descending")
    ids = np.concatenate([c.ids for c in out.pool.chunks(64)])
    langs = [out.pool.languages[i] for c in out.pool.chunks(64) for i in c.lang]
    assert ids.tolist() == [input_ids[r] for r in rows] and langs == [input_langs[r] for r in rows]
    assert out.pool.sizes.tolist() == [table.column("lang").to_pylist().count(x) for x in out.pool.languages]
    again = encode_sharded(partial(DualEncoder.from_config, config), table, "passage",
                           model_key=model_fingerprint(encoder), encoder_config=encoder.config, config=pool,
                           cache_dir=tmp_path)
    assert again.encoded_shards == 0 and again.key == out.key and np.array_equal(again.embeddings(), got)
    assert again.executor == "" and again.timeline == ()


class CountingLoader:
    """Loads the tiny model; each ``encode_token_ids`` (one per shard, of texts or of a pool of
    one's token ids) leaves a file in ``calls``, and with ``fail_after`` the call that finds that
    many files already there raises instead."""

    def __init__(self, model: Path, calls: Path, fail_after: int | None = None) -> None:
        self.model, self.calls, self.fail_after = str(model), calls, fail_after

    def __call__(self) -> DualEncoder:
        encoder = DualEncoder.load(self.model)
        original = encoder.encode_token_ids

        def encode_token_ids(ids, **kwargs):
            if self.fail_after is not None and len(list(self.calls.iterdir())) >= self.fail_after:
                raise RuntimeError("simulated crash of an encoding actor")
            (self.calls / uuid.uuid4().hex).touch()
            return original(ids, **kwargs)

        encoder.encode_token_ids = encode_token_ids
        return encoder


class LoadCounter:
    """Loads the tiny model and leaves a file in ``loads`` for each load (one per actor)."""

    def __init__(self, model: Path, loads: Path) -> None:
        self.model, self.loads = str(model), loads

    def __call__(self) -> DualEncoder:
        (self.loads / uuid.uuid4().hex).touch()
        return DualEncoder.load(self.model)


@EXECUTORS
def test_several_collections_share_one_pool_and_its_model_loads(tmp_path, ray_local, tiny_model, pool):
    """A benchmark's queries and candidates (and a repeated collection) in one pool run: each
    actor (or this process) loads the model once for all of them, the same texts are encoded
    once, and every collection gets the vectors one process gives it."""
    from scaling.eval.sharded_encoding import encode_collections

    loads = tmp_path / "loads"
    loads.mkdir()
    queries, passages = _texts(90), _texts(130).slice(40)
    encoder = DualEncoder.load(tiny_model)
    out = encode_collections(LoadCounter(tiny_model, loads), [(queries, "query"), (passages, "passage"),
                                                              (queries, "query")],
                             model_key="tiny", encoder_config=encoder.config, config=pool, cache_dir=tmp_path)
    assert 1 <= len(list(loads.iterdir())) <= pool.actors  # one load per actor, not one per collection
    assert out[0].key == out[2].key != out[1].key and out[0].pool.folder == out[2].pool.folder
    assert [o.total_shards for o in out] == [len(shard_bounds(90, 40)), len(shard_bounds(90, 40)),
                                             len(shard_bounds(90, 40))]
    assert sorted((t.key, t.shard) for t in out[0].timeline) == sorted(
        [(out[0].key, i) for i in range(out[0].total_shards)] + [(out[1].key, i) for i in range(out[1].total_shards)])
    for result, (table, kind) in zip(out, [(queries, "query"), (passages, "passage"), (queries, "query")]):
        want = encoder.encode(table.column("text").to_pylist(), kind, batch_size=16, device="cpu")
        assert np.abs(result.embeddings() - want).max() < 1e-3  # fp16 rounding
    again = encode_collections(LoadCounter(tiny_model, loads), [(passages, "passage")], model_key="tiny",
                               encoder_config=encoder.config, config=pool, cache_dir=tmp_path)
    assert again[0].encoded_shards == 0 and len(list(loads.iterdir())) <= pool.actors  # cached: no pool, no load


def test_a_pool_of_one_tokenizes_each_text_once_and_lays_shards_out_by_tokens(tmp_path, tiny_model, monkeypatch):
    """In this process the token ids that order the shards are the ones encoded (no second
    tokenization), each shard holds a run of the token-sorted rows, and Ray Data is not used."""
    import scaling.eval.sharded_encoding as sharded

    monkeypatch.setattr(sharded, "_run_pool", lambda *a: pytest.fail("a pool of one started Ray Data"))
    tokenized, real = [], DualEncoder.token_ids
    monkeypatch.setattr(DualEncoder, "token_ids", lambda self, texts, *a, **k: tokenized.append(len(texts))
                        or real(self, texts, *a, **k))
    table = _texts(230)
    encoder = DualEncoder.load(tiny_model)
    want = encoder.encode(table.column("text").to_pylist(), "passage", batch_size=16, device="cpu")
    tokens = [len(ids) for ids in encoder.token_ids(table.column("text").to_pylist(), "passage")]
    tokenized.clear()
    out = encode_sharded(str(tiny_model), table, "passage", model_key="tiny", encoder_config=encoder.config,
                         config=HERE, cache_dir=tmp_path)
    assert sum(tokenized) == 230 and out.executor == "in-process"
    rows = out.pool.input_rows()
    assert [tokens[r] for r in rows] == sorted(tokens, reverse=True)
    assert np.abs(out.embeddings() - want).max() < 1e-3  # fp16 rounding


@EXECUTORS
def test_killed_job_resumes_from_its_shards(tmp_path, ray_local, tiny_model, pool):
    table = _texts(400)  # 13 shards: 9 of 40, then 20, 10, 5, 5
    bounds = shard_bounds(400, 40)
    assert len(bounds) == 13
    kwargs = dict(model_key="tiny", encoder_config=DualEncoder.load(tiny_model).config, config=pool)
    whole = tmp_path / "whole-calls"
    whole.mkdir()
    uninterrupted = encode_sharded(CountingLoader(tiny_model, whole), table, "passage", cache_dir=tmp_path / "a",
                                   **kwargs)
    assert len(list(whole.iterdir())) == 13

    first, second = tmp_path / "first-calls", tmp_path / "second-calls"
    first.mkdir()
    second.mkdir()
    with pytest.raises(RuntimeError, match="shards on disk .* run it again to encode only the missing shards"):
        encode_sharded(CountingLoader(tiny_model, first, fail_after=4), table, "passage", cache_dir=tmp_path / "b",
                       **kwargs)
    folder = tmp_path / "b" / "sharded" / uninterrupted.key
    assert not (folder / "pool.json").exists()  # unfinished
    kept = [i for i, (a, b) in enumerate(bounds) if shard_done(folder, i, b - a)]
    assert 4 <= len(kept) < 13 and len(list(first.iterdir())) == len(kept)
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # no half-written shard
    before = {i: _shard(folder, i, "emb").stat().st_mtime_ns for i in kept}

    resumed = encode_sharded(CountingLoader(tiny_model, second), table, "passage", cache_dir=tmp_path / "b", **kwargs)
    assert len(list(second.iterdir())) == 13 - len(kept) == resumed.encoded_shards  # only the missing shards
    assert sorted(t.shard for t in resumed.timeline) == sorted(set(range(13)) - set(kept))
    assert {i: _shard(folder, i, "emb").stat().st_mtime_ns for i in kept} == before  # kept shards untouched
    assert np.array_equal(resumed.embeddings(), uninterrupted.embeddings())
    ids = np.concatenate([c.ids for c in resumed.pool.chunks(400)])
    input_ids = table.column("id").to_pylist()
    assert ids.tolist() == [input_ids[r] for r in resumed.pool.input_rows()]


def test_stage_prefill_gives_the_local_metrics(tmp_path, ray_local, monkeypatch):
    """eval.encoder: ray-data fills the cache entries evaluate_suite reads (e5-small, with an
    eval.max_length override); its metrics equal the local path's within fp16 rounding. The entry
    names the candidates' shards instead of copying them, and a pool beyond eval.memory_mb is
    ranked from those shards directly, with the in-memory ranking's metrics."""
    from scaling.data import load_benchmark
    from scaling.eval.embeddings import model_fingerprint
    from scaling.eval.evaluate import EvalConfig, evaluate_suite
    from scaling.eval.sharded_encoding import prefill_embeddings

    suite = load_benchmark("parallel-qa:eval")
    encoder = DualEncoder.from_config(EncoderConfig())
    key = model_fingerprint(encoder)
    local = evaluate_suite(encoder, suite, EvalConfig(cache_dir=str(tmp_path / "local"), max_length=48), model_key=key)
    config = EvalConfig(cache_dir=str(tmp_path / "pool"), max_length=48, encoder="ray-data", batch_size=32)
    encoder = DualEncoder.from_config(EncoderConfig())
    parts = prefill_embeddings(partial(DualEncoder.from_config, EncoderConfig()), EncoderConfig(), key, [suite], config,
                               eval_cpus=2, eval_gpus=0)
    assert len(parts) == 2 and all(p.encoded_shards >= 1 for p in parts)
    assert parts[0].pool.shard_rows == (240,) and parts[1].pool.shard_rows == (488,)  # one shard each (2048 rows by default)
    pooled = evaluate_suite(encoder, suite, config, model_key=key)
    assert all(pooled.cached.values()) and not any(local.cached.values())
    got = {(r.benchmark, r.setting, r.query_lang, r.candidate_lang, r.metric): r.value for r in pooled.records}
    want = {(r.benchmark, r.setting, r.query_lang, r.candidate_lang, r.metric): r.value for r in local.records}
    assert got.keys() == want.keys()
    worst = max(want, key=lambda k: abs(got[k] - want[k]))
    print("largest difference", worst, got[worst], want[worst])
    assert abs(got[worst] - want[worst]) <= 0.01 * max(1.0, abs(want[worst]))
    from scaling.eval import evaluate as evaluate_module
    from scaling.eval.embeddings import cache_key
    from scaling.eval.shards import ShardWriter

    entry = tmp_path / "pool" / cache_key(encoder, suite.single(), key)
    assert not (entry / "candidates.npy").exists()  # one copy of the candidates: the shards
    assert (entry.parent / json.loads((entry / "meta.json").read_text())["candidates_pool"]) == parts[1].pool.folder

    def no_copy(*args, **kwargs):
        raise AssertionError("the pool was copied into temporary shards")

    monkeypatch.setattr(ShardWriter, "__init__", no_copy)
    monkeypatch.setattr(evaluate_module, "fits_in_memory", lambda *args: False)  # as if beyond eval.memory_mb
    streamed = evaluate_suite(encoder, suite, config, model_key=key)
    assert any("ranked from shards" in n for n in streamed.notes)
    assert {(r.benchmark, r.setting, r.query_lang, r.candidate_lang, r.metric): r.value
            for r in streamed.records} == pytest.approx(got, abs=1e-9)


def test_a_saved_model_loads_its_weights_only_for_what_the_cache_lacks(tmp_path, tiny_model):
    """The pooled stage's stand-in: from a full cache it ranks without loading the weights; with
    an entry missing it loads them once and gives the loaded encoder's metrics."""
    from scaling.data import load_benchmark
    from scaling.eval.embeddings import SavedModel, folder_fingerprint
    from scaling.eval.evaluate import EvalConfig, evaluate_suite

    suite, key = load_benchmark("parallel-qa:eval"), folder_fingerprint(tiny_model)
    config = EvalConfig(cache_dir=str(tmp_path), max_length=16)
    want = evaluate_suite(DualEncoder.load(tiny_model), suite, EvalConfig(max_length=16, use_cache=False), model_key=key)
    cold = SavedModel(tiny_model)
    first = evaluate_suite(cold, suite, config, model_key=key)
    assert cold.loaded and cold.encoder().config.max_length == 16 and not any(first.cached.values())
    warm = SavedModel(tiny_model)
    again = evaluate_suite(warm, suite, config, model_key=key)
    assert not warm.loaded and all(again.cached.values())
    rows = lambda r: sorted((x.setting, x.query_lang, x.candidate_lang, x.metric, x.value) for x in r.records)  # noqa: E731
    assert rows(first) == rows(again) == rows(want) and len(want.records) > 100


def test_eval_encoder_setting_is_checked():
    from scaling.eval.evaluate import EvalConfig

    with pytest.raises(ValueError, match="eval.encoder 'ray'"):
        EvalConfig(encoder="ray")
    assert EvalConfig().encoder == "local"


def test_study_eval_section_takes_the_encoder():
    from scaling.sweep.study import StudyConfigError, _eval_config

    assert _eval_config({"encoder": "ray-data"}).encoder == "ray-data"
    with pytest.raises(StudyConfigError, match="eval.encoder 'rays'"):
        _eval_config({"encoder": "rays"})


@pytest.mark.parametrize("actors", [None, 2], ids=["pool-of-one-in-the-stage", "ray-data-2-actors"])
def test_study_with_ray_data_encoder_runs_and_ranks_from_the_pool(tmp_path, monkeypatch, ray_local, actors):
    """A one-trial study with eval.encoder: ray-data: the shards are encoded after training (by
    the stage task itself for the default pool of one, or by a Ray Data pool of two actors with
    eval.encoder_actors: 2), the stage ranks from the cache they filled, and the metrics are
    recorded."""
    import yaml

    from conftest import TINY_STUDY
    from scaling.sweep.cli import main
    from scaling.sweep.driver import load_results

    monkeypatch.chdir(tmp_path)
    raw = json.loads(json.dumps(TINY_STUDY))
    raw["axes"]["strategy"] = ["xy"]
    raw["eval"] = {"encoder": "ray-data", **({"encoder_actors": actors} if actors else {})}
    import shutil

    shutil.rmtree(ray_local / "embeddings", ignore_errors=True)  # the workers' cache: this study's entries only
    (tmp_path / "study.yaml").write_text(yaml.safe_dump({**raw, "storage": "results"}))
    assert main(["--config", str(tmp_path / "study.yaml")]) == 0
    table = load_results(tmp_path / "results" / "tiny")
    assert len(table) and set(table.column("benchmark").to_pylist()) == {"parallel-qa:eval"}
    pools = list((ray_local / "embeddings" / "sharded").glob("*/pool.json"))  # the workers' cache
    assert len(pools) == 2  # queries and candidates of parallel-qa:eval
    assert sorted(json.loads(p.read_text())["shards"][0] for p in pools) == [240, 488]
    entries = [json.loads(m.read_text()) for m in (ray_local / "embeddings").glob("*/meta.json")]
    assert {(e.get("actors"), e.get("executor")) for e in entries} == {
        (actors or 1, "ray-data" if actors else "in-process")}
