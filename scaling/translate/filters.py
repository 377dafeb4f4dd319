"""Checks that drop bad translations: empty output, length ratio out of bounds, wrong language.

The language check uses ``py3langid`` (a maintained fork of langid.py whose model ships inside
the wheel, 140 languages, no download): the optional extra ``translate``. A row is dropped for
the first check that fails on its query or its passage, in the order of ``REASONS``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

from scaling.languages import UnknownLanguageError, canonical

REASONS = ("empty", "length_ratio", "langid")
KEPT = "kept"
LANGID_PACKAGE = "py3langid"
# Identifier labels whose canonical code differs from the one our data uses for that language.
_IDENTIFIER_ALIASES = {"no": "nb"}


@dataclass(frozen=True)
class FilterSettings:
    """Bounds on len(output) / len(input) in characters, and whether to check the language."""

    min_length_ratio: float = 0.2
    max_length_ratio: float = 5.0
    langid: bool = True
    # what to do with target languages the identifier does not know: "error" or "skip" (unchecked)
    langid_unsupported: str = "error"

    def __post_init__(self) -> None:
        if not 0 <= self.min_length_ratio < self.max_length_ratio:
            raise ValueError(f"settings filters.min_length_ratio ({self.min_length_ratio}) and filters.max_length_ratio "
                             f"({self.max_length_ratio}) need 0 <= min < max")
        if self.langid_unsupported not in ("error", "skip"):
            raise ValueError(f"setting filters.langid_unsupported must be 'error' or 'skip', got {self.langid_unsupported!r}")


class LanguageIdentifier:
    """py3langid's bundled model, answering with our canonical codes."""

    def __init__(self) -> None:
        try:
            from py3langid.langid import MODEL_FILE
            from py3langid.langid import LanguageIdentifier as _Identifier
        except ImportError:
            raise ImportError(
                f"filters.langid is on but {LANGID_PACKAGE!r} is not installed: pip install 'hybrid-scaling[translate]' "
                "(or set filters.langid=false to translate without the language check)") from None
        self._model = _Identifier.from_model_file(MODEL_FILE, norm_probs=True)
        self.labels = {}
        for label in self._model.labels:
            try:
                self.labels[_canon(label)] = label
            except UnknownLanguageError:
                pass  # 'zxx' (no linguistic content) and the like

    @property
    def name(self) -> str:
        import importlib.metadata as md

        return f"{LANGID_PACKAGE}=={md.version(LANGID_PACKAGE)}"

    def supports(self, lang: str) -> bool:
        return canonical(lang) in self.labels

    def identify(self, text: str) -> str:
        label, _ = self._model.classify(text)
        try:
            return _canon(label)
        except UnknownLanguageError:
            return label


@functools.lru_cache(maxsize=None)
def _canon(label: str) -> str:
    return canonical(_IDENTIFIER_ALIASES.get(label, label))


def same_language(found: str, expected: str) -> bool:
    """Equal canonical codes, or the same language subtag where one side has no script or region."""
    if found == expected:
        return True
    return found.split("-")[0] == expected.split("-")[0] and ("-" not in found or "-" not in expected)


class OutputFilter:
    """Applies the checks to one (source text, output text) pair at a time."""

    def __init__(self, settings: FilterSettings, targets: Sequence[str]) -> None:
        self.settings = settings
        self.identifier = LanguageIdentifier() if settings.langid else None
        self.unchecked: tuple[str, ...] = ()
        if self.identifier is not None:
            self.unchecked = tuple(t for t in targets if not self.identifier.supports(t))
            if self.unchecked and settings.langid_unsupported == "error":
                raise ValueError(
                    f"the language identifier ({self.identifier.name}) does not know target language(s) "
                    f"{list(self.unchecked)}: set filters.langid_unsupported=skip to leave them unchecked, "
                    "or filters.langid=false")

    def check(self, pairs: Sequence[tuple[str, str]], lang: str) -> str:
        """``kept``, or the first reason (in the order of ``REASONS``) that fails on any of the
        (source text, output) ``pairs`` of one row (its query and its passage)."""
        if any(not out.strip() for _, out in pairs):
            return "empty"
        lo, hi = self.settings.min_length_ratio, self.settings.max_length_ratio
        if any(not lo <= len(out) / max(1, len(src)) <= hi for src, out in pairs):
            return "length_ratio"
        if self.identifier is not None and lang not in self.unchecked:
            if any(not same_language(self.identifier.identify(out), lang) for _, out in pairs):
                return "langid"
        return KEPT

    def describe(self) -> dict:
        return {"min_length_ratio": self.settings.min_length_ratio, "max_length_ratio": self.settings.max_length_ratio,
                "langid": self.settings.langid, "langid_unsupported": self.settings.langid_unsupported,
                "identifier": self.identifier.name if self.identifier else None,
                "unchecked_languages": list(self.unchecked), "order": list(REASONS)}
