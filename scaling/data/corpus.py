"""The parallel training corpus: an Arrow table with one row per (group, language).

A *group* holds translations of one item (a question and its answer sentence, or one sentence of
a bitext). Samplers pair the query of one row with the passage of another row of the same group to
make cross-lingual pairs, so the table never stores language pairs itself. In bitext rows the
query and the passage are the same sentence, which is how ``is_bitext`` is derived.
"""

from __future__ import annotations

import collections
import hashlib
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from scaling.data.errors import DataError
from scaling.languages import UnknownLanguageError, canonical

CORPUS_SCHEMA = pa.schema(
    [
        pa.field("group_id", pa.string(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("query", pa.string(), nullable=False),
        pa.field("passage", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        # Article title where the source has one; used by the zero-shot overlap check.
        pa.field("title", pa.string(), nullable=True),
    ]
)
REQUIRED_COLUMNS = ("group_id", "lang", "query", "passage", "source")


def columns_fingerprint(*parts: tuple[pa.Table, Sequence[str]]) -> str:
    """A content hash of text columns of one or more tables, independent of chunking."""
    h = hashlib.blake2b(digest_size=16)
    for table, columns in parts:
        for col in columns:
            column = table.column(col)
            for start in range(0, len(column), 65_536):  # a slice's strings at a time, not a whole pool's
                for value in column.slice(start, 65_536).to_pylist():
                    h.update(value.encode())
                    h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class LanguageStats:
    lang: str
    pairs: int  # rows: monolingual (query, passage) pairs in this language
    cross_pairs: int  # pairs with the query in this language and the passage in another


@dataclass(frozen=True)
class ParallelCorpus:
    """A validated training corpus; build it with ``from_rows`` or ``from_table``."""

    table: pa.Table

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, object]], *, origin: str,
                  record_ids: Sequence[str] | None = None) -> "ParallelCorpus":
        """Validate rows given as dicts in the canonical columns (``title`` optional)."""
        unknown = sorted({k for r in rows for k in r} - set(CORPUS_SCHEMA.names))
        if unknown:
            raise DataError(f"unknown field(s) {unknown}; a corpus row has {CORPUS_SCHEMA.names}", file=origin)
        table = pa.Table.from_pylist([dict(r) for r in rows], schema=CORPUS_SCHEMA)
        return cls.from_table(table, origin=origin, record_ids=record_ids)

    @classmethod
    def from_table(cls, table: pa.Table, *, origin: str, record_ids: Sequence[str] | None = None
                   ) -> "ParallelCorpus":
        """Validate a table in the canonical columns; ``origin`` names the file in errors.

        ``record_ids`` (same length as the table) lets errors point at the input record, for
        example ``line 17``; by default the row number is used.
        """
        missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
        if missing:
            raise DataError(
                f"missing column(s) {missing}; a corpus needs {list(REQUIRED_COLUMNS)}"
                " (and optionally 'title')", file=origin)
        unknown = [c for c in table.column_names if c not in CORPUS_SCHEMA.names]
        if unknown:
            raise DataError(f"unknown column(s) {unknown}; a corpus has {CORPUS_SCHEMA.names}", file=origin,
                            hint="drop or rename them (extra metadata is not carried through training)")
        if "title" not in table.column_names:
            table = table.append_column("title", pa.nulls(len(table), pa.string()))
        table = table.select([f.name for f in CORPUS_SCHEMA])
        try:
            table = table.cast(CORPUS_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise DataError(f"columns do not have string types: {exc}", file=origin) from None

        def rec(i: int) -> str:
            return record_ids[i] if record_ids is not None else f"row {i}"

        cols = {name: table.column(name).to_pylist() for name in REQUIRED_COLUMNS}
        canon_langs = []
        seen: dict[tuple[str, str], int] = {}
        for i in range(len(table)):
            for name in REQUIRED_COLUMNS:
                value = cols[name][i]
                if value is None or not str(value).strip():
                    raise DataError(f"field {name!r} is empty", file=origin, record=rec(i),
                                    hint="every row needs a non-empty group_id, lang, query, passage, source")
            try:
                lang = canonical(cols["lang"][i])
            except UnknownLanguageError as exc:
                raise DataError(str(exc), file=origin, record=rec(i)) from None
            key = (cols["group_id"][i], lang)
            if key in seen:
                raise DataError(
                    f"duplicate (group_id, lang) = {key}; also at {rec(seen[key])}",
                    file=origin, record=rec(i),
                    hint="a group holds one row per language; give translations of different items different group ids")
            seen[key] = i
            canon_langs.append(lang)
        table = table.set_column(1, CORPUS_SCHEMA.field("lang"), pa.array(canon_langs, pa.string()))
        return cls(table)

    @classmethod
    def concat(cls, corpora: Sequence["ParallelCorpus"], *, origin: str = "concatenated corpora"
               ) -> "ParallelCorpus":
        """Join corpora; group ids must not collide across them (prefix them by source if needed)."""
        return cls.from_table(pa.concat_tables([c.table for c in corpora]), origin=origin)

    # ---- views ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.table)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.table.column("lang").to_pylist())))

    def fingerprint(self) -> str:
        """Hash of the training content (group, language, query, passage), recorded with results."""
        return columns_fingerprint((self.table, ("group_id", "lang", "query", "passage")))

    @property
    def num_groups(self) -> int:
        return len(pc.unique(self.table.column("group_id")))

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.table.column("source").to_pylist())))

    @property
    def is_bitext(self) -> bool:
        """True when every row's query equals its passage (no monolingual pairs can be made)."""
        eq = pc.equal(self.table.column("query"), self.table.column("passage"))
        return len(self.table) > 0 and pc.all(eq).as_py()

    def language_stats(self) -> list[LanguageStats]:
        """Monolingual and cross-lingual pairs per language, most data first."""
        langs = self.table.column("lang").to_pylist()
        per_group = collections.Counter(self.table.column("group_id").to_pylist())
        mono = collections.Counter(langs)
        cross = collections.Counter()
        for gid, lang in zip(self.table.column("group_id").to_pylist(), langs):
            cross[lang] += per_group[gid] - 1
        return [LanguageStats(lang, n, cross[lang]) for lang, n in sorted(mono.items(), key=lambda kv: (-kv[1], kv[0]))]

    def group_sizes(self) -> collections.Counter:
        """How many groups have 1, 2, ... language versions (only groups with >= 2 give X-Y pairs)."""
        per_group = collections.Counter(self.table.column("group_id").to_pylist())
        return collections.Counter(per_group.values())

    def cross_lingual_pairs(self) -> int:
        """Number of ordered (query language, passage language) pairs available, X != Y."""
        return sum(count * n * (n - 1) for n, count in self.group_sizes().items())

    # ---- selection ------------------------------------------------------------------------
    def select_languages(self, languages: Sequence[str]) -> "ParallelCorpus":
        wanted = [canonical(c) for c in languages]
        absent = sorted(set(wanted) - set(self.languages))
        if absent:
            raise ValueError(f"languages {absent} are not in this corpus (it has {list(self.languages)})")
        mask = pc.is_in(self.table.column("lang"), value_set=pa.array(wanted, pa.string()))
        return ParallelCorpus(self.table.filter(mask))

    def drop_groups(self, group_ids: Iterable[str]) -> "ParallelCorpus":
        ids = pa.array(sorted(set(group_ids)), pa.string())
        mask = pc.invert(pc.is_in(self.table.column("group_id"), value_set=ids))
        return ParallelCorpus(self.table.filter(mask))
