"""The retrieval benchmark: queries, a candidate pool and relevance judgements.

One shape for every benchmark (LAReQA pools, Tatoeba pairs, BEIR/MIRACL), so the evaluation code
never branches on where a benchmark came from. Queries and candidates carry a language, which is
what lets one merged pool be restricted to mono-, cross- and multilingual settings. Where the
queries are also candidates (a pool built from N-way bitext), ``excluded`` names each query's own
candidate, which is never ranked for that query (it is the query itself), while the other
sentences of its language stay in the pool as distractors.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from scaling.data.corpus import columns_fingerprint
from scaling.data.errors import DataError

QUERY_SCHEMA = pa.schema([("id", pa.string()), ("lang", pa.string()), ("text", pa.string()),
                          ("group", pa.string())])
CANDIDATE_SCHEMA = pa.schema([("id", pa.string()), ("lang", pa.string()), ("text", pa.string())])


@dataclass(frozen=True)
class RetrievalBenchmark:
    """A validated benchmark; ``relevance`` maps a query id to {candidate id: grade >= 1}."""

    name: str
    queries: pa.Table
    candidates: pa.Table
    relevance: Mapping[str, Mapping[str, int]]
    # Article titles of the source (for the zero-shot overlap check); empty where there are none.
    titles: frozenset[str] = frozenset()
    # What building it skipped or changed, with counts (reported, never silent).
    notes: tuple[str, ...] = field(default=())
    # Query id -> the candidate that is the query itself: never ranked for that query.
    excluded: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._validate()

    @classmethod
    def from_rows(cls, name: str, queries: Sequence[Mapping], candidates: Sequence[Mapping],
                  relevance: Mapping[str, Mapping[str, int]], **kwargs) -> "RetrievalBenchmark":
        return cls(name, pa.Table.from_pylist(list(queries), schema=QUERY_SCHEMA),
                   pa.Table.from_pylist(list(candidates), schema=CANDIDATE_SCHEMA), relevance, **kwargs)

    def _validate(self) -> None:
        if len(self.candidates) == 0:
            raise DataError("the candidate pool is empty", file=self.name)
        if len(self.queries) == 0:
            raise DataError("the benchmark has no queries", file=self.name)
        for table, what in ((self.queries, "query"), (self.candidates, "candidate")):
            for col in ("id", "lang", "text"):
                if table.column(col).null_count:
                    raise DataError(f"a {what} has no {col}", file=self.name)
            empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(table.column("text"))), 0)
            if pc.any(empty).as_py():
                bad = table.column("id").filter(empty)[0].as_py()
                raise DataError(f"{what} text is empty", file=self.name, record=bad)
            ids = table.column("id")
            if len(pc.unique(ids)) != len(ids):
                dup = next(k for k, n in collections.Counter(ids.to_pylist()).items() if n > 1)
                raise DataError(f"duplicate {what} id {dup!r}", file=self.name, record=dup)
        qids = set(self.queries.column("id").to_pylist())
        unjudged = sorted(qids - {q for q, rel in self.relevance.items() if rel})
        if unjudged:
            raise DataError(f"{len(unjudged)} queries have no relevant candidate (first: {unjudged[0]!r})",
                            file=self.name, hint="drop them when building the benchmark and record the count in notes")
        judged = [(qid, cid) for qid, rel in self.relevance.items() for cid in rel]
        unknown = self._unknown_candidates([cid for _, cid in judged])
        for qid, rel in self.relevance.items():
            if qid not in qids:
                raise DataError(f"relevance names unknown query {qid!r}", file=self.name)
            for cid, grade in rel.items():
                if cid in unknown:
                    raise DataError(f"relevance of query {qid!r} names unknown candidate {cid!r}", file=self.name)
                if not isinstance(grade, int) or grade < 1:
                    raise DataError(f"relevance grade {grade!r} of ({qid!r}, {cid!r}) should be an integer >= 1",
                                    file=self.name)
        unknown = self._unknown_candidates(list(self.excluded.values()))
        for qid, cid in self.excluded.items():
            if qid not in qids:
                raise DataError(f"excluded names unknown query {qid!r}", file=self.name)
            if cid in unknown:
                raise DataError(f"excluded candidate {cid!r} of query {qid!r} is not in the pool", file=self.name)
            if cid in self.relevance[qid]:
                raise DataError(f"candidate {cid!r} is both relevant to and excluded for query {qid!r}",
                                file=self.name, hint="a query's own sentence is excluded, its translations are relevant")

    def _unknown_candidates(self, ids: list) -> set:
        """The ``ids`` not in the pool, checked against its Arrow column (no set of the pool's ids
        as Python strings: a 10M-passage pool stays in Arrow)."""
        if not ids or not all(isinstance(i, str) for i in ids):
            return {i for i in ids if not isinstance(i, str)}
        known = pc.is_in(pa.array(ids, type=pa.string()), value_set=self.candidates.column("id"))
        return {i for i, ok in zip(ids, known.to_pylist()) if not ok}

    # ---- views ----------------------------------------------------------------------------
    @property
    def query_languages(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.queries.column("lang").to_pylist())))

    @property
    def candidate_languages(self) -> tuple[str, ...]:
        return tuple(sorted(pc.unique(self.candidates.column("lang")).to_pylist()))

    def relevant(self, query_id: str) -> frozenset[str]:
        return frozenset(self.relevance[query_id])

    def fingerprint(self) -> str:
        """Hash of the queries' and candidates' ids and texts (the embedding cache key uses it)."""
        return columns_fingerprint((self.queries, ("id", "text")), (self.candidates, ("id", "text")))

    def summary(self) -> dict[str, object]:
        """Counts a person checks first: queries and candidates per language, relevant per query."""
        per_query = collections.Counter(len(r) for r in self.relevance.values())
        return {
            "name": self.name,
            "queries": len(self.queries),
            "candidates": len(self.candidates),
            "query_groups": len(pc.unique(self.queries.column("group"))),
            "queries_per_language": dict(sorted(collections.Counter(self.queries.column("lang").to_pylist()).items())),
            "candidates_per_language": dict(sorted(collections.Counter(self.candidates.column("lang").to_pylist()).items())),
            "relevant_per_query": dict(sorted(per_query.items())),
            "excluded_self_matches": len(self.excluded),
            "notes": list(self.notes),
        }
