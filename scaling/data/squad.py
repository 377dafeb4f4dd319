"""Parse and validate SQuAD-format JSON (XQuAD, XQuAD-R, MLQA-R and our own parallel QA set).

One parser feeds both the training-corpus reader and the LAReQA benchmark builder, so a file is
validated the same way whichever way it is used. Files with ``sentence_breaks`` (LAReQA's
release) carry their own sentences; raw SQuAD files get them from a ``SentenceSplitter``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from scaling.data.errors import DataError

Span = tuple[int, int]


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    question: str
    answer_start: int
    answer_text: str
    record: str  # where it is in the file, for error messages


@dataclass(frozen=True)
class SquadParagraph:
    title: str
    context: str
    questions: tuple[SquadQuestion, ...]
    record: str
    # Character spans of the sentences in ``context`` and their texts; None until split.
    spans: tuple[Span, ...] | None = None
    sentences: tuple[str, ...] | None = None

    def answer_sentence(self, question: SquadQuestion, *, file: str | Path) -> int:
        """Index of the sentence that holds the answer's first character (LAReQA's rule).

        An answer that runs past the end of its sentence still belongs to the sentence where it
        starts; an answer start outside every sentence is an error.
        """
        if self.spans is None:
            raise DataError("paragraph has no sentence breaks", file=file, record=self.record,
                            hint="read it with a sentence splitter (the raw SQuAD reader)")
        for i, (start, end) in enumerate(self.spans):
            if start <= question.answer_start < end:
                return i
        raise DataError(
            f"answer_start {question.answer_start} of question {question.id!r} lies outside every "
            f"sentence break {list(self.spans)}", file=file, record=question.record,
            hint="fix the sentence_breaks or the answer_start")


def _require(obj: Any, key: str, kind: type | tuple[type, ...], *, file: Path, record: str) -> Any:
    if not isinstance(obj, dict):
        raise DataError(f"expected a JSON object, found {type(obj).__name__}", file=file, record=record)
    if key not in obj:
        raise DataError(f"missing field {key!r}", file=file, record=record)
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataError(f"field {key!r} should be {getattr(kind, '__name__', kind)}, found "
                        f"{type(value).__name__}", file=file, record=record)
    return value


def _nonempty(text: str, field: str, *, file: Path, record: str) -> str:
    if not text.strip():
        raise DataError(f"field {field!r} is empty", file=file, record=record)
    return text


def read_squad_json(path: str | Path) -> list[SquadParagraph]:
    """Read a SQuAD v1.1-style file into validated paragraphs.

    Sentence breaks are taken when present (``sentence_breaks`` plus optional ``sentences``).
    Errors name the file and the record path, for example ``data[3].paragraphs[1].qas[0]``.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", file=path) from None
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=path) from None
    articles = _require(doc, "data", list, file=path, record="top level")
    paragraphs: list[SquadParagraph] = []
    seen_ids: dict[str, str] = {}
    for a, article in enumerate(articles):
        arec = f"data[{a}]"
        title = article.get("title", "") if isinstance(article, dict) else ""
        for p, para in enumerate(_require(article, "paragraphs", list, file=path, record=arec)):
            prec = f"{arec}.paragraphs[{p}]"
            context = _nonempty(_require(para, "context", str, file=path, record=prec), "context",
                                file=path, record=prec)
            questions = []
            for q, qa in enumerate(_require(para, "qas", list, file=path, record=prec)):
                qrec = f"{prec}.qas[{q}]"
                qid = str(_require(qa, "id", (str, int), file=path, record=qrec))
                qrec = f"{qrec} (id {qid})"
                if qid in seen_ids:
                    raise DataError(f"duplicate question id {qid!r}; first at {seen_ids[qid]}",
                                    file=path, record=qrec, hint="question ids must be unique within a file")
                seen_ids[qid] = qrec
                question = _nonempty(_require(qa, "question", str, file=path, record=qrec), "question",
                                     file=path, record=qrec)
                answers = _require(qa, "answers", list, file=path, record=qrec)
                if not answers:
                    raise DataError("question has no answer", file=path, record=qrec)
                start = _require(answers[0], "answer_start", int, file=path, record=f"{qrec}.answers[0]")
                text = _nonempty(_require(answers[0], "text", str, file=path, record=f"{qrec}.answers[0]"),
                                 "text", file=path, record=f"{qrec}.answers[0]")
                if context[start:start + len(text)] != text:
                    raise DataError(
                        f"answer text {text!r} is not at answer_start {start} of the context "
                        f"(found {context[start:start + len(text)]!r})", file=path, record=qrec)
                questions.append(SquadQuestion(qid, question, start, text, qrec))
            spans = sentences = None
            if isinstance(para, dict) and "sentence_breaks" in para:
                spans, sentences = _read_breaks(para, context, file=path, record=prec)
            paragraphs.append(SquadParagraph(str(title), context, tuple(questions), prec, spans, sentences))
    if not paragraphs:  # read on, its language would silently drop out of the corpus or benchmark
        raise DataError("the file holds no paragraphs ('data' is empty or its articles have none)", file=path,
                        hint="restore its articles from the original dataset, or delete the file to leave its language out")
    return paragraphs


def _read_breaks(para: dict, context: str, *, file: Path, record: str) -> tuple[tuple[Span, ...], tuple[str, ...]]:
    raw = para["sentence_breaks"]
    spans: list[Span] = []
    for i, item in enumerate(raw if isinstance(raw, list) else [None]):
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(v, int) for v in item)
                and 0 <= item[0] < item[1] <= len(context)):
            raise DataError(f"sentence_breaks[{i}] = {item!r} is not a [start, end] span inside the "
                            f"context (length {len(context)})", file=file, record=record)
        if spans and item[0] < spans[-1][1]:
            raise DataError(f"sentence_breaks[{i}] = {item} overlaps the previous break {list(spans[-1])}",
                            file=file, record=record)
        spans.append((item[0], item[1]))
    if "sentences" in para:
        sentences = para["sentences"]
        if not isinstance(sentences, list) or len(sentences) != len(spans):
            raise DataError(f"'sentences' has {len(sentences) if isinstance(sentences, list) else '?'} "
                            f"entries but 'sentence_breaks' has {len(spans)}", file=file, record=record)
    else:
        sentences = [context[s:e] for s, e in spans]
    for i, s in enumerate(sentences):
        if not isinstance(s, str) or not s.strip():
            raise DataError(f"sentence {i} is empty", file=file, record=record)
    return tuple(spans), tuple(sentences)


def split_paragraphs(paragraphs: Sequence[SquadParagraph], split: Callable[[str], list[Span]]
                     ) -> list[SquadParagraph]:
    """Give paragraphs without breaks their sentences from a splitter (spans into the context)."""
    out = []
    for para in paragraphs:
        spans = tuple(split(para.context))
        out.append(replace(para, spans=spans, sentences=tuple(para.context[s:e] for s, e in spans)))
    return out
