"""``jobs/evaluate.py``: evaluate one model on retrieval benchmarks and write tidy Parquet."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from scaling.data import DataError, load_benchmark
from scaling.eval.embeddings import model_fingerprint
from scaling.eval.evaluate import EvalConfig, EvalResult, evaluate_suite, summary_rows, write_records
from scaling.eval.mteb_tasks import check_mteb_sources, evaluate_mteb, is_mteb_source
from scaling.eval.ranks import RANK_BACKENDS
from scaling.files import write_atomic
from scaling.models.encoder import DualEncoder, EncoderConfig
from scaling.models.offline_e5 import OfflineModelMissing
from scaling.provenance import provenance


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="jobs/evaluate.py", description=__doc__.split("\n")[0])
    p.add_argument("--model", default=EncoderConfig.model,
                   help="hub name or local path (default: the packaged offline multilingual-e5-small)")
    p.add_argument("--benchmark", action="append", required=True,
                   help="xquad-r, mlqa-r, xquad, tatoeba, sib-200[:test], parallel-qa[:eval], a folder, "
                        "or mteb:<task>[:<split>][?languages=..]; repeatable")
    p.add_argument("--data-dir", help="folder with the datasets (default: $SCALING_DATA_DIR)")
    p.add_argument("--languages", help="comma-separated subset of benchmark languages")
    p.add_argument("--lang", help="language of a BEIR folder")
    p.add_argument("--out", required=True, help="output folder for metrics.parquet and manifest.json")
    p.add_argument("--pooling", default=EncoderConfig.pooling, choices=("cls", "mean", "last"))
    p.add_argument("--max-length", type=int, default=EncoderConfig.max_length)
    p.add_argument("--num-layers", type=int, help="keep only the first k layers of the model")
    p.add_argument("--query-prefix", default=EncoderConfig.query_prefix)
    p.add_argument("--passage-prefix", default=EncoderConfig.passage_prefix)
    p.add_argument("--batch-size", type=int, default=EvalConfig.batch_size)
    p.add_argument("--ks", type=_ints, default=EvalConfig.ks, help="cut-offs for recall/nDCG/MRR (default 1,10,100)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--memory-mb", type=int, default=EvalConfig.memory_mb,
                   help="ranking budget; pools whose embeddings exceed it are ranked from shards")
    p.add_argument("--backend", default=EvalConfig.backend, choices=RANK_BACKENDS, help="what computes the scores")
    p.add_argument("--no-cache", action="store_true", help="re-encode instead of reusing cached embeddings")
    return p.parse_args(argv)


def check_output_folder(out: Path) -> None:
    """Before any work: ``--out`` must be (or become) a folder this process can write."""
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"--out {out}: {parent} is a file, not a folder; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"--out {out} is not writable ({exc}); choose a folder you can write") from None


def run(args: argparse.Namespace) -> EvalResult:
    check_output_folder(Path(args.out))
    mteb_specs = check_mteb_sources(args.benchmark)  # task names, before the model loads
    if (Path(args.model) / "encoder.json").is_file():  # a checkpoint of ours: its own pooling and prefixes
        encoder = DualEncoder.load(args.model)
    else:
        encoder = DualEncoder.from_config(EncoderConfig(
            model=args.model, pooling=args.pooling, max_length=args.max_length, num_layers=args.num_layers,
            query_prefix=args.query_prefix, passage_prefix=args.passage_prefix))
    config = EvalConfig(ks=args.ks, batch_size=args.batch_size, device=args.device, use_cache=not args.no_cache,
                        memory_mb=args.memory_mb, backend=args.backend)
    languages = [v.strip() for v in args.languages.split(",")] if args.languages else None
    result = EvalResult()
    model_key = model_fingerprint(encoder)  # weights are fixed for the whole run: hash them once
    suites = []
    start = time.perf_counter()
    for source in args.benchmark:
        if is_mteb_source(source):
            evaluate_mteb(encoder, source, config, result, model_key)
            continue
        suite = load_benchmark(source, data_dir=args.data_dir, languages=languages, lang=args.lang)
        evaluate_suite(encoder, suite, config, result, model_key)
        suites.append(suite)
    out = Path(args.out)
    write_records(result, out / "metrics.parquet")
    manifest = {"command": sys.argv, "model": args.model, "encoder": encoder.describe(), "evaluation": asdict(config),
                "benchmarks": args.benchmark, "data_dir": args.data_dir or os.environ.get("SCALING_DATA_DIR"),
                "languages": languages, "timings_s": result.timings, "embeddings_cached": result.cached,
                "wall_s": time.perf_counter() - start, "notes": result.notes, **provenance()}
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=1, default=str))

    print(f"{'benchmark':<18}{'mono mAP':>10}{'cross mAP':>11}{'multi mAP':>11}{'rank dist':>11}")
    for row in summary_rows(result, [b.name for suite in suites if suite.rule.pivot is None for b in suite]):
        print(f"{row[0]:<18}{row[1]:>10}{row[2]:>11}{row[3]:>11}{row[4]:>11}")
    for suite in (s for s in suites if s.rule.pivot is not None):  # per direction to and from the pivot language
        pivot, (setting, metric) = suite.rule.pivot, (suite.rule.settings[0], next(iter(suite.rule.metrics.values())))
        to_pivot, from_pivot = (result.value(suite.name, setting, metric, "*", pivot),
                                result.value(suite.name, setting, metric, pivot, "*"))
        print(f"{suite.name} {metric}: xx->{pivot} {to_pivot:.3f}, {pivot}->xx {from_pivot:.3f}")
    for spec in mteb_specs:
        for split in spec.splits:
            name = spec.benchmark(split)
            cells = [f"{s} {r.value:.3f}" for s in ("mono", "cross") for r in result.records
                     if (r.benchmark, r.setting, r.query_lang, r.metric) == (name, s, "*", "main_score")]
            print(f"{name} main_score ({spec.metadata.main_score}): {', '.join(cells)}")
    for key, seconds in result.timings.items():
        cached = key.endswith("/encode") and result.cached.get(key.rsplit("/", 1)[0])
        print(f"time {key}: {seconds:.1f} s" + (" (cached embeddings)" if cached else ""))
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {out / 'metrics.parquet'} ({len(result.records)} records) and {out / 'manifest.json'}")
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except (DataError, OfflineModelMissing, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
