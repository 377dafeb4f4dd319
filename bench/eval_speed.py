"""Evaluation speed from cached embeddings, and its memory bound on a one-million-candidate pool.

1. All XQuAD-R settings and metrics from cached embeddings (ours), against a straightforward NumPy
   version that materialises the full score matrix and ranks per pair with argsort.
2. Exact top-k search: torch against faiss (IndexFlatIP) on the same embeddings.
3. A synthetic pool of 1,000,000 candidates: peak memory of the rank computation as the chunk
   budget changes (memory follows the chunk, not pool x queries).

    SCALING_DATA_DIR=../shared/data python bench/eval_speed.py [--skip-naive] [--skip-million]
"""

import argparse
import subprocess
import sys
import time

import numpy as np


def xquad_r(args) -> None:
    from scaling.data import load_benchmark
    from scaling.eval.embeddings import embed_benchmark
    from scaling.eval.ranks import compute_ranks
    from scaling.eval.search import search_topk
    from scaling.eval.settings import evaluate_settings
    from scaling.models.encoder import DualEncoder, EncoderConfig

    bench = load_benchmark("xquad-r").single()
    encoder = DualEncoder.from_config(EncoderConfig())
    emb = embed_benchmark(encoder, bench)
    print(f"XQuAD-R embeddings: {'cached' if emb.cached else 'encoded'} in {emb.seconds:.1f} s "
          f"({len(bench.queries)} queries, {len(bench.candidates)} candidates)")
    start = time.perf_counter()
    table = compute_ranks(bench, emb.queries, emb.candidates)
    ranks_s = time.perf_counter() - start
    res = evaluate_settings(table, bench.name)
    total = time.perf_counter() - start
    print(f"ours: exact ranks {ranks_s:.2f} s, all settings and metrics {total:.2f} s "
          f"({len(res.records)} records)")
    if not args.skip_naive:
        start = time.perf_counter()
        naive_map = naive_settings(bench, emb.queries, emb.candidates)
        naive_s = time.perf_counter() - start
        ours_map = {r.setting: r.value for r in res.records if r.metric == "map" and r.query_lang == "*"}
        print(f"naive NumPy (full matrix, argsort per pair, mAP only): {naive_s:.1f} s; "
              f"mAP ours {ours_map} vs naive {naive_map}")
    for backend in ("torch", "faiss"):
        start = time.perf_counter()
        search_topk(emb.queries, emb.candidates, 100, backend=backend)
        print(f"top-100 search, {backend}: {time.perf_counter() - start:.2f} s")


def naive_settings(bench, q, c) -> dict:
    """The straightforward version: full score matrix, one argsort per (query, pair)."""
    scores = q @ c.T
    c_lang = np.array(bench.candidates.column("lang").to_pylist())
    c_ids = np.array(bench.candidates.column("id").to_pylist())
    q_lang = np.array(bench.queries.column("lang").to_pylist())
    q_ids = bench.queries.column("id").to_pylist()
    langs = sorted(set(c_lang))
    def ap(row, pool_mask, relevant):
        order = np.argsort(-row[pool_mask], kind="stable")
        ranked = c_ids[pool_mask][order]
        hits = np.isin(ranked, list(relevant))
        pos = np.nonzero(hits)[0] + 1
        return float(np.mean(np.arange(1, len(pos) + 1) / pos)) if len(pos) else None
    out = {}
    for setting in ("mono", "cross", "multi"):
        pair_means = []
        for x in langs:
            rows = np.nonzero(q_lang == x)[0]
            ys = [None] if setting == "multi" else ([x] if setting == "mono" else [y for y in langs if y != x])
            for y in ys:
                mask = np.ones(len(c_ids), bool) if y is None else (c_lang == y)
                vals = [ap(scores[i], mask, bench.relevance[q_ids[i]]) for i in rows]
                vals = [v for v in vals if v is not None]
                pair_means.append(np.mean(vals))
        out[setting] = round(float(np.mean(pair_means)), 4)
    return out


MILLION = """
import resource, sys, time, numpy as np
from scaling.data import RetrievalBenchmark
from scaling.eval.ranks import compute_ranks
n_c, n_q, d, mb = 1_000_000, 2_000, 384, int(sys.argv[1])
rng = np.random.default_rng(0)
cands = [{"id": f"c{i}", "lang": ("en", "de", "fr", "zh")[i % 4], "text": "t"} for i in range(n_c)]
queries = [{"id": f"q{i}", "lang": "en", "text": "q", "group": str(i)} for i in range(n_q)]
rel = {f"q{i}": {f"c{(i * 4 + k) % n_c}": 1 for k in range(4)} for i in range(n_q)}
bench = RetrievalBenchmark.from_rows("million", queries, cands, rel)
c = rng.standard_normal((n_c, d), dtype=np.float32); q = rng.standard_normal((n_q, d), dtype=np.float32)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
compute_ranks(bench, q, c, memory_mb=mb)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"memory budget {mb:>5} MB: {time.perf_counter() - start:6.1f} s, peak RSS {peak:,.0f} MB "
      f"(before ranking {base:,.0f} MB; the full score matrix would be {n_q * n_c * 4 / 2**20:,.0f} MB)")
"""


def million() -> None:
    print("1,000,000 candidates x 2,000 queries, dimension 384 (one process per budget):")
    for mb in ("64", "256", "1024"):
        subprocess.run([sys.executable, "-c", MILLION, mb], check=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument("--skip-million", action="store_true")
    args = p.parse_args()
    xquad_r(args)
    if not args.skip_million:
        million()


if __name__ == "__main__":
    main()
