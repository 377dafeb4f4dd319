"""Canonical language codes and nested language subsets.

Every dataset names languages its own way: XQuAD uses ISO 639-1 (``de``), Tatoeba ISO 639-3
(``deu``), FLORES/SIB-200 ISO 639-3 plus script (``deu_Latn``). Studies join them, so the harness
maps every code to one canonical BCP 47 tag with the ``langcodes`` library (IANA registry plus
CLDR aliases; we do not maintain a code table of our own):

* the shortest language subtag (``deu`` -> ``de``), with the dominant member of a macrolanguage
  folded into it (``cmn`` -> ``zh``, ``arb`` -> ``ar``) so that XQuAD's ``zh`` meets Tatoeba's
  ``cmn``;
* the script only where it distinguishes something: it is dropped when it is the language's
  likely script (``deu_Latn`` -> ``de``, ``zho_Hans`` -> ``zh``) and kept otherwise
  (``zho_Hant`` -> ``zh-Hant``, ``arb_Latn`` -> ``ar-Latn``).

``langcodes`` folds two codes into languages that our data keeps separate (SIB-200 has both
``aka`` and ``twi``; Tatoeba both ``dtp`` and ``kzj``); ``_KEEP_DISTINCT`` keeps them apart.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import langcodes
from langcodes import Language

__all__ = [
    "UnknownLanguageError",
    "canonical",
    "canonical_many",
    "language_name",
    "LanguageOrdering",
]

# Codes langcodes would fold into another language, but which name distinct varieties that
# our sources ship side by side (folding them would merge two datasets into one language).
_KEEP_DISTINCT = {"twi": "tw", "tw": "tw", "kzj": "kzj"}


class UnknownLanguageError(ValueError):
    """A language code that is not in the IANA language subtag registry."""


@functools.lru_cache(maxsize=None)
def canonical(code: str) -> str:
    """Return the canonical tag of ``code`` (``de``, ``deu``, ``deu_Latn``, ``de-DE`` ...).

    Raises UnknownLanguageError naming the code if it is not a registered language.
    """
    if not isinstance(code, str) or not code.strip():
        raise UnknownLanguageError(f"empty or non-string language code: {code!r}")
    raw = code.strip().replace("_", "-")
    base, _, rest = raw.partition("-")
    if base.lower() in _KEEP_DISTINCT:
        raw = _KEEP_DISTINCT[base.lower()] + ("-" + rest if rest else "")
        tag = Language.get(raw, normalize=False)
    else:
        try:
            tag = Language.get(langcodes.standardize_tag(raw, macro=True))
        except (ValueError, langcodes.tag_parser.LanguageTagError) as exc:
            raise UnknownLanguageError(
                f"unknown language code {code!r}: not a BCP 47 / ISO 639 code ({exc})"
            ) from None
    if not tag.language or not tag.is_valid():
        raise UnknownLanguageError(
            f"unknown language code {code!r}: not in the IANA language subtag registry; "
            "use ISO 639-1 (de), ISO 639-3 (deu) or FLORES style (deu_Latn)"
        )
    if tag.script:
        plain = Language.make(language=tag.language, territory=tag.territory)
        if plain.maximize().script == tag.script:
            tag = Language.make(language=tag.language, territory=tag.territory, variants=tag.variants)
    return tag.to_tag()


def canonical_many(codes: Iterable[str]) -> list[str]:
    """Canonicalise a list of codes, refusing two codes that name the same language."""
    out: list[str] = []
    seen: dict[str, str] = {}
    for code in codes:
        c = canonical(code)
        if c in seen:
            raise ValueError(
                f"language codes {seen[c]!r} and {code!r} both mean {c!r}; list each language once"
            )
        seen[c] = code
        out.append(c)
    return out


def language_name(code: str) -> str:
    """English display name of a canonical code (for tables and figure labels)."""
    return Language.get(canonical(code)).display_name()


@dataclass(frozen=True)
class LanguageOrdering:
    """A declared order of languages from which nested study subsets are cut.

    ``first(k)`` is always a prefix of ``first(k + 1)``, so points on a "number of training
    languages" axis differ only by the languages added, never by a reshuffle.
    """

    languages: tuple[str, ...]
    name: str = "explicit"

    def __post_init__(self) -> None:
        object.__setattr__(self, "languages", tuple(canonical_many(self.languages)))
        if not self.languages:
            raise ValueError(f"language ordering {self.name!r} is empty")

    @classmethod
    def by_size(cls, sizes: Mapping[str, int], name: str = "by-size") -> "LanguageOrdering":
        """Order languages by available data, largest first; ties broken by code for stability."""
        canon = {}
        for code, size in sizes.items():
            c = canonical(code)
            canon[c] = canon.get(c, 0) + int(size)
        ordered = sorted(canon, key=lambda c: (-canon[c], c))
        return cls(tuple(ordered), name=name)

    def first(self, k: int) -> tuple[str, ...]:
        """The first k languages of the ordering (nested in first(k + 1))."""
        if not 1 <= k <= len(self.languages):
            raise ValueError(
                f"cannot take the first {k} languages of ordering {self.name!r}: "
                f"it has {len(self.languages)} (choose 1..{len(self.languages)})"
            )
        return self.languages[:k]

    def subsets(self, ks: Sequence[int]) -> dict[int, tuple[str, ...]]:
        """Nested subsets for several counts k."""
        return {k: self.first(k) for k in sorted(set(ks))}

    def select(self, languages: Sequence[str]) -> tuple[str, ...]:
        """An explicit subset, checked against the ordering and returned in its order."""
        wanted = canonical_many(languages)
        missing = [c for c in wanted if c not in self.languages]
        if missing:
            raise ValueError(
                f"languages {missing} are not in ordering {self.name!r} ({', '.join(self.languages)})"
            )
        return tuple(c for c in self.languages if c in set(wanted))
