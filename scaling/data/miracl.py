"""MIRACL training data (``miracl/miracl``): monolingual queries with judged positive passages in
18 languages, as X-X pairs only.

A record is ``{query_id, query, positive_passages: [{docid, title, text}], negative_passages}``;
each query gives one row, paired with its first positive (a query twice in one batch would make
its other positives false negatives). MIRACL's queries were written per language, not
translated, so a group holds one language (``miracl/<lang>/<query_id>``): no cross-lingual pair is
invented. Queries without a positive are skipped. Local copy: ``<dir>/<lang>/<split>.jsonl``,
one record per line (the hub's records, e.g. exported with ``datasets``). The hub dataset is a
loading script, which ``datasets`` 4 and later no longer run: there the hub path fails, saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scaling.data.adapters import (
    Adapter,
    AdapterRequest,
    check_languages_option,
    check_positive_int,
    read_per_language,
    register_adapter,
)
from scaling.data.corpus import ParallelCorpus
from scaling.data.errors import DataError
from scaling.data.jsonl import iter_jsonl
from scaling.data.remote import fetch_hub_dataset

HUB_NAME = "miracl/miracl"
LANGUAGES = tuple("ar bn de en es fa fi fr hi id ja ko ru sw te th yo zh".split())  # the hub's configurations
FIELDS = ("query_id", "query", "positive_passages")
NO_ROWS = "no query with a positive passage"
LAYOUT = "<folder>/<lang>/<split>.jsonl (e.g. sw/train.jsonl), one record of the hub's fields per line"


@dataclass(frozen=True)
class MiraclOptions:
    path: str | None = None
    languages: tuple[str, ...] | None = None
    max_queries: int | None = None  # per language, the first ones in the file's order

    def __post_init__(self) -> None:
        check_languages_option(self.languages)
        check_positive_int(self.max_queries, "max_queries")


def rows_of(records, code: str, where: str, request: AdapterRequest) -> tuple[list[dict], list[str]]:
    rows, ids = [], []
    for rec_id, obj in records:
        if request.options.max_queries is not None and len(rows) >= request.options.max_queries:
            break
        missing = [f for f in FIELDS if obj.get(f) is None]
        if missing:
            raise DataError(f"missing field(s) {missing}", file=where, record=rec_id,
                            hint=f"a MIRACL record has {', '.join(FIELDS)} and negative_passages")
        positives = obj["positive_passages"]
        if not isinstance(positives, list) or any(not isinstance(p, dict) or "text" not in p for p in positives):
            raise DataError("positive_passages should be a list of {docid, title, text}", file=where, record=rec_id)
        if not positives:
            continue
        first = positives[0]
        rows.append({"group_id": f"miracl/{code}/{obj['query_id']}", "lang": code, "query": str(obj["query"]),
                     "passage": str(first["text"]), "source": "miracl", "title": first.get("title") or None})
        ids.append(f"{code} {rec_id}")
    return rows, ids


def read_local(folder: Path, request: AdapterRequest) -> ParallelCorpus:
    files = {p.parent.name: p for p in sorted(folder.glob(f"*/{request.split}.jsonl"))}
    if not files:
        raise DataError(f"no <lang>/{request.split}.jsonl files", file=folder,
                        hint=f"a local MIRACL copy is laid out as {LAYOUT}")

    def language(code: str) -> tuple[list[dict], list[str]]:
        records = ((f"line {n}", obj) for n, obj in iter_jsonl(files[code]))
        return rows_of(records, code, str(files[code]), request)

    return read_per_language(list(files), language, request, dataset="miracl", origin=str(folder),
                             where=lambda c: str(files[c]), empty=NO_ROWS)


def read_hub(request: AdapterRequest) -> ParallelCorpus:
    def language(code: str) -> tuple[list[dict], list[str]]:
        records = ((f"row {i}", dict(obj)) for i, obj in enumerate(fetch_hub_dataset(HUB_NAME, code, request.split)))
        return rows_of(records, code, f"hf:{HUB_NAME}/{code}", request)

    return read_per_language(LANGUAGES, language, request, dataset=f"hf:{HUB_NAME}", origin=f"hf:{HUB_NAME}",
                             empty=NO_ROWS)


ADAPTER = register_adapter(Adapter(
    "miracl", HUB_NAME, ("train", "dev"), "train", MiraclOptions, read_local, read_hub,
    pairs="X-X only (monolingual groups)", layout=LAYOUT))
