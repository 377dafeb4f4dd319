"""FLORES+ (``openlanguagedata/flores_plus``): the FLORES sentences, N-way parallel by ``id``, as
bitext (X-Y pairs only: a row's query and passage are its sentence).

Splits ``dev`` (997 sentences) and ``devtest`` (1012). Each row names its language by
``iso_639_3`` and ``iso_15924`` (``eng`` + ``Latn``), which must agree with the file it is in.
One sentence id is one group across all languages of a split (``flores-plus/<split>/<id>``).
Local copy: ``<dir>/<split>/<code>.parquet`` as on the hub (``dev/eng_Latn.parquet``). The
SIB-200 copy in the data directory is the FLORES-200 subset with topic labels; its corpus is
``sib-200:<split>`` (``scaling.data.bitext``), grouped by its own ``index_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from scaling.data.adapters import (
    Adapter,
    AdapterRequest,
    check_languages_option,
    hub_config_names,
    read_per_language,
    register_adapter,
)
from scaling.data.corpus import ParallelCorpus
from scaling.data.errors import DataError
from scaling.data.remote import fetch_hub_dataset

HUB_NAME = "openlanguagedata/flores_plus"
FIELDS = ("id", "iso_639_3", "iso_15924", "text")
LAYOUT = "<folder>/<split>/<iso_639_3>_<iso_15924>.parquet (e.g. dev/eng_Latn.parquet), the hub's files"


@dataclass(frozen=True)
class FloresPlusOptions:
    path: str | None = None
    languages: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        check_languages_option(self.languages)


def rows_of(records, code: str, where: str, split: str) -> tuple[list[dict], list[str]]:
    rows, ids = [], []
    for rec_id, obj in records:
        missing = [f for f in FIELDS if obj.get(f) in (None, "")]
        if missing:
            raise DataError(f"missing field(s) {missing}", file=where, record=rec_id,
                            hint=f"a FLORES+ row has {', '.join(FIELDS)}")
        row_code = f"{obj['iso_639_3']}_{obj['iso_15924']}"
        if row_code != code:
            raise DataError(f"row language {row_code} differs from the file's {code}", file=where, record=rec_id)
        rows.append({"group_id": f"flores-plus/{split}/{obj['id']}", "lang": code, "query": str(obj["text"]),
                     "passage": str(obj["text"]), "source": "flores-plus"})
        ids.append(f"{code} {rec_id}")
    return rows, ids


def read_local(folder: Path, request: AdapterRequest) -> ParallelCorpus:
    base = folder / request.split
    files = {p.stem: p for p in sorted(base.glob("*.parquet"))}
    if not files:
        raise DataError("no <code>.parquet files", file=base, hint=f"a local FLORES+ copy is laid out as {LAYOUT}")

    def language(code: str) -> tuple[list[dict], list[str]]:
        try:
            table = pq.read_table(files[code])
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"not a readable Parquet file: {exc}", file=files[code]) from None
        records = ((f"row {i}", obj) for i, obj in enumerate(table.to_pylist()))
        return rows_of(records, code, str(files[code]), request.split)

    return read_per_language(list(files), language, request, dataset="flores-plus", origin=str(base),
                             where=lambda c: str(files[c]))


def read_hub(request: AdapterRequest) -> ParallelCorpus:
    """One (gated) hub configuration per language, splits ``dev`` and ``devtest``."""
    configs = [c for c in hub_config_names(HUB_NAME) if c != "default"]

    def language(code: str) -> tuple[list[dict], list[str]]:
        records = ((f"row {i}", dict(obj)) for i, obj in enumerate(fetch_hub_dataset(HUB_NAME, code, request.split)))
        return rows_of(records, code, f"hf:{HUB_NAME}/{code}", request.split)

    return read_per_language(configs, language, request, dataset=f"hf:{HUB_NAME}", origin=f"hf:{HUB_NAME}")


ADAPTER = register_adapter(Adapter(
    "flores-plus", HUB_NAME, ("dev", "devtest"), "dev", FloresPlusOptions, read_local, read_hub,
    pairs="X-Y only (bitext, N-way parallel)", layout=LAYOUT))
