"""BEIR-format benchmark directories (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``).

MIRACL ships one such directory per language, so the language is given by the caller. As in BEIR,
only queries that have judgements are evaluated and a judgement of 0 means "not relevant"; both
counts are recorded in the benchmark's notes.
"""

from __future__ import annotations

from pathlib import Path

from scaling.data.benchmark import RetrievalBenchmark
from scaling.data.errors import DataError
from scaling.data.jsonl import iter_jsonl
from scaling.languages import canonical


def read_beir(directory: Path, *, lang: str, split: str = "test", name: str | None = None) -> RetrievalBenchmark:
    lang = canonical(lang)
    corpus = [row for _, row in iter_jsonl(directory / "corpus.jsonl", ("_id", "text"))]
    queries = [row for _, row in iter_jsonl(directory / "queries.jsonl", ("_id", "text"))]
    qrels_path = directory / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise DataError("file not found", file=qrels_path, hint=f"split {split!r} has no qrels")
    candidates = [{"id": str(r["_id"]), "lang": lang,
                   "text": f"{r.get('title') or ''} {r['text']}".strip()} for r in corpus]
    cids = {c["id"] for c in candidates}
    qtext = {str(r["_id"]): r["text"] for r in queries}
    relevance: dict[str, dict[str, int]] = {}
    zero = 0
    lines = qrels_path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, start=1):
        parts = line.split("\t")
        if n == 1 and parts[0] == "query-id":
            continue
        if len(parts) != 3:
            raise DataError(f"expected query-id, corpus-id, score separated by tabs; found {len(parts)} fields",
                            file=qrels_path, record=f"line {n}")
        qid, cid, score = parts
        try:
            grade = int(score)
        except ValueError:
            raise DataError(f"score {score!r} is not an integer", file=qrels_path, record=f"line {n}") from None
        if qid not in qtext:
            raise DataError(f"unknown query id {qid!r}", file=qrels_path, record=f"line {n}")
        if cid not in cids:
            raise DataError(f"unknown corpus id {cid!r}", file=qrels_path, record=f"line {n}")
        if grade <= 0:
            zero += 1
            continue
        relevance.setdefault(qid, {})[cid] = grade
    judged = [{"id": q, "lang": lang, "text": t, "group": q} for q, t in qtext.items() if q in relevance]
    notes = []
    if len(judged) < len(qtext):
        notes.append(f"{len(qtext) - len(judged)} of {len(qtext)} queries have no relevant judgement and are not evaluated")
    if zero:
        notes.append(f"{zero} judgements with score <= 0 count as not relevant")
    return RetrievalBenchmark.from_rows(name or directory.name, judged, candidates, relevance, notes=tuple(notes))
