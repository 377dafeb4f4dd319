"""Bitext training corpora: Tatoeba (LASER test sets) and SIB-200 / FLORES-200.

In bitext the query and the passage of a row are the same sentence; cross-lingual pairs come from
two rows of one group. Tatoeba is English-pivot only and its English sides differ per file, so
each (language, line) is its own group with an English row; SIB-200 is N-way parallel, so one
``index_id`` is one group across all languages.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from scaling.data.corpus import ParallelCorpus
from scaling.data.errors import DataError
from scaling.languages import UnknownLanguageError, canonical

TATOEBA_FILE = re.compile(r"^tatoeba\.([a-z]{3})-eng\.\1$")
SIB_SPLITS = ("train", "dev", "test")
# Where a layout's language code comes from: (what is named, its path, how to name it instead).
_NAMED_BY = {
    "Tatoeba": lambda d, c: ("file", d / f"tatoeba.{c}-eng.{c}",
                             f"rename tatoeba.{c}-eng.{c} and tatoeba.{c}-eng.eng to an ISO 639-3 code, "
                             "e.g. tatoeba.deu-eng.deu and tatoeba.deu-eng.eng"),
    "SIB-200": lambda d, c: ("folder", d / c, "rename the folder to its FLORES-200 code, e.g. deu_Latn"),
}


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=path) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


# ---- Tatoeba ---------------------------------------------------------------------------------
def tatoeba_languages(directory: Path) -> list[str]:
    """The ISO 639-3 codes of the Tatoeba files in a directory (as named in the files)."""
    return sorted(m.group(1) for p in directory.iterdir() if (m := TATOEBA_FILE.match(p.name)))


def read_tatoeba_pair(directory: Path, code: str) -> tuple[list[str], list[str]]:
    """The aligned (xxx, eng) sentences of one Tatoeba language; line counts must agree."""
    src, eng = directory / f"tatoeba.{code}-eng.{code}", directory / f"tatoeba.{code}-eng.eng"
    for path in (src, eng):
        if not path.is_file():
            raise DataError("file not found", file=path,
                            hint=f"Tatoeba language {code!r} needs both tatoeba.{code}-eng.{code} and tatoeba.{code}-eng.eng")
    xs, es = _read_lines(src), _read_lines(eng)
    if len(xs) != len(es):
        raise DataError(f"has {len(xs)} lines but {eng.name} has {len(es)}; the files must be line-aligned",
                        file=src)
    for path, lines in ((src, xs), (eng, es)):
        for i, line in enumerate(lines):
            if not line.strip():
                raise DataError("empty sentence", file=path, record=f"line {i + 1}")
    return xs, es


def read_tatoeba_corpus(directory: Path, languages: Sequence[str] | None = None) -> ParallelCorpus:
    codes = pick_language_codes(tatoeba_languages(directory), languages, directory, "Tatoeba")
    rows, records = [], []
    for code in codes:
        xs, es = read_tatoeba_pair(directory, code)
        for i, (x, e) in enumerate(zip(xs, es)):
            gid = f"tatoeba/{code}/{i}"
            rows += [{"group_id": gid, "lang": code, "query": x, "passage": x, "source": "tatoeba"},
                     {"group_id": gid, "lang": "eng", "query": e, "passage": e, "source": "tatoeba"}]
            records += [f"tatoeba.{code}-eng.{code} line {i + 1}", f"tatoeba.{code}-eng.eng line {i + 1}"]
    return ParallelCorpus.from_rows(rows, origin=str(directory), record_ids=records)


# ---- SIB-200 / FLORES ---------------------------------------------------------------------------
def sib200_languages(directory: Path) -> list[str]:
    """The FLORES codes (``deu_Latn``) of the language folders in a SIB-200 directory."""
    return sorted(p.name for p in directory.iterdir() if p.is_dir() and "_" in p.name)


def read_sib200_split(path: Path) -> list[tuple[str, str, str]]:
    """Rows (index_id, category, text) of one ``<lang>/<split>.tsv``; ids must be unique."""
    lines = _read_lines(path)
    if not lines or lines[0].split("\t") != ["index_id", "category", "text"]:
        raise DataError("header should be 'index_id<TAB>category<TAB>text'", file=path, record="line 1")
    rows, seen = [], {}
    for n, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        if len(parts) != 3:
            raise DataError(f"expected 3 tab-separated fields, found {len(parts)}", file=path, record=f"line {n}")
        index_id, category, text = parts
        if not index_id.strip() or not text.strip():
            raise DataError("empty index_id or text", file=path, record=f"line {n}")
        if index_id in seen:
            raise DataError(f"duplicate index_id {index_id!r} (also line {seen[index_id]})", file=path,
                            record=f"line {n}")
        seen[index_id] = n
        rows.append((index_id, category, text))
    return rows


def read_sib200_corpus(directory: Path, languages: Sequence[str] | None = None,
                       splits: Sequence[str] = ("train",)) -> ParallelCorpus:
    bad = [s for s in splits if s not in SIB_SPLITS]
    if bad:
        raise ValueError(f"unknown SIB-200 split(s) {bad}; choose from {SIB_SPLITS}")
    codes = pick_language_codes(sib200_languages(directory), languages, directory, "SIB-200")
    rows, records = [], []
    for code in codes:
        for split in splits:
            path = directory / code / f"{split}.tsv"
            if not path.is_file():
                raise DataError("file not found", file=path, hint=f"SIB-200 language {code} lacks split {split!r}")
            for index_id, _category, text in read_sib200_split(path):
                rows.append({"group_id": f"flores/{index_id}", "lang": code, "query": text, "passage": text,
                             "source": "sib-200"})
                records.append(f"{code}/{split}.tsv index_id {index_id}")
    return ParallelCorpus.from_rows(rows, origin=str(directory), record_ids=records)


def pick_language_codes(available: list[str], wanted: Sequence[str] | None, directory: Path, name: str) -> list[str]:
    """Map requested languages (any code style) onto the file codes of a directory."""
    if not available:
        raise DataError(f"no {name} files found", file=directory)
    by_canon: dict[str, str] = {}
    for code in available:
        try:
            c = canonical(code)
        except UnknownLanguageError as exc:
            what, path, hint = _NAMED_BY.get(name, lambda d, c: ("file", d / c, "name it by its language"))(directory, code)
            raise DataError(f"the {what} name does not give its language ({exc})", file=path, hint=hint) from None
        if c in by_canon:
            raise DataError(f"{by_canon[c]!r} and {code!r} both mean language {c!r}", file=directory)
        by_canon[c] = code
    if wanted is None:
        return available
    missing = [w for w in wanted if canonical(w) not in by_canon]
    if missing:
        raise DataError(f"{name} has no data for {missing}", file=directory,
                        hint=f"available: {', '.join(sorted(by_canon))}")
    return [by_canon[canonical(w)] for w in wanted]
