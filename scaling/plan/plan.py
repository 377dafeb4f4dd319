"""One trial, resolved: its training configuration, data files, benchmarks, evaluation options
and resources. Written to ``<run folder>/plan/plan.json`` (beside Ray Train's checkpoints, so it
lives wherever the run does: a local disk or an object store); workers and evaluation read this
and nothing else, so every stage of a trial sees the same data and settings."""

from __future__ import annotations

import posixpath
from dataclasses import asdict, dataclass, field
from typing import Any

from scaling.data.corpus import ParallelCorpus
from scaling.data.suites import BenchmarkSuite
from scaling.eval.evaluate import EvalConfig
from scaling.eval.mteb_tasks import is_mteb_source
from scaling.plan.files import read_corpus, read_suite
from scaling.store import ResultStore
from scaling.training.config import TrainConfig

PLAN_FOLDER = "plan"
PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class DataFile:
    """A training or held-out corpus as planned: where it is and what it holds."""

    path: str  # absolute path or URI
    content_hash: str
    rows: int
    groups: int
    languages: tuple[str, ...]
    sources: tuple[str, ...]
    dropped_groups: dict[str, int] = field(default_factory=dict)  # per benchmark: groups removed (zero-shot)
    composition: dict[str, dict[str, int]] = field(default_factory=dict)  # rows per source and language

    def describe(self) -> dict[str, Any]:
        return {"sources": list(self.sources), "dropped_groups": self.dropped_groups, "rows": self.rows,
                "groups": self.groups, "languages": list(self.languages), "content_hash": self.content_hash,
                "composition": self.composition}


@dataclass(frozen=True)
class SuiteFile:
    """A benchmark suite as planned: its source, where its files are, its members' sizes and hashes."""

    source: str
    name: str
    path: str
    members: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialResources:
    """What a trial reserves: its training workers, then its evaluation stage."""

    num_workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0  # fractional GPUs stay fractional
    eval_cpus: float = 1.0
    eval_gpus: float = 0.0


def _split(location: str) -> tuple[ResultStore, str]:
    """A store at the parent folder and the file's name in it."""
    parent, name = posixpath.split(location.rstrip("/"))
    return ResultStore(parent), name


@dataclass(frozen=True)
class TrialPlan:
    trial_id: str
    axes: dict[str, Any]
    config: TrainConfig  # resolved: run name and storage, absolute data dir, materialised model
    corpus: DataFile
    heldout: DataFile | None
    benchmarks: tuple[SuiteFile, ...]
    eval: EvalConfig
    resources: TrialResources
    location: str  # the plan folder
    plugins: tuple[tuple[str, str], ...] = ()  # (module, file) of registrations made outside the package

    # ---- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "axes": self.axes, "config": self.config.to_dict(),
                "corpus": asdict(self.corpus), "heldout": asdict(self.heldout) if self.heldout else None,
                "benchmarks": [asdict(b) for b in self.benchmarks], "eval": asdict(self.eval),
                "resources": asdict(self.resources), "location": self.location,
                "plugins": [list(p) for p in self.plugins]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TrialPlan":
        def data_file(d):
            return DataFile(**{**d, "languages": tuple(d["languages"]), "sources": tuple(d["sources"])}) if d else None

        return cls(raw["trial_id"], raw["axes"], TrainConfig.from_dict(raw["config"]), data_file(raw["corpus"]),
                   data_file(raw["heldout"]), tuple(SuiteFile(**b) for b in raw["benchmarks"]),
                   EvalConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw["eval"].items()}),
                   TrialResources(**raw["resources"]), raw["location"], tuple(tuple(p) for p in raw["plugins"]))

    def write(self) -> None:
        ResultStore(self.location).write_json(PLAN_FILE, self.to_dict())

    @classmethod
    def read(cls, location: str) -> "TrialPlan":
        """The plan in ``location``; its plugins are imported first (they register what it names)."""
        from scaling.plugins import load_plugins

        raw = ResultStore(location).read_json(PLAN_FILE)
        load_plugins(raw.get("plugins", ()))
        return cls.from_dict(raw)

    # ---- what stages read -----------------------------------------------------------------
    def read_corpus(self) -> ParallelCorpus:
        store, name = _split(self.corpus.path)
        return read_corpus(store, name, self.corpus.content_hash)

    def read_heldout(self) -> ParallelCorpus | None:
        if self.heldout is None:
            return None
        store, name = _split(self.heldout.path)
        return read_corpus(store, name, self.heldout.content_hash)

    def read_benchmarks(self) -> list[BenchmarkSuite]:
        """The planned suites (``mteb:`` tasks aside: mteb loads those, see ``mteb_sources``)."""
        out = []
        for spec in self.benchmarks:
            if is_mteb_source(spec.source):
                continue
            store, name = _split(spec.path)
            out.append(read_suite(store, name))
        return out

    def mteb_sources(self) -> list[str]:
        return [spec.source for spec in self.benchmarks if is_mteb_source(spec.source)]
