"""mMARCO (``unicamp-dl/mmarco``): MS MARCO passage ranking machine-translated into 13 languages,
queries and passages parallel by id across languages, as QA pairs (X-X and X-Y).

Training pairs come from ``triples.train.ids.small.tsv`` (``query id, positive id, negative id``):
each query id, with its first positive, is one group across every language whose query file
has it (``mmarco/<query id>``). Files name languages in English (``portuguese``), mapped onto
canonical codes. Only the passages the chosen queries need are kept in memory (a collection is
~3 GB a language). Local copy: the hub's files under ``<dir>/data/``; the hub path downloads the
same files with ``huggingface_hub``.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import langcodes

from scaling.data.adapters import (
    Adapter,
    AdapterRequest,
    check_languages_option,
    check_positive_int,
    hub_file,
    pick_codes,
    register_adapter,
)
from scaling.data.corpus import ParallelCorpus
from scaling.data.errors import DataError

HUB_NAME = "unicamp-dl/mmarco"
TRIPLES = "data/triples.train.ids.small.tsv"
# The hub's languages per translation (data/google is the v2 release, data/helsinki v1).
TRANSLATIONS = {
    "google": tuple("arabic chinese dutch english french german hindi indonesian italian japanese portuguese russian "
                    "spanish vietnamese".split()),
    "helsinki": tuple("chinese english french german indonesian italian portuguese russian spanish".split()),
}
LAYOUT = ("<folder>/data/triples.train.ids.small.tsv, <folder>/data/<translation>/queries/train/<language>_queries.train.tsv "
          "and <folder>/data/<translation>/collections/<language>_collection.tsv, the hub's files")


@dataclass(frozen=True)
class MmarcoOptions:
    path: str | None = None
    languages: tuple[str, ...] | None = None
    max_queries: int | None = None  # the first distinct training queries of the triples file
    translation: str = "google"  # "google" (v2, 14 languages) or "helsinki" (v1, 9)

    def __post_init__(self) -> None:
        check_languages_option(self.languages)
        check_positive_int(self.max_queries, "max_queries")
        if self.translation not in TRANSLATIONS:
            raise ValueError(f"option translation must be one of {list(TRANSLATIONS)}, not {self.translation!r}")


def language_code(name: str) -> str:
    """The canonical code of an mMARCO language name; names outside the published list are refused."""
    known = {n for names in TRANSLATIONS.values() for n in names}
    if name not in known:
        raise DataError(f"language name {name!r} of mmarco maps to no known language", file="mmarco",
                        hint=f"mMARCO's languages are {', '.join(sorted(known))}")
    return langcodes.find(name).to_tag()


def query_files(translation: str, name: str) -> tuple[str, str]:
    return (f"data/{translation}/queries/train/{name}_queries.train.tsv",
            f"data/{translation}/collections/{name}_collection.tsv")


def _tsv(path: Path, keep: set[str] | None = None):
    """(line number, id, text) of an ``id<TAB>text`` file, only ids in ``keep`` when given."""
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            line = line.rstrip("\n")
            if not line:
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise DataError(f"expected 'id<TAB>text', found {len(parts)} field(s)", file=path, record=f"line {n}")
            if keep is None or parts[0] in keep:
                yield n, parts[0], parts[1]


def read_triples(path: Path, max_queries: int | None) -> dict[str, str]:
    """``{query id: first positive id}`` in file order, at most ``max_queries`` of them."""
    chosen: dict[str, str] = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                raise DataError(f"expected 'query id<TAB>positive id<TAB>negative id', found {len(parts)} field(s)",
                                file=path, record=f"line {n}")
            if parts[0] not in chosen:
                if max_queries is not None and len(chosen) >= max_queries:
                    break
                chosen[parts[0]] = parts[1]
    if not chosen:
        raise DataError("no training triples", file=path)
    return chosen


def build(request: AdapterRequest, get: Callable[[str], Path], origin: str, names: Sequence[str]) -> ParallelCorpus:
    """The corpus of the languages ``names`` from the hub's files, each found through ``get(relative path)``."""
    opts = request.options
    mapping = {name: language_code(name) for name in names}
    chosen = read_triples(get(TRIPLES), opts.max_queries)
    wanted_pids = set(chosen.values())
    rows, ids = [], []
    for name in pick_codes(mapping, request.languages, f"mmarco ({opts.translation})"):
        q_rel, c_rel = query_files(opts.translation, name)
        q_path = get(q_rel)
        queries = {qid: (n, text) for n, qid, text in _tsv(q_path, set(chosen))}
        c_path = get(c_rel)
        passages = {pid: text for _, pid, text in _tsv(c_path, wanted_pids)}
        counts = collections.Counter()
        for qid, pid in chosen.items():
            if qid not in queries or pid not in passages:
                counts["missing"] += 1
                continue
            n, text = queries[qid]
            rows.append({"group_id": f"mmarco/{qid}", "lang": mapping[name], "query": text, "passage": passages[pid],
                         "source": "mmarco"})
            ids.append(f"{q_path.name} line {n}")
        if counts["missing"] == len(chosen):
            raise DataError(f"none of the {len(chosen)} training queries is in both {q_rel} and {c_rel}", file=origin)
    return ParallelCorpus.from_rows(rows, origin=origin, record_ids=ids)


def read_local(folder: Path, request: AdapterRequest) -> ParallelCorpus:
    def get(rel: str) -> Path:
        path = folder / rel
        if not path.is_file():
            raise DataError("file not found", file=path, hint=f"a local mMARCO copy is laid out as {LAYOUT}")
        return path

    present = [n for n in TRANSLATIONS[request.options.translation]
               if all((folder / rel).is_file() for rel in query_files(request.options.translation, n))]
    if not present:
        raise DataError(f"no language has both its query and collection files under data/{request.options.translation}/",
                        file=folder, hint=f"a local mMARCO copy is laid out as {LAYOUT}")
    return build(request, get, str(folder), present)


def read_hub(request: AdapterRequest) -> ParallelCorpus:
    return build(request, lambda rel: hub_file(HUB_NAME, rel), f"hf:{HUB_NAME}", TRANSLATIONS[request.options.translation])


ADAPTER = register_adapter(Adapter(
    "mmarco", HUB_NAME, ("train",), "train", MmarcoOptions, read_local, read_hub,
    pairs="X-X and X-Y (14 languages, parallel by id)", layout=LAYOUT))
