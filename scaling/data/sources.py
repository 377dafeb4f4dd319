"""Named data sources and how a source string becomes a corpus or a benchmark.

A source string is one of

* a registered name, optionally with a split: ``xquad-r``, ``mlqa-r``, ``xquad``, ``tatoeba``,
  ``sib-200:train``, ``parallel-qa:train`` / ``parallel-qa:eval`` (our own set, in the package);
* a local path: a ``.jsonl``/``.parquet`` corpus, a folder of SQuAD ``<lang>.json`` files, a
  Tatoeba or SIB-200 folder, or a BEIR folder (benchmarks only; options after ``?``:
  ``lang``, or ``query_lang`` and ``corpus_lang`` for a cross-lingual set, and ``split``, the
  qrels file: ``path/to/xor-tydi-ja?query_lang=ja&corpus_lang=en&split=dev``);
* a URL (``https://...``, ``file://...``) of a corpus file, downloaded once into the cache;
* ``hf:owner/name[:split]``, a hub dataset in the canonical corpus columns;
* an adapter of a hub dataset in its published schema (``scaling.data.adapters``):
  ``belebele:<split>``, ``mmarco:train``, ``miracl:<split>``, ``flores-plus:<split>``, read from
  ``<data dir>/<name>/`` (or the ``path`` option) laid out as the hub publishes it, else the hub.

Registered datasets are looked up in the data directory (``--data-dir`` or ``SCALING_DATA_DIR``),
then in the download cache, then downloaded where the source has a public address and downloads
are allowed; otherwise the error says which folder to create.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from scaling.data import belebele, flores_plus, miracl, mmarco  # noqa: F401  (adapter registration)
from scaling.data.adapters import ADAPTERS, load_adapter_corpus
from scaling.data.beir import read_beir
from scaling.data.bitext import SIB_SPLITS, read_sib200_corpus, read_tatoeba_corpus
from scaling.data.corpus import ParallelCorpus
from scaling.data.errors import DataError, SourceNotFoundError
from scaling.data.lareqa import build_lareqa
from scaling.data.qa import PassageUnit, read_squad_corpus
from scaling.data.remote import cache_root, fetch_hub_dataset, fetch_url, offline
from scaling.data.sib_pool import build_sib200_pool
from scaling.data.suites import BenchmarkSuite
from scaling.data.tabular import TABULAR_SUFFIXES, read_tabular_corpus
from scaling.data.tatoeba_retrieval import build_tatoeba
from scaling.languages import UnknownLanguageError, canonical, canonical_many

PACKAGE_DATA = Path(__file__).parent / "parallel_qa"

TATOEBA_CODES = tuple(
    "afr amh ang ara arq arz ast awa aze bel ben ber bos bre bul cat cbk ceb ces cha cmn cor csb cym "
    "dan deu dsb dtp ell epo est eus fao fin fra fry gla gle glg gsw heb hin hrv hsb hun hye ido ile "
    "ina ind isl ita jav jpn kab kat kaz khm kor kur kzj lat lfn lit lvs mal mar max mhr mkd mon nds "
    "nld nno nob nov oci orv pam pes pms pol por ron rus slk slv spa sqi srp swe swg swh tam tat tel "
    "tgl tha tuk tur tzl uig ukr urd uzb vie war wuu xho yid yue zsm".split())


@dataclass(frozen=True)
class RegisteredDataset:
    """A dataset the harness knows by name: its folder, files per language and public address."""

    name: str
    kind: str  # "squad-breaks", "squad-raw", "tatoeba", "sib-200"
    file_codes: tuple[str, ...]  # language codes as they appear in the file names
    file_patterns: tuple[str, ...]  # relative paths per language, with {code}
    url_base: str | None = None  # files are url_base + relative path
    hub_name: str | None = None  # or a hub dataset with one config per language
    splits: tuple[str, ...] = ()
    default_split: str | None = None  # for training corpora
    benchmark_split: str | None = None  # for benchmarks, when it differs (a held-out split)

    def files(self, code: str) -> list[str]:
        return [p.format(code=code) for p in self.file_patterns]


REGISTRY: dict[str, RegisteredDataset] = {d.name: d for d in (
    RegisteredDataset("xquad-r", "squad-breaks", tuple("ar de el en es hi ru th tr vi zh".split()), ("{code}.json",),
                      url_base="https://raw.githubusercontent.com/google-research-datasets/lareqa/master/xquad-r/"),
    # MLQA-R was removed from the LAReQA repository; only a local copy works.
    RegisteredDataset("mlqa-r", "squad-breaks", tuple("ar de en es hi vi zh".split()), ("{code}.json",)),
    RegisteredDataset("xquad", "squad-raw", tuple("ar de el en es hi ro ru th tr vi zh".split()), ("xquad.{code}.json",),
                      url_base="https://raw.githubusercontent.com/google-deepmind/xquad/master/"),
    RegisteredDataset("tatoeba", "tatoeba", TATOEBA_CODES, ("tatoeba.{code}-eng.{code}", "tatoeba.{code}-eng.eng"),
                      url_base="https://raw.githubusercontent.com/facebookresearch/LASER/main/data/tatoeba/v1/"),
    RegisteredDataset("sib-200", "sib-200", (), ("{code}/train.tsv", "{code}/dev.tsv", "{code}/test.tsv"),
                      hub_name="Davlan/sib200", splits=SIB_SPLITS, default_split="train", benchmark_split="test"),
    RegisteredDataset("parallel-qa", "squad-breaks", tuple("ar de en es fr hi ru zh".split()), ("{code}.json",),
                      splits=("train", "eval"), default_split="train", benchmark_split="eval"),
)}


def data_dir(explicit: str | Path | None = None) -> Path | None:
    """The data directory: the argument, else ``SCALING_DATA_DIR``, else none."""
    value = explicit or os.environ.get("SCALING_DATA_DIR")
    return Path(value).expanduser() if value else None


_resolve_data_dir = data_dir  # for functions whose ``data_dir`` argument shadows it


def parse_source(source: str) -> tuple[str, str | None]:
    """Split ``name:split`` for registered names; anything else is returned whole."""
    name, sep, split = source.partition(":")
    if sep and (name in REGISTRY or name in ADAPTERS):
        return name, split
    return source, None


def split_language_subset(source: str) -> tuple[str, list[str] | None]:
    """``tatoeba?languages=de,sw,xh`` -> (``tatoeba``, [de, sw, xh]): a registered benchmark cut to
    some languages (the option syntax of BEIR folders and ``mteb:`` sources). Other sources are
    returned whole, their options read by their own readers."""
    from urllib.parse import parse_qsl

    bare, sep, query = source.partition("?")
    if not sep or parse_source(bare)[0] not in REGISTRY:
        return source, None
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise DataError(f"cannot read the options {query!r}", file=bare, hint="write ?languages=de,sw") from None
    unknown = [key for key, _ in pairs if key != "languages"]
    if unknown:
        raise DataError(f"unknown option {unknown[0]!r}", file=bare, hint="a registered benchmark takes ?languages=de,sw")
    languages = [code.strip() for _, value in pairs for code in value.split(",") if code.strip()]
    if not languages:
        raise DataError("an empty language list", file=bare, hint="write ?languages=code,code or drop the option")
    return bare, languages


def with_language_subset(source: str, languages: Sequence[str]) -> str:
    """The source string of ``source`` cut to ``languages`` (inverse of ``split_language_subset``)."""
    return f"{source}?languages={','.join(languages)}"


# ---- locating registered datasets ---------------------------------------------------------
def _complete(folder: Path, entry: RegisteredDataset, codes: Sequence[str]) -> bool:
    return folder.is_dir() and all((folder / f).is_file() for c in codes for f in entry.files(c))


def locate(entry: RegisteredDataset, *, directory: str | Path | None = None, codes: Sequence[str] | None = None,
           split: str | None = None) -> Path:
    """The folder holding ``entry``'s files for ``codes``: package, data dir, cache, or a download."""
    if entry.name == "parallel-qa":
        return PACKAGE_DATA / (split or entry.default_split)
    root = data_dir(directory)
    local = root / entry.name if root else None
    if local is not None and local.is_dir():
        return local
    cached = cache_root() / entry.name
    wanted = list(codes) if codes else list(entry.file_codes)
    if wanted and _complete(cached, entry, wanted):
        return cached
    where = (f"{local} does not exist" if local else "no data directory is set (--data-dir or SCALING_DATA_DIR)")
    if offline() or (entry.url_base is None and entry.hub_name is None):
        reason = "downloads are off (SCALING_OFFLINE/HF_HUB_OFFLINE)" if offline() else "it has no public download address"
        raise SourceNotFoundError(
            f"dataset {entry.name!r} is not available: {where}, and {reason}", file=entry.name,
            hint=f"put its files in <data dir>/{entry.name}/ (for example ../shared/data/{entry.name}) "
                 "and pass --data-dir or set SCALING_DATA_DIR")
    if entry.url_base is not None:
        for code in wanted:
            for rel in entry.files(code):
                fetch_url(entry.url_base + rel, cached / rel)
    else:
        _download_sib200(entry, cached, codes)
    return cached


def _download_sib200(entry: RegisteredDataset, dest: Path, codes: Sequence[str] | None) -> None:
    """Write the hub's SIB-200 configs as the local ``<code>/<split>.tsv`` layout (atomically)."""
    import datasets

    names = list(codes) if codes else datasets.get_dataset_config_names(entry.hub_name)
    for code in names:
        for split in SIB_SPLITS:
            path = dest / code / f"{split}.tsv"
            if path.is_file():
                continue
            ds = fetch_hub_dataset(entry.hub_name, code, split if split != "dev" else "validation")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tsv.part")
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write("index_id\tcategory\ttext\n")
                for row in ds:
                    fh.write(f"{row['index_id']}\t{row['category']}\t{row['text']}\n")
            tmp.replace(path)


def _file_codes(entry: RegisteredDataset, languages: Sequence[str] | None) -> list[str] | None:
    """File codes for requested languages (any code style), or None for all."""
    if languages is None or not entry.file_codes:
        return list(languages) if languages else None
    by_canon = {canonical(c): c for c in entry.file_codes}
    missing = [lang for lang in languages if canonical(lang) not in by_canon]
    if missing:
        raise DataError(f"{entry.name} has no language(s) {missing}", file=entry.name,
                        hint=f"available: {', '.join(sorted(by_canon))}")
    return [by_canon[canonical(lang)] for lang in languages]


def _squad_files(folder: Path, entry: RegisteredDataset, codes: Sequence[str] | None) -> dict[str, Path]:
    present = [c for c in entry.file_codes if (folder / entry.files(c)[0]).is_file()]
    chosen = list(codes) if codes else present
    missing = [c for c in chosen if c not in present]
    if missing or not chosen:
        raise DataError(f"missing file(s) for language(s) {missing or 'any'}", file=folder,
                        hint=f"expected {', '.join(entry.files(c)[0] for c in (missing or entry.file_codes))}")
    return {c: folder / entry.files(c)[0] for c in chosen}


def _label(entry: RegisteredDataset, split: str | None) -> str:
    """How results name a registered source: with its split where the dataset has splits."""
    return f"{entry.name}:{split}" if entry.splits and split else entry.name


def _check_split(entry: RegisteredDataset, split: str | None) -> str | None:
    if split is not None and split not in entry.splits:
        raise DataError(f"unknown split {split!r} of {entry.name}", file=entry.name,
                        hint=f"choose from {entry.splits}" if entry.splits else "this dataset has no splits")
    return split or entry.default_split


# ---- corpora ------------------------------------------------------------------------------
def load_corpus(source: str, *, data_dir: str | Path | None = None, languages: Sequence[str] | None = None,
                passage: PassageUnit = "sentence", options: Mapping[str, Any] | None = None,
                where: str = "options") -> ParallelCorpus:
    """A training corpus from a source string (see the module docstring); ``options`` go to an
    adapter (``where`` names them in errors) and are refused by every other source."""
    name, split = parse_source(source)
    if name in ADAPTERS:
        corpus = load_adapter_corpus(name, split, data_dir=_resolve_data_dir(data_dir), options=options, where=where)
        return corpus.select_languages(languages) if languages else corpus
    if options:
        raise ValueError(f"{where}: source {source!r} takes no options (only the adapters "
                         f"{', '.join(sorted(ADAPTERS))} do)")
    if name in REGISTRY:
        entry = REGISTRY[name]
        split = _check_split(entry, split)
        codes = _file_codes(entry, languages)
        folder = locate(entry, directory=data_dir, codes=codes, split=split)
        if entry.kind == "tatoeba":
            return read_tatoeba_corpus(folder, codes)
        if entry.kind == "sib-200":
            return read_sib200_corpus(folder, codes, splits=(split,))
        files = _squad_files(folder, entry, codes)
        return read_squad_corpus(files, source=_label(entry, split), passage=passage,
                                 split_sentences=entry.kind == "squad-raw")
    corpus = _load_unregistered_corpus(source, passage=passage)
    return corpus.select_languages(languages) if languages else corpus


def _load_unregistered_corpus(source: str, *, passage: PassageUnit) -> ParallelCorpus:
    if source.startswith("hf:"):
        hub, _, split = source[3:].partition(":")
        ds = fetch_hub_dataset(hub, None, split or "train")
        return ParallelCorpus.from_table(ds.data.table, origin=source)
    if re.match(r"^(https?|file)://", source):
        suffix = Path(source.split("?")[0]).suffix
        if suffix not in TABULAR_SUFFIXES:
            raise DataError(f"cannot tell the format of URL (suffix {suffix!r})", file=source,
                            hint=f"URLs must end in {' or '.join(TABULAR_SUFFIXES)}")
        import hashlib

        key = hashlib.sha256(source.encode()).hexdigest()[:16]
        return read_tabular_corpus(fetch_url(source, cache_root() / "urls" / f"{key}{suffix}"))
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceNotFoundError(
            "no such file or folder, and not a registered dataset", file=source,
            hint=f"registered: {', '.join(sorted(REGISTRY))}; or a .jsonl/.parquet file, a folder, a URL, hf:NAME")
    if path.is_file():
        return read_tabular_corpus(path)
    kind = detect_folder(path)
    if kind == "tatoeba":
        return read_tatoeba_corpus(path)
    if kind == "sib-200":
        return read_sib200_corpus(path)
    if kind == "squad":
        return read_squad_corpus(squad_folder_files(path), source=path.name, passage=passage, split_sentences=True)
    raise DataError(f"a {kind} folder is a benchmark, not a training corpus", file=path)


def detect_folder(path: Path) -> str:
    names = {p.name for p in path.iterdir()}
    if "corpus.jsonl" in names or "corpus.jsonl.gz" in names:
        return "beir"
    if any(n.startswith("tatoeba.") for n in names):
        return "tatoeba"
    if any((path / n / "train.tsv").is_file() for n in names):
        return "sib-200"
    if any(n.endswith(".json") for n in names):
        return "squad"
    raise DataError("cannot tell what this folder holds", file=path,
                    hint="expected SQuAD <lang>.json files, Tatoeba files, SIB-200 language folders or a BEIR corpus.jsonl")


def squad_folder_files(path: Path) -> dict[str, Path]:
    """``{lang: file}`` for ``<lang>.json`` or ``<prefix>.<lang>.json`` files in a folder."""
    files = {}
    for p in sorted(path.glob("*.json")):
        code = p.stem.rsplit(".", 1)[-1]
        try:
            lang = canonical(code)
        except UnknownLanguageError as exc:
            raise DataError(f"the file name does not give its language ({exc})", file=p,
                            hint="name SQuAD files in a folder by language: rename it to <lang>.json or "
                                 "<prefix>.<lang>.json, e.g. en.json") from None
        if lang in files:
            raise DataError(f"two files for language {lang!r}: {files[lang].name} and {p.name}", file=path)
        files[lang] = p
    return files


# ---- benchmarks ---------------------------------------------------------------------------
BEIR_OPTIONS = ("lang", "query_lang", "corpus_lang", "split")


def beir_options(source: str) -> tuple[str, dict[str, str]]:
    """``folder?query_lang=ja&corpus_lang=en`` -> (folder, options); unknown options are errors."""
    from urllib.parse import parse_qsl

    from scaling.names import closest

    path, sep, query = source.partition("?")
    if not sep:
        return source, {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise DataError(f"cannot read the options {query!r}", file=path, hint="write ?key=value&key=value") from None
    options = dict(pairs)
    for key, value in pairs:
        if key not in BEIR_OPTIONS:
            close = closest(key, BEIR_OPTIONS)
            raise DataError(f"unknown option {key!r}" + (f" (did you mean {close!r}?)" if close else ""), file=path,
                            hint=f"a BEIR folder takes {', '.join(BEIR_OPTIONS)}")
        if not value:
            raise DataError(f"option {key!r} has no value", file=path)
    if "lang" in options and ({"query_lang", "corpus_lang"} & set(options)):
        raise DataError("give lang (both sides) or query_lang/corpus_lang, not both", file=path)
    return path, options


def load_benchmark(source: str, *, data_dir: str | Path | None = None, languages: Sequence[str] | None = None,
                   lang: str | None = None, qrels_split: str = "test") -> BenchmarkSuite:
    """A suite of retrieval benchmarks (``scaling.data.suites``): one for a pool, one per
    language for Tatoeba.

    ``parallel-qa`` defaults to its held-out ``eval`` split; ``xquad`` (raw) is split into sentences
    with ``sentence_splitter``, which adds Romanian to an XQuAD-R-style pool. ``sib-200`` is one
    merged pool of its ``test`` split (``scaling.data.sib_pool``). A BEIR folder needs its
    languages: ``lang``, or ``?lang=`` / ``?query_lang=&corpus_lang=`` in the source (``beir_options``),
    or a ``lang`` field on its records.
    """
    bare, subset = split_language_subset(source)
    if subset is not None:
        if languages is not None:
            raise DataError("languages given twice (in the source's ?languages= and as an argument)", file=source)
        try:
            languages = canonical_many(subset)
        except (UnknownLanguageError, ValueError) as exc:
            raise DataError(str(exc), file=source) from None
    name, split = parse_source(bare)
    if name in REGISTRY:
        entry = REGISTRY[name]
        split = _check_split(entry, split or entry.benchmark_split)
        codes = _file_codes(entry, languages)
        folder = locate(entry, directory=data_dir, codes=codes, split=split)
        if entry.kind == "tatoeba":
            return build_tatoeba(folder, codes, source=source)
        if entry.kind == "sib-200":
            return build_sib200_pool(folder, codes, split=split, name=_label(entry, split), source=source)
        return BenchmarkSuite.of(build_lareqa(_squad_files(folder, entry, codes), name=_label(entry, split),
                                              split_sentences=entry.kind == "squad-raw"), source)
    folder, options = beir_options(bare)
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise SourceNotFoundError("not a registered benchmark or a benchmark folder", file=source,
                                  hint=f"registered: {', '.join(sorted(REGISTRY))}")
    kind = detect_folder(path)
    if options and kind != "beir":
        raise DataError(f"options {sorted(options)} are for BEIR folders; this is a {kind} folder", file=path)
    if kind == "beir":
        langs = {k: options.get(k) for k in ("query_lang", "corpus_lang")}
        if not any(langs.values()):
            langs = {"query_lang": options.get("lang", lang), "corpus_lang": options.get("lang", lang)}
        return BenchmarkSuite.of(read_beir(path, **langs, split=options.get("split", qrels_split)), source)
    if kind == "tatoeba":
        return build_tatoeba(path, languages, source=source)
    if kind == "squad":
        return BenchmarkSuite.of(build_lareqa(squad_folder_files(path), name=path.name, split_sentences=True), source)
    if kind == "sib-200":
        return build_sib200_pool(path, languages, name=f"{path.name}:test", source=source)
    raise DataError(f"a {kind} folder is a training corpus, not a benchmark", file=path)
