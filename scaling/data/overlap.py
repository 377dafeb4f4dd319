"""The zero-shot guarantee: find every item a training corpus shares with a benchmark.

Texts are compared after normalisation (Unicode NFKC, case folding, punctuation and underscores
removed, whitespace collapsed), so ``Prime_number`` meets ``Prime number`` and a re-punctuated
copy of a question is still caught. Three kinds of overlap are reported: article titles, queries
(training queries equal to benchmark queries) and passages (training passages equal to benchmark
candidates).
"""

from __future__ import annotations

import collections
import unicodedata
from dataclasses import dataclass
from typing import Sequence

from scaling.data.benchmark import RetrievalBenchmark
from scaling.data.corpus import ParallelCorpus
from scaling.languages import canonical


def normalise_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().replace("_", " ")
    kept = "".join(" " if unicodedata.category(ch)[0] in "PSZ" else ch for ch in text)
    return " ".join(kept.split())


@dataclass(frozen=True)
class Overlap:
    kind: str  # "title", "query" or "passage"
    text: str  # the normalised text both sides share
    group_ids: tuple[str, ...]  # training groups that hold it


@dataclass(frozen=True)
class OverlapReport:
    corpus: str
    benchmark: str
    overlaps: tuple[Overlap, ...]

    @property
    def group_ids(self) -> frozenset[str]:
        """Training groups to drop for a clean zero-shot evaluation."""
        return frozenset(g for o in self.overlaps for g in o.group_ids)

    def counts(self) -> dict[str, int]:
        return dict(collections.Counter(o.kind for o in self.overlaps))

    def describe(self) -> str:
        if not self.overlaps:
            return f"no overlap between {self.corpus} and {self.benchmark}"
        lines = [f"{self.corpus} overlaps {self.benchmark}: " + ", ".join(
            f"{n} {kind}(s)" for kind, n in sorted(self.counts().items()))
            + f"; {len(self.group_ids)} training group(s) affected"]
        titles = sorted(o.text for o in self.overlaps if o.kind == "title")
        if titles:
            lines.append("  shared titles: " + "; ".join(titles))
        return "\n".join(lines)


def check_overlap(corpus: ParallelCorpus, benchmark: RetrievalBenchmark, *, corpus_name: str = "corpus"
                  ) -> OverlapReport:
    t = corpus.table
    groups = t.column("group_id").to_pylist()
    by_kind = {
        "title": (t.column("title").to_pylist(), {normalise_text(x) for x in benchmark.titles}),
        "query": (t.column("query").to_pylist(), {normalise_text(x) for x in benchmark.queries.column("text").to_pylist()}),
        "passage": (t.column("passage").to_pylist(),
                    {normalise_text(x) for x in benchmark.candidates.column("text").to_pylist()}),
    }
    overlaps = []
    for kind, (values, targets) in by_kind.items():
        hits: dict[str, set[str]] = collections.defaultdict(set)
        for gid, value in zip(groups, values):
            if value is None:
                continue
            norm = normalise_text(value)
            if norm and norm in targets:
                hits[norm].add(gid)
        overlaps += [Overlap(kind, text, tuple(sorted(gids))) for text, gids in sorted(hits.items())]
    return OverlapReport(corpus_name, benchmark.name, tuple(overlaps))


def drop_overlaps(corpus: ParallelCorpus, report: OverlapReport) -> tuple[ParallelCorpus, int]:
    """The corpus without the overlapping groups, and how many groups were dropped."""
    return corpus.drop_groups(report.group_ids), len(report.group_ids)


def check_zero_shot_languages(training: Sequence[str], zero_shot: Sequence[str],
                              setting: str = "zero_shot.languages") -> None:
    """The language-level guarantee: no language declared zero-shot is a training language."""
    if not zero_shot:
        return
    declared = [canonical(x) for x in zero_shot]
    leaked = [x for x in declared if x in {canonical(t) for t in training}]
    if leaked:
        raise ValueError(f"evaluation language(s) {leaked} are declared zero-shot ({setting}) but this trial trains on "
                         f"them (training languages: {', '.join(training)}); remove them from data.languages (or the "
                         f"languages axis) or from {setting}")
