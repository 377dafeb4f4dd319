"""Adapters: hub datasets in their published schema mapped onto the canonical training corpus.

An adapter is a source prefix (``belebele``, ``mmarco``, ``miracl``, ``flores-plus``) with its
splits, its options (a frozen dataclass: unknown names are errors) and two readers: one for a
local copy laid out as the hub publishes it (``<data dir>/<name>/`` or the ``path`` option) and
one for the hub itself. Both produce the same rows, so a test on a local fixture covers the
mapping the hub path uses. Each adapter module registers itself here; ``sources.load_corpus``
dispatches on the prefix.

Every dataset names its languages its own way (FLORES codes ``eng_Latn``, ISO 639-1 ``en``,
English names ``english``); ``map_language_codes`` maps them onto the canonical codes of
``scaling.languages`` and refuses a code that maps to no language, or two codes that map to one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from scaling.data.corpus import ParallelCorpus
from scaling.data.errors import DataError, SourceNotFoundError
from scaling.data.remote import offline
from scaling.languages import UnknownLanguageError, canonical
from scaling.names import closest


@dataclass(frozen=True)
class AdapterRequest:
    """What a reader is asked for: a split, canonical languages (None: all), the options."""

    split: str
    languages: tuple[str, ...] | None
    options: Any  # the adapter's options dataclass
    label: str  # the source as results name it, e.g. "belebele:train"


@dataclass(frozen=True)
class Adapter:
    name: str  # the source prefix
    hub_name: str
    splits: tuple[str, ...]
    default_split: str
    options: type  # frozen dataclass; every adapter's options include ``path`` and ``languages``
    read_local: Callable[[Path, AdapterRequest], ParallelCorpus]
    read_hub: Callable[[AdapterRequest], ParallelCorpus]
    pairs: str  # what pairs the corpus gives: "X-X and X-Y", "X-X only", "X-Y only"
    layout: str  # the local layout, for errors and the README

    def option_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.options))

    def make_options(self, raw: Mapping[str, Any] | None, where: str) -> Any:
        """The options dataclass from a mapping; unknown names and bad values name ``where``."""
        raw = dict(raw or {})
        known = self.option_names()
        for key in raw:
            if key not in known:
                close = closest(str(key), known)
                raise ValueError(f"unknown option {where}.{key} of source {self.name!r}"
                                 + (f" (did you mean {close!r}?)" if close else "") + f"; it takes {list(known)}")
        if isinstance(raw.get("languages"), list):
            raw["languages"] = tuple(raw["languages"])
        try:
            return self.options(**raw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None


ADAPTERS: dict[str, Adapter] = {}


def register_adapter(adapter: Adapter) -> Adapter:
    ADAPTERS[adapter.name] = adapter
    return adapter


def check_positive_int(value: Any, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"option {name} must be an integer >= 1 or null, not {value!r}")


def check_languages_option(value: Any) -> None:
    if value is not None and (not isinstance(value, tuple) or not all(isinstance(v, str) for v in value) or not value):
        raise ValueError(f"option languages must be a non-empty list of language codes or null, not {value!r}")


def map_language_codes(codes: Sequence[str], dataset: str, *, where: Callable[[str], str] | None = None
                       ) -> dict[str, str]:
    """``{dataset code: canonical code}``; an unmappable code or two codes for one language is an error."""
    out: dict[str, str] = {}
    by_canon: dict[str, str] = {}
    for code in codes:
        try:
            c = canonical(code)
        except UnknownLanguageError as exc:
            raise DataError(f"language code {code!r} of {dataset} maps to no known language ({exc})",
                            file=where(code) if where else dataset,
                            hint="rename it to an ISO 639 / FLORES code, or leave that language out") from None
        if c in by_canon:
            raise DataError(f"language codes {by_canon[c]!r} and {code!r} of {dataset} both mean {c!r}",
                            file=dataset, hint="keep one of them")
        by_canon[c] = code
        out[code] = c
    return out


def pick_codes(mapping: Mapping[str, str], wanted: Sequence[str] | None, dataset: str) -> list[str]:
    """The dataset codes of the wanted canonical languages (all when None), in the dataset's order."""
    if wanted is None:
        return list(mapping)
    by_canon = {c: code for code, c in mapping.items()}
    missing = [w for w in wanted if w not in by_canon]
    if missing:
        raise DataError(f"{dataset} has no language(s) {missing}", file=dataset,
                        hint=f"it has {', '.join(sorted(by_canon))}")
    return [by_canon[w] for w in wanted]


def read_per_language(codes: Sequence[str], rows_of: Callable[[str], tuple[list[dict], list[str]]],
                      request: AdapterRequest, *, dataset: str, origin: str,
                      where: Callable[[str], str] | None = None, empty: str = "no rows",
                      hint: str | None = None) -> ParallelCorpus:
    """The corpus of a dataset kept as one file or hub configuration per language: each requested
    language's code read by ``rows_of(code)`` into (rows, record ids), joined in the dataset's order.
    ``dataset`` and ``origin`` (the folder or hub name) name it in errors; no row at all is the error
    ``empty``."""
    mapping = map_language_codes(codes, dataset, where=where)
    picked = pick_codes(mapping, request.languages, dataset if dataset == origin else f"{dataset} ({origin})")
    parts = [rows_of(code) for code in picked]
    rows = [r for rs, _ in parts for r in rs]
    if not rows:
        raise DataError(empty, file=origin, hint=hint)
    return ParallelCorpus.from_rows(rows, origin=origin, record_ids=[i for _, ids in parts for i in ids])


def load_adapter_corpus(name: str, split: str | None, *, data_dir: Path | None, options: Mapping[str, Any] | None,
                        where: str = "options") -> ParallelCorpus:
    """The corpus of ``name:split``: the ``path`` option, else ``<data dir>/<name>``, else the hub."""
    adapter = ADAPTERS[name]
    split = split or adapter.default_split
    if split not in adapter.splits:
        raise DataError(f"unknown split {split!r} of {name}", file=name, hint=f"choose from {list(adapter.splits)}")
    opts = adapter.make_options(options, where)
    languages = None
    if opts.languages is not None:
        try:
            languages = tuple(canonical(c) for c in opts.languages)
        except UnknownLanguageError as exc:
            raise ValueError(f"{where}.languages: {exc}") from None
    request = AdapterRequest(split, languages, opts, f"{name}:{split}")
    folder = Path(opts.path).expanduser() if opts.path else (data_dir / name if data_dir else None)
    if opts.path and not folder.is_dir():
        raise SourceNotFoundError(f"option path: no such folder {folder}", file=f"{name}:{split}",
                                  hint=f"a local copy of {name} is laid out as {adapter.layout}")
    if folder is not None and folder.is_dir():
        return adapter.read_local(folder, request)
    if offline():
        where_ = f"{folder} does not exist" if folder else "no data directory is set (--data-dir or SCALING_DATA_DIR)"
        raise SourceNotFoundError(
            f"{name} is not available: {where_}, and downloads are off (SCALING_OFFLINE/HF_HUB_OFFLINE)",
            file=f"{name}:{split}", hint=f"put a copy in <data dir>/{name}/ laid out as {adapter.layout}, "
                                         f"or allow downloads to read hf:{adapter.hub_name}")
    return adapter.read_hub(request)


def hub_config_names(hub_name: str) -> list[str]:
    """The configurations of a hub dataset (one per language for most), through ``datasets``."""
    import datasets

    try:
        return list(datasets.get_dataset_config_names(hub_name))
    except Exception as exc:  # network, authentication (gated datasets) and missing-repo errors
        raise SourceNotFoundError(f"could not list the configurations ({type(exc).__name__}: {exc})",
                                  file=f"hf:{hub_name}",
                                  hint="offline, use a local copy through SCALING_DATA_DIR; gated datasets need "
                                       "`huggingface-cli login` after accepting their terms") from None


def hub_file(hub_name: str, filename: str) -> Path:
    """One file of a hub dataset repository (cached by ``huggingface_hub``)."""
    from huggingface_hub import hf_hub_download

    from scaling.data.remote import cache_root

    try:
        return Path(hf_hub_download(hub_name, filename, repo_type="dataset", cache_dir=str(cache_root() / "hf-files")))
    except Exception as exc:
        raise SourceNotFoundError(f"could not download {filename} ({type(exc).__name__}: {exc})", file=f"hf:{hub_name}",
                                  hint="offline, use a local copy through SCALING_DATA_DIR") from None
