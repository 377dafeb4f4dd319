"""Corpus-scale evaluation: exact ranking in bounded memory, and the 205-language SIB-200 pool.

1. ``ranking``: 10,000 queries against 100k, 1M and 4M random unit-vector candidates
   (dimension 384), written first as memory-mapped shards in a temporary folder (generated shard
   by shard, so generation is bounded too), then ranked exactly by ``stream_ranks`` in a fresh
   subprocess per pool size at one memory budget. Prints per size the peak RSS (VmHWM), wall
   time and time per million candidate scores; the last line is the peak-RSS ratio of the
   largest to the smallest pool. Each query has 4 relevant candidates; by default they are the
   first rows of the pool (a benchmark's own pool plus a distractor corpus, the corpus-scale
   setting), so the first pass that takes their scores reads few chunks; ``--spread`` scatters
   them over every chunk (the first pass then repeats every chunk's matmul).
2. ``sib-200``: the SIB-200 merged pool (test split; all 205 languages unless ``--languages``)
   with the offline multilingual-e5-small; prints wall time, peak RSS and the macro cross/multi
   mAP and rank distance. ``--random-embeddings`` skips the encoder (measures loading, ranking
   and metrics alone).
3. ``encoding``: the same texts (SIB-200 test sentences of the first 100 languages, shuffled with a
   fixed seed, cycled to ``--n``; parallel-qa without a data directory) encoded by
   multilingual-e5-small, saved as training saves a model, five ways in one run: this process's
   ``DualEncoder.load`` and ``encode``, sentence-transformers on the same folder, the same load
   and encode in a Ray task with the evaluation's CPUs (the local evaluation stage as a study
   runs it: a fresh worker under Ray's own processes), sharded encoding as a study runs it on
   this machine (``scaling.eval.sharded_encoding`` with the pool the reservation gives: on CPUs,
   a pool of one, encoded inside that Ray task), and the Ray Data actor pool by name (one run
   per ``--actors`` count; its wall time includes the actors' start and model load; the
   cluster's own start is printed apart). Prints texts/s of each from the folder (model load
   included, as every stage path must load it) and for the encoding alone, the agreement of the
   vectors and the ratios of the sharded paths to the single process, the local stage task and
   sentence-transformers.

    python bench/eval_scale.py ranking [--queries 10000] [--sizes 100000,1000000,4000000] [--memory-mb 256]
    SCALING_DATA_DIR=../shared/data python bench/eval_scale.py sib-200 --languages deu_Latn,fra_Latn,zho_Hans
    SCALING_DATA_DIR=../shared/data python bench/eval_scale.py encoding [--n 20000] [--actors 1,2] [--batch-size 64]
    SCALING_DATA_DIR=../shared/data python bench/eval_scale.py encoding-path --path sharded [--n 8000] [--gpus 0]

``encoding-path`` runs one stage path alone (``local-task``; ``sharded``, as a study sizes its
pool; ``ray-data``, the Ray Data pool by name), after the same set-up, so two runs can be timed
as whole processes in turn by any external timer.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

DIM, RELEVANT, LANGS, SHARD_ROWS = 384, 4, ("de", "en", "fr", "zh"), 65536


def peak_rss_mb() -> float:
    """VmHWM of this process (peak resident set), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def relevant_rows(n_queries: int, size: int, spread: bool) -> np.ndarray:
    """(Q, 4) candidate rows relevant to each query: the first rows, or spread over the pool."""
    rows = np.arange(n_queries * RELEVANT).reshape(n_queries, RELEVANT)
    return rows * (size // (n_queries * RELEVANT)) if spread else rows


def write_random_pool(folder: Path, size: int, seed: int) -> float:
    from scaling.eval.shards import ShardWriter

    start = time.perf_counter()
    writer = ShardWriter(folder, DIM)
    for i, a in enumerate(range(0, size, SHARD_ROWS)):
        n = min(SHARD_ROWS, size - a)
        rows = np.arange(a, a + n)
        writer.add(unit_vectors(np.random.default_rng([seed, i]), n), [f"c{r:08d}" for r in rows],
                   [LANGS[r % 4] for r in rows])
    writer.close()
    return time.perf_counter() - start


def rank_child(args) -> None:
    """One measurement in a fresh process: rank the pool in ``args.pool``, print JSON."""
    from scaling.eval.settings import evaluate_settings
    from scaling.eval.shards import ShardedPool
    from scaling.eval.streaming import QuerySet, plan_memory, stream_ranks

    pool = ShardedPool(args.pool)
    queries = np.load(Path(args.pool).parent / "queries.npy")
    rel = relevant_rows(len(queries), len(pool), args.spread)
    ids = tuple(f"q{i}" for i in range(len(queries)))
    qs = QuerySet(ids, tuple(LANGS[i % 4] for i in range(len(queries))),
                  {q: {f"c{r:08d}": 1 for r in rel[i]} for i, q in enumerate(ids)}, name="random")
    before = peak_rss_mb()
    start = time.perf_counter()
    table = stream_ranks(qs, queries, pool, memory_mb=args.memory_mb)
    wall = time.perf_counter() - start
    res = evaluate_settings(table, "random", settings=("multi",), ks=(10,))
    multi = next(r.value for r in res.records if r.metric == "map" and r.query_lang == "*")
    block, rows = plan_memory(len(queries), DIM, args.memory_mb)
    print(json.dumps({"wall": wall, "peak_mb": peak_rss_mb(), "before_mb": before, "multi_map": multi,
                      "block": block, "chunk_rows": rows}))


def ranking(args) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    root = Path(tempfile.mkdtemp(prefix="eval-scale-", dir=args.dir))
    where = "spread over the pool" if args.spread else "in the first rows"
    print(f"{args.queries:,} queries x {{{', '.join(f'{s:,}' for s in sizes)}}} random unit-vector candidates, "
          f"dimension {DIM}, memory budget {args.memory_mb} MB, relevant {where}")
    print(f"{'candidates':>12} {'peak RSS MB':>12} {'(after imports)':>15} {'wall s':>9} {'ms / M scores':>14} "
          f"{'write s':>8}")
    peaks = []
    try:
        np.save(root / "queries.npy", unit_vectors(np.random.default_rng(1), args.queries))
        for size in sizes:
            folder = root / f"pool-{size}"
            written = write_random_pool(folder, size, seed=0)
            cmd = [sys.executable, __file__, "_rank-child", str(folder), "--memory-mb", str(args.memory_mb)]
            out = subprocess.run(cmd + (["--spread"] if args.spread else []), check=True, capture_output=True,
                                 text=True).stdout
            m = json.loads(out.strip().splitlines()[-1])
            peaks.append(m["peak_mb"])
            per_million = m["wall"] * 1000 / (args.queries * size / 1e6)
            print(f"{size:>12,} {m['peak_mb']:>12,.0f} {m['before_mb']:>15,.0f} {m['wall']:>9.1f} {per_million:>14.3f} "
                  f"{written:>8.1f}   (blocks of {m['block']:,} queries, chunks of {m['chunk_rows']:,} rows; "
                  f"multi mAP {m['multi_map']:.5f})", flush=True)
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"peak RSS ratio, {sizes[-1]:,} vs {sizes[0]:,} candidates: {peaks[-1] / peaks[0]:.2f}x (goal: within 1.3x)")


def sib200(args) -> None:
    from scaling.data import load_benchmark
    from scaling.eval.evaluate import EvalConfig, evaluate_suite
    from scaling.eval.ranks import compute_ranks
    from scaling.eval.settings import evaluate_settings

    start = time.perf_counter()
    langs = args.languages.split(",") if args.languages else None
    suite = load_benchmark("sib-200", data_dir=args.data_dir, languages=langs)
    bench = suite.single()
    loaded = time.perf_counter() - start
    print(f"{bench.name}: {len(bench.candidate_languages)} languages, {len(bench.queries):,} queries, "
          f"{len(bench.candidates):,} candidates, {len(bench.queries) * (len(bench.candidate_languages) - 1):,} "
          f"relevant pairs (loaded in {loaded:.1f} s)", flush=True)
    if args.random_embeddings:
        rng = np.random.default_rng(0)
        emb = unit_vectors(rng, len(bench.candidates))
        t = time.perf_counter()
        table = compute_ranks(bench, emb, emb, memory_mb=args.memory_mb)
        records = evaluate_settings(table, bench.name, settings=suite.rule.settings).records
        timings = {"ranks and metrics": time.perf_counter() - t}
    else:
        from scaling.models.encoder import DualEncoder, EncoderConfig

        encoder = DualEncoder.from_config(EncoderConfig())
        result = evaluate_suite(encoder, suite, EvalConfig(memory_mb=args.memory_mb, use_cache=not args.no_cache))
        records = result.records
        timings = {"encode" + (" (cached)" if result.cached[bench.name] else ""): result.timings[f"{bench.name}/encode"],
                   "ranks and metrics": result.timings[f"{bench.name}/search"]}
    value = {(r.setting, r.metric): r.value for r in records if r.query_lang == "*" and r.candidate_lang == "*"}
    print(f"total wall {time.perf_counter() - start:.1f} s ("
          + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + f"), peak RSS {peak_rss_mb():,.0f} MB")
    print(f"macro mAP cross {value[('cross', 'map')]:.4f}, multi {value[('multi', 'map')]:.4f}; "
          f"multilingual rank distance {value[('multi', 'rank_distance')]:.1f}")


def encoding_texts(n: int, data_dir: str | None, seed: int = 0):
    """``n`` rows (id, lang, text): SIB-200 test sentences of 100 languages, shuffled, cycled."""
    import os

    import pyarrow as pa

    from scaling.data import load_benchmark

    if data_dir or os.environ.get("SCALING_DATA_DIR"):
        root = Path(data_dir or os.environ["SCALING_DATA_DIR"]) / "sib-200"
        langs = sorted(p.name for p in root.iterdir() if (p / "test.tsv").is_file())[:100]
        table, source = load_benchmark("sib-200", data_dir=data_dir, languages=langs).single().candidates, "sib-200"
    else:
        table, source = load_benchmark("parallel-qa:eval").single().candidates, "parallel-qa:eval"
    order = np.random.default_rng(seed).permutation(len(table))
    rows = np.resize(order, n)  # cycled when n exceeds the table
    out = table.take(pa.array(rows)).select(["lang", "text"])
    return out.append_column("id", pa.array([f"r{i}" for i in range(n)])), f"{source} ({len(table):,} distinct)"


def encoding(args) -> None:
    import os

    import ray
    import ray.data
    import torch
    from sentence_transformers import SentenceTransformer, models

    from scaling.models.encoder import EncoderConfig

    table, source = encoding_texts(args.n, args.data_dir)
    texts = table.column("text").to_pylist()
    config = EncoderConfig(max_length=args.max_length)
    work = Path(tempfile.mkdtemp(prefix="eval-scale-encoding-", dir=args.dir))
    model = _saved_e5(work, args.max_length)
    cpus = os.cpu_count() or 1
    print(f"{len(texts):,} texts from {source}, multilingual-e5-small saved as a trained model folder, batch "
          f"{args.batch_size}, max length {args.max_length}; {cpus} CPUs, load average {os.getloadavg()[0]:.1f} at the "
          "start. 'from the folder' includes loading the model (both paths must); 'encode' excludes it", flush=True)
    rates, vectors = {}, {}

    def report(name, load, encode, note=""):
        rates[name] = len(texts) / (load + encode)
        print(f"{name:<30}{rates[name]:8.1f} texts/s from the folder ({load:.1f} s load), "
              f"{len(texts) / encode:8.1f} texts/s encode{note}", flush=True)

    load, encode, vectors["single process"] = _encode_in_task(str(model), table.column("text"), args.batch_size)
    report("single process", load, encode, f"  ({torch.get_num_threads()} torch threads)")

    start = time.perf_counter()
    word = models.Transformer(str(model), max_seq_length=args.max_length)
    dim = getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension
    st = SentenceTransformer(modules=[word, models.Pooling(dim(), "mean"), models.Normalize()], device="cpu")
    load = time.perf_counter() - start
    start = time.perf_counter()
    vectors["sentence-transformers"] = st.encode([config.passage_prefix + t for t in texts], batch_size=args.batch_size,
                                                 convert_to_numpy=True)
    report("sentence-transformers", load, time.perf_counter() - start)
    del st, word

    start = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    print(f"(Ray cluster start {time.perf_counter() - start:.1f} s, not counted: a study's cluster is already up)")
    start = time.perf_counter()
    ray.data.range(2).materialize()  # Ray Data's own actors (statistics, autoscaling) start once per cluster
    print(f"(Ray Data's first dataset {time.perf_counter() - start:.1f} s, not counted: in a study the first "
          "trial's evaluation pays it)", flush=True)
    try:
        # today's local evaluation stage as it runs in a study: a Ray task with the evaluation's
        # CPUs, in a fresh worker (imports, model load and encoding, all timed inside the task)
        start = time.perf_counter()
        # max_calls=1: the worker exits after its task, so the next stage task pays its own imports
        task = ray.remote(num_cpus=cpus, max_calls=1)(_encode_in_task).remote(str(model), table.column("text"),
                                                                               args.batch_size)
        load, encode, vectors["local stage task"] = ray.get(task)
        report("local stage task", time.perf_counter() - start - encode, encode,
               "  ('load' here: the task's start, imports and model load)")

        def sharded(name, run):
            start = time.perf_counter()
            out = run()
            wall = time.perf_counter() - start
            vectors[name] = out.embeddings()
            actors = int(out.phases()["actors"])
            encode = out.shard_seconds / actors
            report(name, wall - encode, encode, f"  ({out.executor}: {out.total_shards} shards, at most "
                   f"{args.shard_rows} rows; 'load' here is the wall time beyond the shard time: the start, the model "
                   "load and waits)")
            print("    where the wall time went (s): " + ", ".join(f"{k} {v:.2f}" for k, v in out.phases().items()),
                  flush=True)

        sharded("sharded, as a study runs it", lambda: _sharded_as_the_stage(model, table, args, cpus, 0.0,
                                                                             work / "cache-stage"))
        for actors in (int(a) for a in str(args.actors).split(",")):
            sharded(f"ray data, {actors} x {max(1, int(cpus / actors))} threads",
                    partial(_encode_with_pool, model, table, args, actors, cpus, 0.0, work / f"cache-{actors}"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        ray.shutdown()
    for name in vectors:
        if name != "single process":
            cos = (vectors[name] * vectors["single process"]).sum(axis=1)
            print(f"agreement with the single process: {name} min cosine {cos.min():.6f}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    for name in (n for n in rates if n.startswith(("ray data", "sharded"))):
        print(f"{name} / single process {rates[name] / rates['single process']:.2f}x, / local stage task "
              f"{rates[name] / rates['local stage task']:.2f}x, / sentence-transformers "
              f"{rates[name] / rates['sentence-transformers']:.2f}x, from the folder (goal: >= 1.0)")


def encoding_path(args) -> None:
    """One stage path alone, for whole-process timings paired against the other: a Ray cluster
    and Ray Data's first dataset started, the model saved, then ``--path`` timed and printed."""
    import os

    import ray
    import ray.data

    from scaling.eval.sharded_encoding import ShardedEncodingConfig

    table, _ = encoding_texts(args.n, args.data_dir)
    work = Path(tempfile.mkdtemp(prefix="eval-scale-path-", dir=args.dir))
    cpus = os.cpu_count() or 1
    try:
        model = _saved_e5(work, args.max_length)
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        ray.data.range(2).materialize()
        start = time.perf_counter()
        if args.path == "local-task":
            task = ray.remote(num_cpus=cpus, num_gpus=args.gpus, max_calls=1)(_encode_in_task).remote(
                str(model), table.column("text"), args.batch_size, "cuda" if args.gpus else "cpu")
            ray.get(task)
            how = "local stage task"
        elif args.path == "sharded":
            how = _sharded_as_the_stage(model, table, args, cpus, args.gpus, work / "cache").executor
        else:
            actors = args.actors or ShardedEncodingConfig.for_resources(cpus, args.gpus).actors
            how = _encode_with_pool(model, table, args, actors, cpus, args.gpus, work / "cache").executor
        print(f"{args.path} ({how}, {args.gpus:g} GPUs): {len(table) / (time.perf_counter() - start):.1f} texts/s")
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def _saved_e5(work: Path, max_length: int) -> Path:
    """multilingual-e5-small saved in ``work/model`` as training leaves a model."""
    from scaling.models.encoder import DualEncoder, EncoderConfig
    from scaling.models.families import family_for

    config = EncoderConfig(max_length=max_length)
    return family_for(config.model).save(DualEncoder.from_config(config), work / "model")


def _encode_with_pool(model: Path, table, args, actors: int, cpus: float, gpus: float, cache: Path,
                      executor: str = "ray-data"):
    """Sharded encoding of ``table`` in this process's Ray job: by default the Ray Data pool
    (``actors`` sharing the CPUs and GPUs), as the stage's unreserved driver runs it."""
    from scaling.eval.embeddings import folder_fingerprint
    from scaling.eval.sharded_encoding import ShardedEncodingConfig, encode_sharded
    from scaling.models.encoder import DualEncoder

    pool = ShardedEncodingConfig(actors=actors, cpus_per_actor=cpus / actors, gpus_per_actor=gpus / actors,
                                 batch_size=args.batch_size, shard_rows=args.shard_rows, executor=executor)
    return encode_sharded(str(model), table, "passage", model_key=folder_fingerprint(model),
                          encoder_config=DualEncoder.saved_config(model)[0], config=pool, cache_dir=cache)


def _sharded_as_the_stage(model: Path, table, args, cpus: float, gpus: float, cache: Path):
    """Sharded encoding with the pool a study's stage sizes for this reservation: a pool of one
    encodes inside a Ray task holding the reservation (the stage task); a bigger pool runs from
    here, as from the stage's unreserved driver."""
    import ray

    from scaling.eval.sharded_encoding import ShardedEncodingConfig

    config = ShardedEncodingConfig.for_resources(cpus, gpus)
    if not config.in_process:
        return _encode_with_pool(model, table, args, config.actors, cpus, gpus, cache)
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_calls=1)(_encode_with_pool)  # a fresh worker, as above
    return ray.get(task.remote(model, table, args, 1, cpus, gpus, cache, "auto"))


def _encode_in_task(model: str, texts, batch_size: int, device: str = "cpu"):
    """(load seconds, encode seconds, vectors) of the local stage path: in this process, or inside a Ray task."""
    start = time.perf_counter()
    from scaling.models.encoder import DualEncoder

    encoder = DualEncoder.load(model)
    load = time.perf_counter() - start
    start = time.perf_counter()
    vectors = encoder.encode(texts.to_pylist(), "passage", batch_size=batch_size, device=device)
    return load, time.perf_counter() - start, vectors


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("ranking", help="peak memory and time of streaming exact ranks vs pool size")
    r.add_argument("--queries", type=int, default=10_000)
    r.add_argument("--sizes", default="100000,1000000,4000000", help="pool sizes, comma-separated, smallest first")
    r.add_argument("--memory-mb", type=int, default=256)
    r.add_argument("--spread", action="store_true", help="relevant candidates spread over every chunk")
    r.add_argument("--dir", default=None, help="where the temporary shards go (default: the system's temp dir)")
    c = sub.add_parser("_rank-child")
    c.add_argument("pool")
    c.add_argument("--memory-mb", type=int, default=256)
    c.add_argument("--spread", action="store_true")
    s = sub.add_parser("sib-200", help="the SIB-200 merged pool with offline multilingual-e5-small")
    s.add_argument("--languages", default=None, help="FLORES codes, comma-separated (default: all 205)")
    s.add_argument("--data-dir", default=None, help="default: SCALING_DATA_DIR")
    s.add_argument("--memory-mb", type=int, default=256)
    s.add_argument("--no-cache", action="store_true", help="encode again even if cached embeddings exist")
    s.add_argument("--random-embeddings", action="store_true", help="no encoder: time loading, ranks and metrics")
    e = sub.add_parser("encoding", help="Ray Data actor pool vs single process vs sentence-transformers")
    e.add_argument("--n", type=int, default=20_000)
    e.add_argument("--actors", default="1,2", help="actor counts to run, comma-separated (threads: CPUs / actors)")
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--max-length", type=int, default=128)
    e.add_argument("--shard-rows", type=int, default=2048)
    e.add_argument("--data-dir", default=None, help="default: SCALING_DATA_DIR")
    e.add_argument("--dir", default=None, help="where the temporary shards go (default: the system's temp dir)")
    o = sub.add_parser("encoding-path", help="one evaluation-stage encoding path alone (pair two with a timer)")
    o.add_argument("--path", choices=("local-task", "sharded", "ray-data"), required=True,
                   help="sharded: as a study sizes the pool (on CPUs, one, in the stage task); ray-data: the Ray Data pool")
    o.add_argument("--actors", type=int, default=None, help="ray-data actors (default: as a study sizes the pool)")
    o.add_argument("--gpus", type=float, default=0.0, help="the evaluation's GPUs (the pool: one actor per GPU)")
    o.add_argument("--n", type=int, default=8_000)
    o.add_argument("--batch-size", type=int, default=64)
    o.add_argument("--max-length", type=int, default=128)
    o.add_argument("--shard-rows", type=int, default=2048)
    o.add_argument("--data-dir", default=None, help="default: SCALING_DATA_DIR")
    o.add_argument("--dir", default=None, help="where the temporary files go (default: the system's temp dir)")
    args = p.parse_args()
    {"ranking": ranking, "_rank-child": rank_child, "sib-200": sib200, "encoding": encoding,
     "encoding-path": encoding_path}[args.command](args)


if __name__ == "__main__":
    main()
