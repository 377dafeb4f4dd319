"""Training sets of several sources with weights: the entries of ``data.train``.

An entry is a source string (weight 1, no options) or a mapping
``{source: belebele:train, weight: 2.0, options: {positive: answer}}``. A weight multiplies the
source's rows wherever the sampler counts or draws them: a language's size for
``language_sampling: size`` (p ~ (sum of its rows' weights) ** (1 / temperature)), a row's
chance within its language's X-X batch, a group's chance in an X-Y batch (the mean weight of its
rows in the training languages). So ``weight: 2`` on bitext makes its groups twice as likely as
a QA group in X-Y batches, and does nothing to X-X batches, where bitext has no pairs. Options go
to the source's adapter (``scaling.data.adapters``); every other source takes none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

ENTRY_KEYS = ("source", "weight", "options")


@dataclass(frozen=True)
class SourceSpec:
    """One weighted training source; plain strings in ``data.train`` stay strings (weight 1)."""

    source: str
    weight: float = 1.0
    options: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How results name the entry: the source, then its weight and options where set."""
        extra = [f"weight {self.weight:g}"] if self.weight != 1 else []
        extra += [f"{k}={v}" for k, v in sorted(self.options.items())]
        return f"{self.source} ({', '.join(extra)})" if extra else self.source


def as_spec(entry: str | SourceSpec) -> SourceSpec:
    return entry if isinstance(entry, SourceSpec) else SourceSpec(entry)


def parse_entry(entry: Any, where: str) -> str | SourceSpec:
    """A ``data.train`` entry checked: strings stay strings; mappings become ``SourceSpec``."""
    if isinstance(entry, SourceSpec):
        entry = {"source": entry.source, "weight": entry.weight, "options": entry.options}
    if isinstance(entry, str):
        if not entry.strip():
            raise ValueError(f"{where} is an empty source")
        return entry
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where} should be a source string or {{source, weight, options}}, not {entry!r}")
    unknown = [k for k in entry if k not in ENTRY_KEYS]
    if unknown:
        from scaling.names import closest

        close = closest(str(unknown[0]), ENTRY_KEYS)
        raise ValueError(f"unknown setting {where}.{unknown[0]}" + (f" (did you mean {where}.{close}?)" if close else "")
                         + f"; an entry takes {list(ENTRY_KEYS)} (adapter options go under {where}.options)")
    source = entry.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"{where}.source should be a source string, not {source!r}")
    weight = entry.get("weight", 1.0)
    if isinstance(weight, str):
        try:
            weight = float(weight)
        except ValueError:
            raise ValueError(f"{where}.weight should be a number > 0, not {weight!r}") from None
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
        raise ValueError(f"{where}.weight must be a number > 0, not {weight!r} (leave a source out instead of "
                         "giving it weight 0)")
    options = entry.get("options") or {}
    if not isinstance(options, Mapping):
        raise ValueError(f"{where}.options should be a mapping of adapter options, not {options!r}")
    check_options(source, dict(options), f"{where}.options")
    return SourceSpec(source, float(weight), dict(options))


def check_options(source: str, options: dict, where: str) -> None:
    """Option names and values against the source's adapter, without reading any data."""
    from scaling.data.sources import ADAPTERS, parse_source

    name, _ = parse_source(source)
    if name in ADAPTERS:
        ADAPTERS[name].make_options(options, where)
    elif options:
        raise ValueError(f"{where}: source {source!r} takes no options (only the adapters "
                         f"{', '.join(sorted(ADAPTERS))} do)")


def parse_entries(entries: Sequence[Any], where: str = "data.train") -> tuple[str | SourceSpec, ...]:
    out = tuple(parse_entry(e, f"{where}[{i}]") for i, e in enumerate(entries))
    if not out:
        raise ValueError(f"{where} is empty: list at least one training source")
    seen: dict[str, int] = {}
    for i, e in enumerate(out):
        key = as_spec(e).source
        if key in seen:
            raise ValueError(f"{where}[{i}] repeats source {key!r} of {where}[{seen[key]}]; give it one entry "
                             "(use weight to count it more)")
        seen[key] = i
    return out


def source_weights(entries: Sequence[str | SourceSpec]) -> dict[str, float] | None:
    """``{source string: weight}`` for a mix (rows are labelled by their entry's source), or None
    when there is one source or all weights are equal (the unweighted draws apply)."""
    specs = [as_spec(e) for e in entries]
    if len(specs) < 2 or len({s.weight for s in specs}) == 1:
        return None
    return {s.source: s.weight for s in specs}


# ---- loading a mix ---------------------------------------------------------------------------
def mix_sources(specs: Sequence[SourceSpec], *, data_dir: str | None, passage: str, load=None):
    """One corpus of every entry; in a mix of two or more, each row's ``source`` becomes its
    entry's source string, which the sampler's weights and the realised counts are keyed by.
    ``load``: the corpus loader (default ``scaling.data.sources.load_corpus``)."""
    import pyarrow as pa

    from scaling.data.corpus import CORPUS_SCHEMA, ParallelCorpus

    if load is None:
        from scaling.data.sources import load_corpus as load
    corpora = [load(s.source, data_dir=data_dir, passage=passage, options=s.options or None,
                           where=f"data.train[{i}].options") for i, s in enumerate(specs)]
    if len(corpora) == 1:
        return corpora[0]
    column = CORPUS_SCHEMA.get_field_index("source")
    labelled = [ParallelCorpus(c.table.set_column(column, CORPUS_SCHEMA.field("source"),
                                                  pa.array([s.source] * len(c), pa.string())))
                for s, c in zip(specs, corpora)]
    return ParallelCorpus.concat(labelled, origin="data.train (the sources together)")


def languages_by_source(specs: Sequence[SourceSpec], corpus) -> dict[str, tuple[str, ...]]:
    """The languages each entry contributes to ``corpus`` (as ``mix_sources`` labelled it)."""
    if len(specs) == 1:
        return {specs[0].source: corpus.languages}
    out: dict[str, set[str]] = {s.source: set() for s in specs}
    for source, lang in zip(corpus.table.column("source").to_pylist(), corpus.table.column("lang").to_pylist()):
        out.setdefault(source, set()).add(lang)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def check_source_languages(specs: Sequence[SourceSpec], corpus, languages: Sequence[str] | None) -> None:
    """Every entry must have data in at least one requested training language (``data.languages``)."""
    if languages is None:
        return
    from scaling.languages import canonical

    wanted = [canonical(x) for x in languages]
    per_source = languages_by_source(specs, corpus)
    for i, spec in enumerate(specs):
        have = per_source.get(spec.source, ())
        if not set(have) & set(wanted):
            raise ValueError(f"data.train[{i}] {spec.label!r} has no data in any of data.languages {wanted} "
                             f"(its languages: {', '.join(have) or 'none'}); drop it from data.train or train on "
                             "one of its languages")
