"""A benchmark suite: one or more retrieval benchmarks and the rule that scores them together.

``load_benchmark`` always returns a suite, so no caller branches on what a source holds. A
LAReQA pool or a BEIR folder is a suite of one, scored as it is. Tatoeba is a suite of one
two-language benchmark per language whose rule is data: only the cross-lingual setting at
k = 1, recall@1 reported as accuracy@1, and macro rows per direction to and from English.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping

from scaling.data.benchmark import RetrievalBenchmark


@dataclass(frozen=True)
class SuiteRule:
    """How a suite's members are scored and reported.

    ``settings``/``ks``: what to evaluate (None: the evaluation options'). ``metrics``: the
    metrics to keep, old name -> reported name (None: all, unrenamed). ``pivot``: report the
    members' per-language-pair rows under the suite's name, plus their macro-average per
    direction (every language -> pivot, pivot -> every language), instead of each member's own.
    """

    settings: tuple[str, ...] | None = None
    ks: tuple[int, ...] | None = None
    metrics: Mapping[str, str] | None = None
    pivot: str | None = None


@dataclass(frozen=True)
class BenchmarkSuite:
    name: str
    members: Mapping[str, RetrievalBenchmark]  # key (a language for Tatoeba, else the name) -> benchmark
    rule: SuiteRule = field(default_factory=SuiteRule)
    source: str = ""  # the source string it was loaded from

    @classmethod
    def of(cls, bench: RetrievalBenchmark, source: str = "") -> "BenchmarkSuite":
        return cls(bench.name, {bench.name: bench}, SuiteRule(), source)

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, key: str) -> RetrievalBenchmark:
        return self.members[key]

    def __iter__(self) -> Iterator[RetrievalBenchmark]:
        return iter(self.members.values())

    def single(self) -> RetrievalBenchmark:
        """The benchmark of a suite of one (an error for a multi-benchmark suite such as Tatoeba)."""
        if len(self.members) != 1:
            raise ValueError(f"benchmark suite {self.name!r} holds {len(self.members)} benchmarks; iterate over it")
        return next(iter(self.members.values()))

    def describe(self) -> dict[str, dict]:
        """Per member: its source, sizes and content hash (recorded with every trial)."""
        return {b.name: {"source": self.source or self.name, "queries": len(b.queries), "candidates": len(b.candidates),
                         "languages": sorted(set(b.query_languages) | set(b.candidate_languages)),
                         "content_hash": b.fingerprint()} for b in self}
