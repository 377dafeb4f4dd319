"""A low-resource view: evaluation languages grouped by resource level, each group's macro per
recipe with seed intervals.

Levels come from a published list (``analysis.joshi2020``, the default) or from the training data
size per language (``size_levels``: the rows per language that ``study.json`` records, cut at
edges; ``python -m analysis.report --resource-levels data-size --size-edges 1000,10000``).
A language the table does not classify is in the group "unclassified", never dropped: a macro
over only the classified languages would quietly change what the number means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.aggregate import aggregate_seeds
from analysis.uncertainty import DEFAULT_RESAMPLES
from scaling.languages import UnknownLanguageError, canonical

UNCLASSIFIED = "unclassified"


def canonical_or_raw(code: str) -> str:
    """The canonical tag, or the code itself when it is not a registered language."""
    try:
        return canonical(code)
    except UnknownLanguageError:
        return code


@dataclass(frozen=True)
class ResourceTable:
    """Canonical language tag -> resource level label, with the levels' order (lowest first)."""

    name: str
    source: str
    levels: Mapping[str, str]
    order: tuple[str, ...]
    not_classified: Mapping[str, str] = field(default_factory=dict)  # known to be unclassified, with why

    def __post_init__(self) -> None:
        unknown = sorted(set(self.levels.values()) - set(self.order))
        if unknown:
            raise ValueError(f"resource table {self.name!r}: levels {unknown} are not in its order {list(self.order)}")

    def level(self, code: str) -> str:
        return self.levels.get(canonical_or_raw(code), UNCLASSIFIED)

    def group_order(self) -> tuple[str, ...]:
        return self.order + (UNCLASSIFIED,)

    @classmethod
    def from_sizes(cls, sizes: Mapping[str, int], edges: Sequence[int] = (1_000, 10_000), *,
                   unit: str = "training pairs") -> "ResourceTable":
        """Levels by data size: ``edges`` (ascending) cut the sizes into ``< e0``, ``e0-e1``, ...,
        ``>= e_last``; a language absent from ``sizes`` is unclassified."""
        edges = [int(e) for e in edges]
        if not edges or edges != sorted(set(edges)) or edges[0] <= 0:
            raise ValueError(f"resource levels by size: edges must be positive and strictly ascending, not {edges}")
        labels = ([f"< {edges[0]:,} {unit}"] + [f"{a:,}-{b:,} {unit}" for a, b in zip(edges, edges[1:])]
                  + [f">= {edges[-1]:,} {unit}"])
        levels = {}
        for code, size in sizes.items():
            if size < 0:
                raise ValueError(f"resource levels by size: language {code!r} has a negative size {size}")
            levels[canonical_or_raw(code)] = labels[int(np.searchsorted(edges, size, side="right"))]
        return cls(name=f"{unit} per language", source="training data sizes", levels=levels, order=tuple(labels))


def training_sizes(study: Mapping) -> dict[str, int]:
    """Training rows per language, from ``study.json``'s training data (each source's rows per
    language, summed over sources; the largest where trials train on different data)."""
    sizes: dict[str, int] = {}
    entries = study.get("training_data") or []
    for entry in entries:
        per_entry: dict[str, int] = {}
        for per_lang in (entry.get("composition") or {}).values():
            for lang, n in per_lang.items():
                per_entry[lang] = per_entry.get(lang, 0) + int(n)
        for lang, n in per_entry.items():
            sizes[lang] = max(sizes.get(lang, 0), n)
    if not sizes:
        raise ValueError("study.json records no training data sizes (training_data.composition); it was written "
                         "before they were recorded, or by hand: use --resource-levels joshi2020")
    return sizes


def size_levels(study: Mapping, evaluated: Sequence[str], edges: Sequence[int] = (1_000, 10_000)) -> ResourceTable:
    """Levels by the study's training rows per language; an evaluated language without training
    data has 0 rows (the lowest level), not "unclassified": its size is known."""
    sizes = {canonical_or_raw(c): n for c, n in training_sizes(study).items()}
    return ResourceTable.from_sizes({**{canonical_or_raw(c): 0 for c in evaluated}, **sizes}, edges,
                                    unit="training rows")


def cell_columns(frame: pd.DataFrame) -> list[str]:
    """The grid columns a per-language view keeps apart: size, language count (where set), recipe."""
    return [c for c in ("size", "num_languages", "recipe") if c in frame and frame[c].notna().any()]


def per_language_rows(frame: pd.DataFrame, *, setting: str, metric: str) -> pd.DataFrame:
    """Rows of one language each: the query language, against all candidates (multi) or its own
    (mono)."""
    rows = frame[(frame["metric"] == metric) & (frame["setting"] == setting) & (frame["query_lang"] != "*")
                 & ((frame["candidate_lang"] == "*") | (frame["candidate_lang"] == frame["query_lang"]))]
    if rows.empty:
        raise ValueError(f"no per-language {metric!r} rows in the {setting!r} setting")
    return rows


def group_macros(rows: pd.DataFrame, groups: pd.Series, *, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = 0) -> pd.DataFrame:
    """Per trial, the mean over the languages of each group; then mean and interval over seeds per
    cell and group, with ``group_languages`` (the group's languages, comma-separated) and ``n_languages``."""
    rows = rows.assign(group=groups.to_numpy())
    cells = cell_columns(rows)
    per_trial = rows.groupby(["trial_id", "seed", *cells, "group"], dropna=False, sort=True).agg(
        value=("value", "mean"), group_languages=("query_lang", lambda s: ", ".join(sorted(set(s))))).reset_index()
    agg = aggregate_seeds(per_trial, by=cells + ["group", "group_languages"], n_resamples=n_resamples, seed=seed)
    agg["n_languages"] = agg["group_languages"].str.count(",") + 1
    return agg


def resource_group_scores(frame: pd.DataFrame, table: ResourceTable, *, setting: str = "multi", metric: str = "map",
                          n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Each resource group's macro ``metric`` per cell (size, language count, recipe), over seeds.
    Rows are ordered by the table's levels (lowest first), "unclassified" last."""
    rows = per_language_rows(frame, setting=setting, metric=metric)
    out = group_macros(rows, rows["query_lang"].map(table.level), n_resamples=n_resamples, seed=seed)
    rank = {g: i for i, g in enumerate(table.group_order())}
    out = out.assign(_rank=out["group"].map(rank)).sort_values(cell_columns(out) + ["_rank"])
    return out.drop(columns="_rank").reset_index(drop=True)
