"""MTEB tasks as study benchmarks: ``benchmarks: [mteb:BelebeleRetrieval, mteb:MLQARetrieval:test]``.

``mteb:<task>[:<split>][?languages=de,en,zh]`` keeps only the subsets whose query and corpus
languages are all among those given (any code style: ``de``, ``deu``, ``deu_Latn``); rows are named
``mteb:<task>[:<split>]`` either way.

A source ``mteb:<task>[:<split>]`` names a task of the installed mteb (its metadata ships with the
package, so names are checked offline, before Ray starts) or one registered here with
``register_mteb_task`` (a lab's own task over data on disk, in mteb's dataset layout). The
trained model runs through ``MtebEncoder`` with ``mteb.evaluate`` and mteb's own result cache
(``<eval.cache_dir>/mteb``, else mteb's default, ``MTEB_CACHE`` or ``~/.cache/mteb``), keyed by the
model's weight fingerprint and encoding settings (as the embedding cache is), so a re-run of the
same weights and settings reads the cache and nothing else does.

mteb's scores become the same metric rows as ours: one row per subset (``query_lang`` and
``candidate_lang`` from the subset's languages, in mteb's order query then corpus; ``mono`` where
they are the same language, else ``cross``), plus each setting's macro-average over its subsets
(``*``/``*``). ``ndcg_at_10`` becomes ``ndcg@10`` (likewise recall, precision, mrr; mteb's
``map_at_k`` is MAP truncated at k and becomes ``map@k``, never our full-ranking ``map``), kept
for the ``eval.metrics`` families and ``eval.ks``; ``main_score`` is always kept. Every other
number mteb computes stays in its cache files. A task with several evaluation splits gives one
benchmark per split, ``mteb:<task>:<split>``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from scaling.names import closest

MTEB_PREFIX = "mteb:"
LOCAL_TASKS: dict[str, type] = {}  # task name -> AbsTask subclass registered outside mteb
_RENAMED = re.compile(r"^(ndcg|map|recall|precision|mrr)_at_(\d+)$")


class MtebTaskError(ValueError):
    """An ``mteb:`` source that cannot run; the message names it and how to fix it."""


def is_mteb_source(source: str) -> bool:
    return source.startswith(MTEB_PREFIX)


def register_mteb_task(cls: type) -> type:
    """Make an mteb task class (an ``AbsTask`` subclass) available as ``mteb:<its metadata name>``."""
    LOCAL_TASKS[cls.metadata.name] = cls
    return cls


def _mteb():
    try:
        import mteb
    except ImportError:
        raise MtebTaskError("mteb: benchmarks need the mteb package; install the extra: pip install -e '.[mteb]'") from None
    return mteb


def _task_class(name: str, source: str) -> type:
    if name in LOCAL_TASKS:
        return LOCAL_TASKS[name]
    _mteb()
    from mteb.get_tasks import _TASKS_REGISTRY  # name -> class, built from the package's metadata

    if name not in _TASKS_REGISTRY:
        close = closest(name, list(_TASKS_REGISTRY) + list(LOCAL_TASKS))
        raise MtebTaskError(f"benchmarks: {source!r}: mteb {_mteb().__version__} has no task {name!r}"
                            + (f"; did you mean {MTEB_PREFIX}{close}?" if close else "")
                            + " (mteb.get_tasks() lists them; register a local task with register_mteb_task)")
    return _TASKS_REGISTRY[name]


@dataclass(frozen=True)
class MtebSource:
    """A parsed ``mteb:<task>[:<split>]`` source."""

    source: str
    task: str
    split: str | None = None
    languages: tuple[str, ...] | None = None  # canonical codes; None: every subset

    @classmethod
    def parse(cls, source: str) -> "MtebSource":
        if not is_mteb_source(source):
            raise MtebTaskError(f"{source!r} is not an mteb source (mteb:<task>[:<split>][?languages=...])")
        body, _, options = source[len(MTEB_PREFIX):].partition("?")
        task, _, split = body.partition(":")
        if not task:
            raise MtebTaskError(f"benchmarks: {source!r} names no task; write mteb:<task>, e.g. mteb:BelebeleRetrieval")
        spec = cls(source, task, split or None, _languages_option(source, options))
        splits = list(_task_class(task, source).metadata.eval_splits)
        if spec.split is not None and spec.split not in splits:
            raise MtebTaskError(f"benchmarks: {source!r}: task {task} has no evaluation split {spec.split!r}; "
                                f"choose from {splits}")
        if not spec.subsets():
            raise MtebTaskError(f"benchmarks: {source!r}: no subset of {task} has only languages {list(spec.languages)}")
        return spec

    @property
    def name(self) -> str:
        """The source without its options."""
        return self.source.partition("?")[0]

    def subsets(self) -> list[str]:
        """The task's subsets kept (all without a languages option)."""
        meta = self.metadata
        subsets = list(meta.eval_langs) if isinstance(meta.eval_langs, dict) else ["default"]
        if self.languages is None:
            return subsets
        wanted = set(self.languages)
        return [s for s in subsets if set(_subset_langs(meta, s)) <= wanted]

    @property
    def metadata(self):
        return _task_class(self.task, self.source).metadata

    @property
    def splits(self) -> tuple[str, ...]:
        return (self.split,) if self.split else tuple(self.metadata.eval_splits)

    def benchmark(self, split: str) -> str:
        """The ``benchmark`` column of this split's rows."""
        return self.name if self.split or len(self.splits) == 1 else f"{self.name}:{split}"

    def load_task(self):
        task = _task_class(self.task, self.source)()
        if self.split:
            task.filter_eval_splits([self.split])
        if self.languages is not None:
            task.filter_languages(None, hf_subsets=self.subsets())
        return task

    def describe(self) -> dict[str, dict]:
        """Per benchmark (split): what identifies its data (recorded with every trial)."""
        meta = self.metadata
        subsets = self.subsets()
        digest = str(meta.dataset.get("revision"))
        if self.languages is not None:
            digest += "/" + hashlib.blake2b(json.dumps(subsets).encode(), digest_size=4).hexdigest()
        return {self.benchmark(s): {"source": self.source, "task": self.task, "split": s, "dataset": meta.dataset.get("path"),
                                    "content_hash": digest, "subsets": len(subsets)}
                for s in self.splits}


def _languages_option(source: str, options: str) -> tuple[str, ...] | None:
    from urllib.parse import parse_qsl

    from scaling.languages import UnknownLanguageError, canonical

    if not options:
        return None
    try:
        pairs = parse_qsl(options, strict_parsing=True)
    except ValueError:
        raise MtebTaskError(f"benchmarks: {source!r}: cannot read the options {options!r} (write ?languages=de,en)") from None
    bad = [k for k, _ in pairs if k != "languages"]
    if bad:
        raise MtebTaskError(f"benchmarks: {source!r}: unknown option {bad[0]!r}; an mteb source takes ?languages=de,en")
    try:
        return tuple(sorted({canonical(c.strip()) for _, v in pairs for c in v.split(",") if c.strip()}))
    except UnknownLanguageError as exc:
        raise MtebTaskError(f"benchmarks: {source!r}: {exc}") from None


def check_mteb_sources(sources: Sequence[str]) -> list[MtebSource]:
    """Every ``mteb:`` source of a list, parsed (an unknown task or split is an error)."""
    return [MtebSource.parse(s) for s in sources if is_mteb_source(s)]


def _subset_langs(meta, subset: str) -> tuple[str, str]:
    from scaling.languages import UnknownLanguageError, canonical

    langs = meta.eval_langs.get(subset, []) if isinstance(meta.eval_langs, dict) else meta.eval_langs
    if not langs:
        return subset, subset
    try:
        codes = [canonical(x) for x in langs]
    except UnknownLanguageError:
        codes = list(langs)
    return codes[0], codes[-1]


def _metric_name(key: str, families: Sequence[str], ks: Sequence[int]) -> str | None:
    if key == "main_score":
        return key
    m = _RENAMED.match(key)
    if m and m.group(1) in families and int(m.group(2)) in ks:
        return f"{m.group(1)}@{m.group(2)}"
    return None


def score_records(spec: MtebSource, scores: dict[str, list[dict[str, Any]]], *, families: Sequence[str],
                  ks: Sequence[int]) -> list:
    """Metric rows from a ``TaskResult.scores`` mapping (split -> one dict per subset)."""
    import numpy as np

    from scaling.eval.settings import ALL, MetricRecord

    meta = spec.metadata
    kept = set(spec.subsets())  # the cache may hold more subsets (an earlier run with more languages)
    records = []
    for split in spec.splits:
        name = spec.benchmark(split)
        macro: dict[tuple[str, str], list[float]] = {}
        for entry in scores.get(split, []):
            if entry["hf_subset"] not in kept:
                continue
            q, c = _subset_langs(meta, entry["hf_subset"])
            setting = "mono" if q == c else "cross"
            for key, value in entry.items():
                metric = _metric_name(key, families, ks)
                if metric is None or not isinstance(value, (int, float)):
                    continue
                records.append(MetricRecord(name, setting, q, c, metric, float(value)))
                macro.setdefault((setting, metric), []).append(float(value))
        records += [MetricRecord(name, setting, ALL, ALL, metric, float(np.mean(values)))
                    for (setting, metric), values in macro.items()]
    return records


def cache_revision(encoder, model_key: str | None = None) -> str:
    """The "revision" mteb files results under: the weights' fingerprint and the encoding
    settings (prefixes, pooling, length), hashed as the embedding cache key is."""
    from scaling.eval.embeddings import encoding_settings, model_fingerprint

    key = json.dumps([model_key or model_fingerprint(encoder), encoding_settings(encoder)], sort_keys=True)
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def mteb_cache(cache_dir: str | None):
    mteb = _mteb()
    return mteb.ResultCache(cache_path=Path(cache_dir).expanduser() / "mteb") if cache_dir else mteb.ResultCache()


def evaluate_mteb(encoder, source: str, config, result=None, model_key: str | None = None):
    """Run one ``mteb:`` source on ``encoder`` (a ``DualEncoder``); rows go into ``result``
    (an ``EvalResult``, made if None), named like every other benchmark's."""
    from scaling.eval.evaluate import EvalResult
    from scaling.eval.mteb_adapter import MtebEncoder

    mteb = _mteb()
    result = result if result is not None else EvalResult()
    spec = MtebSource.parse(source)
    if config.max_length is not None and config.max_length != encoder.config.max_length:
        encoder.config = replace(encoder.config, max_length=config.max_length)
    adapter = MtebEncoder(encoder, name="hybrid-scaling/checkpoint", batch_size=config.batch_size,
                          device=config.device, revision=cache_revision(encoder, model_key))
    start = time.perf_counter()
    cache = mteb_cache(config.cache_dir)
    mteb.evaluate(adapter, spec.load_task(), cache=cache, show_progress_bar=False,
                  overwrite_strategy="only-missing" if config.use_cache else "always",
                  encode_kwargs={"batch_size": config.batch_size})
    # rows from mteb's saved file, a fresh run's and a cached one's alike (it rounds some scores)
    task_result = cache.load_task_result(spec.task, adapter.mteb_model_meta, raise_if_not_found=True)
    result.records += score_records(spec, task_result.scores, families=config.metrics, ks=config.ks)
    for split in spec.splits:
        result.timings[f"{spec.benchmark(split)}/mteb"] = time.perf_counter() - start
    result.notes.append(f"{source}: mteb {mteb.__version__}, dataset {spec.metadata.dataset.get('path')} "
                        f"revision {spec.metadata.dataset.get('revision')}")
    return result
