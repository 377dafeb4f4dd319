"""Our canonical language codes onto a translation model's language tokens.

NLLB-200 names languages FLORES-style (``deu_Latn``) and selects them with special tokens of
that name; MADLAD-400 prefixes the source text with a target tag (``<2de>``). The supported set
is read from the tokenizer's vocabulary, so it is exactly what the checkpoint knows, and each
model code is mapped to our canonical code with ``scaling.languages.canonical``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from scaling.languages import UnknownLanguageError, canonical

STYLES = ("nllb", "madlad")
_PATTERNS = {"nllb": re.compile(r"^([a-z]{3}_[A-Z][a-z]{3})$"), "madlad": re.compile(r"^<2([A-Za-z][A-Za-z_-]*)>$")}


class UnsupportedLanguageError(ValueError):
    """A requested language that the translation model has no code for."""


def detect_style(vocab: Iterable[str]) -> str:
    """``nllb`` or ``madlad`` from the language tokens a vocabulary holds."""
    counts = {style: 0 for style in STYLES}
    for token in vocab:
        for style, pattern in _PATTERNS.items():
            if pattern.match(token):
                counts[style] += 1
    best = max(STYLES, key=lambda s: counts[s])
    if counts[best] == 0:
        raise ValueError("the tokenizer has no language tokens of NLLB style (deu_Latn) or MADLAD style (<2de>); "
                         "set model.style or use an NLLB-200 / MADLAD-400 checkpoint")
    return best


@dataclass(frozen=True)
class ModelCodes:
    """The languages one model supports: canonical code -> the model's code and its token."""

    model: str
    style: str
    codes: Mapping[str, str]  # canonical -> model code (deu_Latn, or de for <2de>)

    @classmethod
    def from_vocab(cls, vocab: Iterable[str], *, model: str, style: str = "auto",
                   overrides: Mapping[str, str] | None = None) -> "ModelCodes":
        vocab = list(vocab)
        style = detect_style(vocab) if style == "auto" else style
        if style not in STYLES:
            raise ValueError(f"setting model.style must be one of {('auto',) + STYLES}, got {style!r}")
        model_codes = sorted({m.group(1) for t in vocab if (m := _PATTERNS[style].match(t))})
        codes: dict[str, str] = {}
        for code in model_codes:
            try:
                lang = canonical(code)
            except UnknownLanguageError:
                continue  # a tag that names no registered language: reachable through overrides only
            # Two model codes for one language: keep the first (sorted), overrides choose another.
            codes.setdefault(lang, code)
        for ours, theirs in (overrides or {}).items():
            if theirs not in model_codes:
                raise UnsupportedLanguageError(
                    f"setting model.code_overrides maps {ours!r} to {theirs!r}, which model {model!r} does not have "
                    f"(it has {len(model_codes)} language codes, e.g. {', '.join(model_codes[:5])})")
            codes[canonical(ours)] = theirs
        return cls(model=model, style=style, codes=codes)

    def token(self, model_code: str) -> str:
        """The vocabulary token that selects a model code."""
        return model_code if self.style == "nllb" else f"<2{model_code}>"

    def resolve(self, languages: Sequence[str], *, setting: str) -> dict[str, str]:
        """``{canonical: model code}`` for ``languages``; every unsupported one named in one error."""
        out, missing = {}, []
        for lang in languages:
            c = canonical(lang)
            if c in self.codes:
                out[c] = self.codes[c]
            else:
                missing.append(lang)
        if missing:
            raise UnsupportedLanguageError(
                f"setting {setting}: language(s) {missing} not supported by translation model {self.model!r} "
                f"({self.style} codes; it supports {len(self.codes)} languages). Drop them, pick another model, "
                "or map them with model.code_overrides (our code -> model code)")
        return out
