"""SIB-200 / FLORES as one merged multilingual retrieval pool (N-way parallel bitext).

Every sentence of every selected language is both a query and a candidate; a query's relevant
candidates are its translations in the other languages (same ``index_id``). Its own sentence is
``excluded`` from its ranking (it is the query itself), while the other sentences of its language
stay in the pool as distractors. Monolingual retrieval has no relevant candidate in bitext, so the
suite's rule scores the cross- and multilingual settings only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from scaling.data.benchmark import RetrievalBenchmark
from scaling.data.bitext import pick_language_codes, read_sib200_split, sib200_languages
from scaling.data.errors import DataError
from scaling.data.suites import BenchmarkSuite, SuiteRule
from scaling.languages import canonical

SIB_POOL_RULE = SuiteRule(settings=("cross", "multi"))


def build_sib200_pool(directory: Path, languages: Sequence[str] | None = None, split: str = "test",
                      name: str | None = None, source: str = "") -> BenchmarkSuite:
    """A suite of one merged pool over ``languages`` (FLORES codes or any code; None: all)."""
    codes = pick_language_codes(sib200_languages(directory), languages, directory, "SIB-200")
    if len(codes) < 2:
        raise DataError(f"a SIB-200 pool needs at least two languages, got {codes}", file=directory,
                        hint="pass two or more languages (languages=[...] / --languages deu_Latn,fra_Latn)")
    rows, by_index = [], {}
    for code in codes:
        path = directory / code / f"{split}.tsv"
        if not path.is_file():
            raise DataError("file not found", file=path, hint=f"SIB-200 language {code} lacks split {split!r}")
        lang = canonical(code)
        for index_id, _category, text in read_sib200_split(path):
            qid = f"{lang}/{index_id}"
            rows.append({"id": qid, "lang": lang, "text": text, "group": index_id})
            by_index.setdefault(index_id, []).append(qid)
    relevance = {}
    for ids in by_index.values():
        for qid in ids:
            others = {cid: 1 for cid in ids if cid != qid}
            if others:
                relevance[qid] = others
    alone = [r for r in rows if r["id"] not in relevance]
    notes = ()
    if alone:
        notes = (f"{len(alone)} sentences have no translation in the other selected languages: kept as "
                 "candidates, not asked as queries",)
    queries = [r for r in rows if r["id"] in relevance]
    candidates = [{"id": r["id"], "lang": r["lang"], "text": r["text"]} for r in rows]
    name = name or f"sib-200:{split}"
    bench = RetrievalBenchmark.from_rows(name, queries, candidates, relevance, notes=notes,
                                         excluded={q["id"]: q["id"] for q in queries})
    return BenchmarkSuite(name, {name: bench}, SIB_POOL_RULE, source or name)
