"""BEIR-format benchmark directories (``corpus.jsonl[.gz]``, ``queries.jsonl[.gz]``, ``qrels/<split>.tsv``).

MIRACL ships one such directory per language. Languages: a ``lang`` field on a record wins;
records without one take the caller's ``query_lang`` (queries) or ``corpus_lang`` (passages), so a
set whose questions are in one language and passages in another (XOR-TyDi style) is scored as
cross-lingual, not mono. As in BEIR, only queries that have judgements are evaluated and a
judgement of 0 means "not relevant"; both counts are recorded in the benchmark's notes.

Large corpora: the JSON Lines files are parsed by pyarrow into Arrow columns, block by block
(``pyarrow.json``), so a 10M-passage corpus never exists as 10M Python strings. A file pyarrow
cannot type (an integer ``_id``, a record without ``text``) is read again by the line reader, in
batches of ``BATCH_ROWS`` records, which names the offending line.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from scaling.data.benchmark import CANDIDATE_SCHEMA, QUERY_SCHEMA, RetrievalBenchmark
from scaling.data.errors import DataError
from scaling.data.jsonl import iter_jsonl_lines
from scaling.languages import UnknownLanguageError, canonical

BATCH_ROWS = 65_536  # records per Arrow batch on the line-reader path
RAW_SCHEMA = pa.schema([("_id", pa.string()), ("title", pa.string()), ("text", pa.string()), ("lang", pa.string())])


def jsonl_file(directory: Path, stem: str) -> Path:
    """``<stem>.jsonl`` or ``<stem>.jsonl.gz`` in ``directory`` (exactly one of them)."""
    found = [p for p in (directory / f"{stem}.jsonl", directory / f"{stem}.jsonl.gz") if p.is_file()]
    if not found:
        raise DataError("file not found", file=directory / f"{stem}.jsonl", hint=f"a BEIR folder holds {stem}.jsonl or .jsonl.gz")
    if len(found) > 1:
        raise DataError(f"both {found[0].name} and {found[1].name} exist", file=directory, hint="keep one of them")
    return found[0]


class _Untyped(Exception):
    """pyarrow cannot read the file as strings; the line reader will (and name the line)."""


def _arrow_batches(path: Path) -> Iterator[pa.RecordBatch]:
    """The file through pyarrow's JSON reader, block by block, in RAW_SCHEMA."""
    import pyarrow.json as pj

    try:
        reader = pj.open_json(path, read_options=pj.ReadOptions(block_size=16 << 20),
                              parse_options=pj.ParseOptions(explicit_schema=RAW_SCHEMA, unexpected_field_behavior="ignore"))
        for batch in reader:
            batch = batch.select(RAW_SCHEMA.names)
            if batch.column(0).null_count or batch.column(2).null_count:
                raise _Untyped  # a record without _id or text
            yield batch
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _Untyped from None


def _cell(value) -> str | None:
    return None if value is None else str(value)


def iter_batches(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """RAW_SCHEMA batches of at most ``batch_rows`` records, read line by line (errors name the line)."""
    opener = gzip.open if path.suffix == ".gz" else open
    columns: dict[str, list] = {name: [] for name in RAW_SCHEMA.names}
    with opener(path, "rt", encoding="utf-8") as fh:
        for _, obj in iter_jsonl_lines(fh, path, ("_id", "text")):
            for name, values in columns.items():
                values.append(_cell(obj.get(name)))
            if len(columns["_id"]) == batch_rows:
                yield pa.RecordBatch.from_pydict(columns, schema=RAW_SCHEMA)
                columns = {name: [] for name in RAW_SCHEMA.names}
    if columns["_id"]:
        yield pa.RecordBatch.from_pydict(columns, schema=RAW_SCHEMA)


def read_converted(path: Path, convert: Callable[[pa.RecordBatch], pa.RecordBatch], schema: pa.Schema, *,
                   batch_rows: int = BATCH_ROWS) -> pa.Table:
    """Each RAW_SCHEMA batch of the file through ``convert``: only the converted columns are kept,
    the raw ones of one batch at a time."""
    try:
        return pa.Table.from_batches([convert(b) for b in _arrow_batches(path)], schema=schema)
    except _Untyped:
        return pa.Table.from_batches([convert(b) for b in iter_batches(path, batch_rows)], schema=schema)


def read_records(path: Path, *, batch_rows: int = BATCH_ROWS) -> pa.Table:
    """A BEIR JSON Lines file as Arrow columns ``_id, title, text, lang`` (null where absent)."""
    return read_converted(path, lambda b: b, RAW_SCHEMA, batch_rows=batch_rows)


def _languages(table: pa.RecordBatch, default: str | None, path: Path, what: str) -> pa.Array:
    """Each record's canonical language: its ``lang`` field, else ``default``."""
    raw = table.column("lang")
    if default is not None:
        raw = pc.fill_null(raw, default)
    if raw.null_count:
        row = pc.index(pc.is_null(raw), True).as_py()
        raise DataError(f"a record has no lang field and no {what} language was given", file=path,
                        record=table.column("_id")[row].as_py(),
                        hint=f"add ?{what}_lang=<code> (or ?lang=) to the source, or a lang field to every record")
    codes = pc.unique(raw).to_pylist()
    try:
        names = pa.array([canonical(c) for c in codes], type=pa.string())
    except UnknownLanguageError as exc:
        raise DataError(f"a record's lang field: {exc}", file=path) from None
    return pc.take(names, pc.index_in(raw, value_set=pa.array(codes, type=pa.string())))


def _texts(batch: pa.RecordBatch) -> pa.Array:
    joined = pc.binary_join_element_wise(pc.fill_null(batch.column("title"), ""), batch.column("text"), " ")
    return pc.utf8_trim_whitespace(joined)


def _read_qrels(qrels_path: Path, query_ids: set[str], corpus_ids: pa.Array) -> tuple[dict[str, dict[str, int]], int]:
    relevance: dict[str, dict[str, int]] = {}
    zero = 0
    rows: list[tuple[int, str]] = []
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
        if qid not in query_ids:
            raise DataError(f"unknown query id {qid!r}", file=qrels_path, record=f"line {n}")
        rows.append((n, cid))
        if grade <= 0:
            zero += 1
            continue
        relevance.setdefault(qid, {})[cid] = grade
    known = pc.is_in(pa.array([c for _, c in rows], type=pa.string()), value_set=corpus_ids)
    if not pc.all(known).as_py():  # checked against the Arrow column: no set of 10M Python strings
        n, cid = rows[pc.index(known, False).as_py()]
        raise DataError(f"unknown corpus id {cid!r}", file=qrels_path, record=f"line {n}")
    return relevance, zero


def read_beir(directory: Path, *, lang: str | None = None, query_lang: str | None = None, corpus_lang: str | None = None,
              split: str = "test", name: str | None = None) -> RetrievalBenchmark:
    """``lang`` is both sides' language; ``query_lang``/``corpus_lang`` set one side each (a record's
    own ``lang`` field wins over both)."""
    query_lang, corpus_lang = query_lang or lang, corpus_lang or lang
    for option, value in (("query_lang", query_lang), ("corpus_lang", corpus_lang)):
        try:
            canonical(value) if value else None
        except UnknownLanguageError as exc:
            raise DataError(f"{option}: {exc}", file=directory) from None
    qrels_path = directory / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise DataError("file not found", file=qrels_path, hint=f"split {split!r} has no qrels")
    corpus_path, queries_path = jsonl_file(directory, "corpus"), jsonl_file(directory, "queries")
    candidates = read_converted(corpus_path, lambda b: pa.record_batch(
        [b.column("_id"), _languages(b, corpus_lang, corpus_path, "corpus"), _texts(b)], schema=CANDIDATE_SCHEMA),
        CANDIDATE_SCHEMA)
    all_queries = read_converted(queries_path, lambda b: pa.record_batch(
        [b.column("_id"), _languages(b, query_lang, queries_path, "query"), b.column("text"), b.column("_id")],
        schema=QUERY_SCHEMA), QUERY_SCHEMA)
    q_ids = all_queries.column("id")
    relevance, zero = _read_qrels(qrels_path, set(q_ids.to_pylist()), candidates.column("id"))
    queries = all_queries.filter(pc.is_in(q_ids, value_set=pa.array(list(relevance), type=pa.string())))
    notes = []
    if len(queries) < len(all_queries):
        notes.append(f"{len(all_queries) - len(queries)} of {len(all_queries)} queries have no relevant judgement "
                     "and are not evaluated")
    if zero:
        notes.append(f"{zero} judgements with score <= 0 count as not relevant")
    return RetrievalBenchmark(name or directory.name, queries, candidates, relevance, notes=tuple(notes))
