"""Sentence splitting for SQuAD data that ships without sentence breaks (raw XQuAD, Romanian).

Wikimedia's ``sentencex`` covers the scripts with sentence punctuation (Latin, Cyrillic, Greek,
Arabic ``؟``, Devanagari ``।``, CJK ``。``); Thai has no sentence punctuation, so Thai goes to
PyThaiNLP's CRF model (``crfcut``), which ships inside the wheel and needs no download.
``splitter_agreement`` measures either against LAReQA's released breaks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

from scaling.data.squad import Span, SquadParagraph, split_paragraphs
from scaling.languages import canonical

__all__ = ["sentence_splitter", "SplitterAgreement", "splitter_agreement"]


def _to_spans(text: str, pieces: Sequence[str]) -> list[Span]:
    """Locate the splitter's pieces in ``text`` in order; spans exclude surrounding whitespace."""
    spans: list[Span] = []
    pos = 0
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        start = text.find(piece, pos)
        if start < 0:  # a splitter that rewrites text would break the span mapping
            raise RuntimeError(f"sentence splitter changed the text; cannot find {piece[:40]!r}")
        spans.append((start, start + len(piece)))
        pos = start + len(piece)
    if not spans:
        spans = [(0, len(text))]
    return spans


@functools.lru_cache(maxsize=None)
def sentence_splitter(lang: str) -> Callable[[str], list[Span]]:
    """A function text -> sentence spans for one language."""
    code = canonical(lang)
    if code.split("-")[0] == "th":
        from pythainlp.tokenize import sent_tokenize

        return lambda text: _to_spans(text, sent_tokenize(text, engine="crfcut"))
    from sentencex import segment

    base = code.split("-")[0]
    return lambda text: _to_spans(text, list(segment(base, text)))


@dataclass(frozen=True)
class SplitterAgreement:
    """How a splitter's sentences agree with reference breaks in one language."""

    lang: str
    paragraphs: int
    boundary_precision: float
    boundary_recall: float
    boundary_f1: float
    paragraph_exact: float  # share of paragraphs split exactly like the reference
    answer_sentence_exact: float  # share of questions whose answer sentence text is the same


def _boundaries(context: str, spans: Sequence[Span]) -> set[int]:
    # A boundary is where a sentence other than the first starts (after skipping whitespace),
    # so trailing-space conventions do not count as disagreements.
    out = set()
    for start, _ in spans[1:]:
        while start < len(context) and context[start].isspace():
            start += 1
        out.add(start)
    return out


def splitter_agreement(reference: Sequence[SquadParagraph], lang: str) -> SplitterAgreement:
    """Re-split paragraphs that carry reference breaks and compare the two."""
    predicted = split_paragraphs(reference, sentence_splitter(lang))
    tp = n_pred = n_ref = exact = 0
    q_same = q_total = 0
    for ref, pred in zip(reference, predicted):
        assert ref.spans is not None and pred.spans is not None
        b_ref, b_pred = _boundaries(ref.context, ref.spans), _boundaries(pred.context, pred.spans)
        tp += len(b_ref & b_pred)
        n_ref += len(b_ref)
        n_pred += len(b_pred)
        exact += b_ref == b_pred
        for q in ref.questions:
            r = ref.context[slice(*ref.spans[ref.answer_sentence(q, file="reference")])].strip()
            p = pred.context[slice(*pred.spans[pred.answer_sentence(q, file="split")])].strip()
            q_same += r == p
            q_total += 1
    precision = tp / n_pred if n_pred else 1.0
    recall = tp / n_ref if n_ref else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return SplitterAgreement(canonical(lang), len(reference), precision, recall, f1,
                             exact / max(len(reference), 1), q_same / max(q_total, 1))
