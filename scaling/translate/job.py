"""The translation job: plan, translate the missing shards, assemble the corpus, write the manifest.

Everything that can be wrong with the request (an unsupported language for the model or the
language identifier, a missing extra, a target already in the corpus, an output folder of another
plan) is found in ``prepare``, before any model is loaded or Ray starts. Shards are written one
at a time, atomically, so a rerun after a crash translates only the shards that are missing; the
corpus and then the manifest are written last.
"""

from __future__ import annotations

import collections
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from scaling.data.corpus import CORPUS_SCHEMA, ParallelCorpus, columns_fingerprint
from scaling.data.sources import load_corpus
from scaling.data.tabular import write_parquet_corpus
from scaling.files import write_atomic
from scaling.provenance import provenance
from scaling.translate.codes import ModelCodes
from scaling.translate.config import TranslateConfig
from scaling.translate.filters import KEPT, REASONS, FilterSettings, OutputFilter
from scaling.translate.model import ModelSettings, Translator, load_codes
from scaling.translate.shards import read_shard, shard_groups, shard_name, write_shard

CORPUS_FILE = "corpus.parquet"
MANIFEST_FILE = "manifest.json"
PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class Plan:
    config: TranslateConfig
    corpus: ParallelCorpus  # the input rows of the groups that are translated (all languages)
    shards: tuple[tuple[str, ...], ...]  # group ids per shard
    source_rows: pa.Table  # the source-language rows, in corpus order
    code_mapping: dict[str, str]  # canonical -> model code, source and targets
    codes: ModelCodes
    filters: dict  # filter settings as applied (identifier, unchecked languages)
    record: dict  # what must match between a run and its resumption
    skipped_groups: int  # groups without a source-language row
    left_out_groups: int  # groups beyond max_groups

    @property
    def out(self) -> Path:
        return Path(self.config.out)

    def hash(self) -> str:
        return hashlib.blake2b(json.dumps(self.record, sort_keys=True).encode(), digest_size=16).hexdigest()


def prepare(cfg: TranslateConfig, *, codes: ModelCodes | None = None) -> Plan:
    """Check the request and plan the shards; loads the corpus and the tokenizer, never the model."""
    codes = codes or load_codes(cfg.model)
    mapping = codes.resolve([cfg.source_language], setting="source_language")
    mapping.update(codes.resolve(list(cfg.target_languages), setting="target_languages"))
    filt = OutputFilter(cfg.filters, cfg.target_languages)
    corpus = load_corpus(cfg.source, data_dir=cfg.data_dir)
    table = corpus.table
    is_src = pc.equal(table.column("lang"), cfg.source_language)
    source_rows = table.filter(is_src)
    if len(source_rows) == 0:
        raise ValueError(f"setting source_language: {cfg.source!r} has no rows in {cfg.source_language!r} "
                         f"(it has {list(corpus.languages)})")
    all_groups = len(set(table.column("group_id").to_pylist()))
    with_source = len(source_rows)
    if cfg.max_groups is not None:
        source_rows = source_rows.slice(0, cfg.max_groups)
    group_ids = source_rows.column("group_id").to_pylist()
    kept = ParallelCorpus(table.filter(pc.is_in(table.column("group_id"), value_set=pa.array(group_ids, pa.string()))))
    if cfg.include_source:
        clash = sorted(set(cfg.target_languages) & set(kept.languages))
        if clash:
            raise ValueError(f"setting target_languages: {clash} already in {cfg.source!r}; drop them from the targets "
                             "or set include_source=false (then the output holds only the translations)")
    record = {
        "source": cfg.source, "source_fingerprint": columns_fingerprint((source_rows, ("group_id", "query", "passage"))),
        "source_language": cfg.source_language, "target_languages": list(cfg.target_languages),
        "shard_size": cfg.shard_size, "max_groups": cfg.max_groups, "seed": cfg.seed,
        "model": {k: v for k, v in asdict(cfg.model).items() if k != "device"}, "style": codes.style,
        "code_mapping": mapping, "filters": asdict(cfg.filters),
    }
    return Plan(cfg, kept, tuple(tuple(s) for s in shard_groups(group_ids, cfg.shard_size)), source_rows, mapping,
                codes, filt.describe(), record, all_groups - with_source, with_source - len(group_ids))


# ---- one shard ----------------------------------------------------------------------------
def translate_rows(rows: pa.Table, translator: Translator, filt: OutputFilter, src: str, targets: Sequence[str],
                   model_name: str) -> list[dict]:
    """Translated rows (every target, kept or not, with ``status``) for source-language ``rows``."""
    queries, passages = rows.column("query").to_pylist(), rows.column("passage").to_pylist()
    texts = list(dict.fromkeys(queries + passages))  # each distinct text once (bitext: query == passage)
    out = []
    for tgt in targets:
        translated = dict(zip(texts, translator.translate(texts, src, tgt)))
        for r, q, p in zip(rows.to_pylist(), queries, passages):
            tq, tp = translated[q], translated[p]
            status = filt.check([(q, tq), (p, tp)], tgt)
            out.append({"group_id": r["group_id"], "lang": tgt, "query": tq, "passage": tp,
                        "source": f"{r['source']}>mt:{model_name}", "title": r["title"], "status": status})
    return out


def _shard_meta(plan_hash: str, index: int, translator: Translator, fingerprint: str, sentences: int,
                seconds: float) -> dict:
    return {"plan": plan_hash, "shard": index, "model_fingerprint": fingerprint, "model_revision": translator.revision,
            "dtype": translator.dtype, "device": translator.device, "sentences": sentences, "seconds": seconds,
            "truncated_inputs": translator.truncated}


class ShardWorker:
    """Translates shards with one loaded model: used in process, and as a Ray Data actor."""

    def __init__(self, model: dict, filters: dict, src: str, targets: Sequence[str], plan_hash: str,
                 seed: int = 0) -> None:
        self.seed = seed
        self.translator = Translator(ModelSettings(**model))
        self.filter = OutputFilter(FilterSettings(**filters), targets)
        self.src, self.targets, self.plan_hash = src, tuple(targets), plan_hash
        self.fingerprint = self.translator.fingerprint()

    def run(self, index: int, rows: pa.Table) -> tuple[list[dict], dict]:
        import torch

        # Decoding is greedy or beam search (no random choice); the seed still fixes torch's
        # generator per shard, so a shard does not depend on which worker or order it ran in.
        torch.manual_seed(self.seed + index)
        start, before = time.perf_counter(), self.translator.truncated
        out = translate_rows(rows, self.translator, self.filter, self.src, self.targets, self.translator.settings.name)
        distinct = len(set(rows.column("query").to_pylist() + rows.column("passage").to_pylist()))
        meta = _shard_meta(self.plan_hash, index, self.translator, self.fingerprint, distinct * len(self.targets),
                           time.perf_counter() - start)
        meta["truncated_inputs"] = self.translator.truncated - before
        return out, meta

    def __call__(self, batch: dict) -> dict:
        """Ray Data: a batch of shards (index, Arrow IPC bytes of their rows) -> their results."""
        results, metas = [], []
        for index, payload in zip(batch["shard"], batch["rows"]):
            rows = pa.ipc.open_stream(payload).read_all()
            out, meta = self.run(int(index), rows)
            results.append(json.dumps(out))
            metas.append(json.dumps(meta))
        return {"shard": batch["shard"], "rows": results, "meta": metas}


# ---- the job ------------------------------------------------------------------------------
def _check_plan_file(plan: Plan) -> None:
    path = plan.out / PLAN_FILE
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old != plan.record:
            diff = sorted(k for k in set(old) | set(plan.record) if old.get(k) != plan.record.get(k))
            raise ValueError(f"{plan.out} holds a translation run with other settings (differs in {diff}); "
                             "use a new output folder, or delete this one to start over")
    else:
        write_atomic(path, json.dumps(plan.record, indent=2, sort_keys=True))


def _shard_rows(plan: Plan, index: int) -> pa.Table:
    mask = pc.is_in(plan.source_rows.column("group_id"), value_set=pa.array(plan.shards[index], pa.string()))
    return plan.source_rows.filter(mask)


def pending_shards(plan: Plan) -> list[int]:
    """Shards whose file is absent; a present file of another plan is an error. Temporary files
    left by a crash while writing are removed."""
    for stale in (plan.out / "shards").glob(".shard-*.tmp"):
        stale.unlink()
    pending = []
    for i in range(len(plan.shards)):
        path = plan.out / "shards" / shard_name(i)
        if not path.is_file():
            pending.append(i)
            continue
        _, meta = read_shard(path)
        if meta.get("plan") != plan.hash():
            raise ValueError(f"{path} belongs to another plan; delete it (or the folder) and rerun")
    return pending


def _run_local(plan: Plan, pending: list[int], worker_factory: Callable[[], ShardWorker],
               log: Callable[[str], None]) -> None:
    worker = worker_factory()
    for i in pending:
        rows, meta = worker.run(i, _shard_rows(plan, i))
        write_shard(plan.out / "shards" / shard_name(i), rows, meta)
        log(f"shard {i + 1}/{len(plan.shards)}: {meta['sentences']} sentences in {meta['seconds']:.1f} s")


def _run_ray(plan: Plan, pending: list[int], log: Callable[[str], None]) -> None:
    import ray

    if not ray.is_initialized():
        ray.init()
    cfg = plan.config

    def payload(i: int) -> bytes:
        sink = pa.BufferOutputStream()
        rows = _shard_rows(plan, i)
        with pa.ipc.new_stream(sink, rows.schema) as writer:
            writer.write_table(rows)
        return sink.getvalue().to_pybytes()

    ds = ray.data.from_items([{"shard": i, "rows": payload(i)} for i in pending])
    ds = ds.map_batches(ShardWorker, batch_size=1, concurrency=cfg.run.actors, num_gpus=cfg.run.gpus_per_actor,
                        num_cpus=cfg.run.cpus_per_actor,
                        fn_constructor_kwargs={"model": asdict(cfg.model), "filters": asdict(cfg.filters),
                                               "src": cfg.source_language, "targets": list(cfg.target_languages),
                                               "plan_hash": plan.hash(), "seed": cfg.seed})
    for row in ds.iter_rows():  # streams: each shard is written as soon as its actor returns it
        meta = json.loads(row["meta"])
        write_shard(plan.out / "shards" / shard_name(int(row["shard"])), json.loads(row["rows"]), meta)
        log(f"shard {int(row['shard']) + 1}/{len(plan.shards)}: {meta['sentences']} sentences in {meta['seconds']:.1f} s")


def run(cfg: TranslateConfig, *, log: Callable[[str], None] = print) -> dict:
    """Translate what is missing, then write ``corpus.parquet`` and ``manifest.json``; the manifest."""
    started = time.perf_counter()
    plan = prepare(cfg)
    plan.out.mkdir(parents=True, exist_ok=True)
    _check_plan_file(plan)
    pending = pending_shards(plan)
    log(f"{len(plan.shards)} shards of {cfg.shard_size} groups, {len(pending)} to translate")
    if pending:
        if cfg.run.executor == "ray":
            _run_ray(plan, pending, log)
        else:
            _run_local(plan, pending, lambda: ShardWorker(asdict(cfg.model), asdict(cfg.filters), cfg.source_language,
                                                          cfg.target_languages, plan.hash(), cfg.seed), log)
    manifest = assemble(plan, translated_now=pending, seconds=time.perf_counter() - started)
    for lang, c in manifest["filters"]["counts"].items():
        dropped = ", ".join(f"{r} {c[r]}" for r in REASONS if c[r])
        log(f"{lang}: kept {c[KEPT]} of {c['translated']} rows" + (f" (dropped: {dropped})" if dropped else ""))
    return manifest


def assemble(plan: Plan, *, translated_now: Sequence[int] = (), seconds: float | None = None) -> dict:
    """Read every shard, write the corpus of kept rows, then the manifest (last, atomically)."""
    tables, metas = [], []
    for i in range(len(plan.shards)):
        table, meta = read_shard(plan.out / "shards" / shard_name(i))
        if meta.get("plan") != plan.hash():
            raise ValueError(f"{plan.out / 'shards' / shard_name(i)} belongs to another plan")
        tables.append(table)
        metas.append(meta)
    fingerprints = sorted({m["model_fingerprint"] for m in metas})
    if len(fingerprints) != 1:
        raise ValueError(f"the shards in {plan.out} were translated by different weights ({fingerprints}); pin "
                         "model.revision and model.dtype, delete the odd shards and rerun")
    shards = pa.concat_tables(tables)
    status = shards.column("status").to_pylist()
    langs = shards.column("lang").to_pylist()
    counts = {t: {"translated": 0, KEPT: 0, **{r: 0 for r in REASONS}} for t in plan.config.target_languages}
    for lang, s in zip(langs, status):
        counts[lang]["translated"] += 1
        counts[lang][s] += 1
    kept = shards.filter(pc.equal(shards.column("status"), KEPT)).drop_columns(["status"]).cast(CORPUS_SCHEMA)
    parts = ([plan.corpus.table] if plan.config.include_source else []) + [kept]
    corpus = ParallelCorpus.from_table(pa.concat_tables(parts), origin=str(plan.out / CORPUS_FILE))
    write_parquet_corpus(corpus, plan.out / CORPUS_FILE)
    sentences = sum(m["sentences"] for m in metas)
    busy = sum(m["seconds"] for m in metas)
    manifest = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {**asdict(plan.config.model), "style": plan.codes.style, "revision_resolved": metas[0]["model_revision"],
                  "fingerprint": fingerprints[0], "dtype_loaded": metas[0]["dtype"]},
        "source": {"source": plan.config.source, "fingerprint": plan.record["source_fingerprint"],
                   "language": plan.config.source_language, "groups": len(plan.source_rows),
                   "groups_without_source_language": plan.skipped_groups, "max_groups": plan.config.max_groups,
                   "groups_left_out_by_max_groups": plan.left_out_groups},
        "target_languages": list(plan.config.target_languages),
        "code_mapping": {lang: plan.codes.token(code) for lang, code in plan.code_mapping.items()},
        "filters": {**plan.filters, "counts": counts},
        "shards": {"count": len(plan.shards), "shard_size": plan.config.shard_size, "plan": plan.hash(),
                   "translated_in_this_run": list(translated_now),
                   "files": [{"file": f"shards/{shard_name(m['shard'])}", "groups": len(plan.shards[m["shard"]]),
                              "sentences": m["sentences"], "seconds": round(m["seconds"], 3),
                              "truncated_inputs": m["truncated_inputs"], "device": m["device"]} for m in metas]},
        "seed": plan.config.seed,
        "output": {"corpus": CORPUS_FILE, "rows": len(corpus), "groups": corpus.num_groups,
                   "languages": list(corpus.languages), "include_source": plan.config.include_source,
                   "fingerprint": corpus.fingerprint(),
                   "rows_per_language": dict(collections.Counter(corpus.table.column("lang").to_pylist())),
                   "train_config": {"data": {"train": [str((plan.out / CORPUS_FILE).resolve())]}}},
        "throughput": {"sentences": sentences, "translate_seconds": round(busy, 3),
                       "sentences_per_second": round(sentences / busy, 3) if busy else None,
                       "job_seconds": round(seconds, 3) if seconds is not None else None},
        "config": plan.config.to_dict(),
        "provenance": provenance(),
    }
    write_atomic(plan.out / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=True))
    return manifest
