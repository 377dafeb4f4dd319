"""Build trial plans on the driver: every source is loaded once, every check runs before Ray.

One ``PlanBuilder`` serves a whole study: a corpus is loaded and written once per distinct data
setting, a benchmark once per source (for the zero-shot check and for evaluation alike), and
each trial's plan points at those files. Everything that can be wrong with a trial (the sampler
against its corpus, the model name, the batch split over workers) fails here, naming the
setting, before any worker starts.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Sequence

from scaling.data import ParallelCorpus, check_overlap, drop_overlaps, load_benchmark, load_corpus
from scaling.data.corpus import columns_fingerprint
from scaling.data.mixing import check_source_languages, mix_sources
from scaling.data.overlap import check_zero_shot_languages
from scaling.data.suites import BenchmarkSuite
from scaling.eval.evaluate import EvalConfig
from scaling.eval.mteb_tasks import LOCAL_TASKS, MtebSource, is_mteb_source
from scaling.models.families import family_for
from scaling.plan.files import write_corpus, write_suite
from scaling.plan.plan import PLAN_FOLDER, DataFile, SuiteFile, TrialPlan, TrialResources
from scaling.plugins import plugin_of
from scaling.samplers import get_strategy, make_sampler
from scaling.store import ResultStore
from scaling.training.config import TrainConfig


def resolve_data_dir(value: str | None) -> str | None:
    """The data directory as an absolute path (workers may start elsewhere), or None."""
    value = value or os.environ.get("SCALING_DATA_DIR")
    return str(Path(value).expanduser().resolve()) if value else None


def composition(corpus: ParallelCorpus) -> dict[str, dict[str, int]]:
    """Rows per source and language (a mix labels rows by their entry's source string)."""
    out: dict[str, dict[str, int]] = {}
    for source, lang in zip(corpus.table.column("source").to_pylist(), corpus.table.column("lang").to_pylist()):
        out.setdefault(source, {})[lang] = out.get(source, {}).get(lang, 0) + 1
    return {s: dict(sorted(v.items())) for s, v in sorted(out.items())}


def _checked_key(config: TrainConfig) -> str:
    """What ``check`` depends on: every setting but the run's name and folder."""
    return json.dumps(replace(config, run=replace(config.run, name="", storage_path="")).to_dict(), sort_keys=True,
                      default=str)


def _slug(source: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in source)[:40]


class PlanBuilder:
    """Plans for trials sharing data: ``overlap_with`` benchmarks are removed from training data
    (``zero_shot="drop"``) or refused (``"refuse"``); ``evaluate_on`` benchmarks go into plans."""

    def __init__(self, *, data_dir: str | None = None, overlap_with: Sequence[str] = (), zero_shot: str = "drop",
                 evaluate_on: Sequence[str] = (), eval_config: EvalConfig = EvalConfig(),
                 shared: ResultStore | None = None, zero_shot_languages: Sequence[str] = ()) -> None:
        if zero_shot not in ("drop", "refuse"):
            raise ValueError(f"zero_shot must be 'drop' or 'refuse', not {zero_shot!r}")
        self.data_dir = resolve_data_dir(data_dir)
        # mteb tasks load their data inside mteb: no zero-shot check against them (README, Benchmarks)
        self.overlap_with, self.zero_shot = tuple(s for s in overlap_with if not is_mteb_source(s)), zero_shot
        self.zero_shot_languages = tuple(zero_shot_languages)  # evaluation languages no trial may train on
        self.evaluate_on, self.eval_config = tuple(evaluate_on), eval_config
        self.shared = shared  # where files shared by trials go (a study's folder); None: each plan's own
        self._suites: dict[str, BenchmarkSuite] = {}
        self._corpora: dict[str, tuple[ParallelCorpus, dict[str, int]]] = {}
        self._written: dict[str, Any] = {}
        self._checked: set[str] = set()  # configurations that passed ``check`` (wherever their run folder is)

    # ---- sources, each loaded once --------------------------------------------------------
    def suite(self, source: str) -> BenchmarkSuite:
        if source not in self._suites:
            self._suites[source] = load_benchmark(source, data_dir=self.data_dir)
        return self._suites[source]

    def benchmark_hashes(self, source: str) -> dict[str, str]:
        """Benchmark name -> content hash (an mteb task's: its dataset revision)."""
        if is_mteb_source(source):
            return {name: info["content_hash"] for name, info in MtebSource.parse(source).describe().items()}
        return {b.name: b.fingerprint() for b in self.suite(source)}

    def training_corpus(self, cfg: TrainConfig) -> tuple[ParallelCorpus, dict[str, int]]:
        """The corpus of ``data.train`` and the groups dropped per overlapping benchmark."""
        key = json.dumps([asdict(s) for s in cfg.data.sources] + [cfg.data.passage, cfg.data.exclude_overlap_with])
        if key not in self._corpora:
            corpus = mix_sources(cfg.data.sources, data_dir=self.data_dir, passage=cfg.data.passage, load=load_corpus)
            dropped: dict[str, int] = {}
            for source in dict.fromkeys(self.overlap_with + tuple(cfg.data.exclude_overlap_with)):
                for bench in self.suite(source):
                    report = check_overlap(corpus, bench)
                    if report.group_ids and self.zero_shot == "refuse":
                        raise ValueError(f"zero_shot: refuse, but training data overlaps the benchmarks: "
                                         f"{len(report.group_ids)} groups of {list(cfg.data.labels)} are in "
                                         f"{bench.name}; set zero_shot: drop or change the data")
                    corpus, n = drop_overlaps(corpus, report)
                    dropped[bench.name] = dropped.get(bench.name, 0) + n
            self._corpora[key] = (corpus, dropped)
        return self._corpora[key]

    def heldout_corpus(self, cfg: TrainConfig) -> ParallelCorpus | None:
        if not cfg.data.heldout:
            return None
        key = json.dumps(["heldout", cfg.data.heldout, cfg.data.passage])
        if key not in self._corpora:
            self._corpora[key] = (load_corpus(cfg.data.heldout, data_dir=self.data_dir, passage=cfg.data.passage), {})
        return self._corpora[key][0]

    # ---- files ----------------------------------------------------------------------------
    def _data_file(self, corpus: ParallelCorpus, sources: Sequence[str], dropped: dict[str, int],
                   own: ResultStore, name: str) -> DataFile:
        # the content hash leaves out the source column, which a mix's weights are keyed by: name the file by both
        sources_digest = columns_fingerprint((corpus.table, ("source",)))[:8]
        shared_rel = f"data/corpus-{corpus.fingerprint()}-{sources_digest}.parquet"
        store, rel = (self.shared, shared_rel) if self.shared else (own, name)
        if store.uri(rel) not in self._written:
            write_corpus(store, rel, corpus)
            self._written[store.uri(rel)] = True
        return DataFile(store.uri(rel), corpus.fingerprint(), len(corpus), corpus.num_groups, tuple(corpus.languages),
                        tuple(sources), dict(dropped), composition(corpus))

    def _suite_file(self, source: str, own: ResultStore) -> SuiteFile:
        if is_mteb_source(source):  # mteb loads its own data at evaluation: nothing to write
            return SuiteFile(source, source, "", MtebSource.parse(source).describe())
        suite = self.suite(source)
        members = suite.describe()
        digest = hashlib.blake2b(json.dumps(members, sort_keys=True).encode(), digest_size=8).hexdigest()
        store = self.shared or own
        rel = f"data/benchmark-{_slug(source)}-{digest}"
        if store.uri(rel) not in self._written:
            write_suite(store, rel, suite)
            self._written[store.uri(rel)] = True
        return SuiteFile(source, suite.name, store.uri(rel), members)

    def _mteb_plugins(self) -> list:
        """Modules of registered local mteb tasks, so the evaluation's process registers them too."""
        tasks = [MtebSource.parse(s).task for s in self.evaluate_on if is_mteb_source(s)]
        return [plugin_of(LOCAL_TASKS[t]) for t in tasks if t in LOCAL_TASKS]

    # ---- plans ----------------------------------------------------------------------------
    def check(self, config: TrainConfig) -> TrainConfig:
        """Every check of ``config`` against its data and model that writes nothing; returns it
        with the data directory resolved."""
        cfg = replace(config, data=replace(config.data, data_dir=self.data_dir))
        corpus, _ = self.training_corpus(cfg)
        check_source_languages(cfg.data.sources, corpus, cfg.data.languages)
        check_zero_shot_languages(cfg.data.languages or corpus.languages, self.zero_shot_languages)
        make_sampler(cfg.sampler, corpus, cfg.data.languages, cfg.data.source_weights())  # raises on any bad sampler setting
        if cfg.sampler.batch_size % cfg.run.num_workers:
            raise ValueError(f"sampler.batch_size {cfg.sampler.batch_size} must be divisible by run.num_workers "
                             f"{cfg.run.num_workers} (each worker takes an equal slice of the global batch)")
        family_for(cfg.encoder.model).check(cfg.encoder)
        self.heldout_corpus(cfg)
        for source in self.evaluate_on:
            MtebSource.parse(source) if is_mteb_source(source) else self.suite(source)
        self._checked.add(_checked_key(cfg))
        return cfg

    def plan(self, config: TrainConfig, *, run_location: str, scratch: Path, trial_id: str = "",
             axes: dict[str, Any] | None = None, resources: TrialResources | None = None) -> TrialPlan:
        """Check ``config`` against its data and write its plan under ``run_location/plan``.

        ``scratch``: a local folder for what the model family materialises (a tiny model's
        initial weights); ``resources`` default to the configuration's run section.
        """
        cfg = replace(config, data=replace(config.data, data_dir=self.data_dir))
        if _checked_key(cfg) not in self._checked:  # a study has checked every trial before it plans them
            self.check(config)
        corpus, dropped = self.training_corpus(cfg)
        family = family_for(cfg.encoder.model)
        texts = corpus.table.column("query").to_pylist() + corpus.table.column("passage").to_pylist()
        encoder = family.materialise(cfg.encoder, texts=texts, seed=cfg.sampler.seed, folder=scratch)
        if encoder.lora is not None:  # before Ray: adapters that would wrap nothing
            from scaling.models.lora import check_targets_of

            check_targets_of(family_for(encoder.model).weights_path(encoder), encoder.lora, cfg.encoder.model,
                             trust_remote_code=encoder.trust_remote_code)
        if cfg.run.sharding == "fsdp":  # before Ray: a model whose blocks FSDP cannot find
            from scaling.training.sharding import check_shardable

            check_shardable(family_for(encoder.model).weights_path(encoder), cfg.encoder.model,
                            trust_remote_code=encoder.trust_remote_code)
        cfg = replace(cfg, encoder=encoder)
        own = ResultStore(run_location.rstrip("/") + "/" + PLAN_FOLDER)
        heldout = self.heldout_corpus(cfg)
        plan = TrialPlan(
            trial_id=trial_id, axes=dict(axes or {}), config=cfg,
            corpus=self._data_file(corpus, cfg.data.labels, dropped, own, "corpus.parquet"),
            heldout=self._data_file(heldout, [cfg.data.heldout], {}, own, "heldout.parquet") if heldout else None,
            benchmarks=tuple(self._suite_file(s, own) for s in self.evaluate_on), eval=self.eval_config,
            resources=resources or TrialResources(cfg.run.num_workers, cfg.run.cpus_per_worker, cfg.run.gpus_per_worker),
            location=own.location,
            plugins=tuple(p for p in (plugin_of(get_strategy(cfg.sampler.strategy).sampler), plugin_of(family),
                                      *self._mteb_plugins()) if p))
        plan.write()
        return plan
