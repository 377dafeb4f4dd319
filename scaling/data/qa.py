"""Training corpora from SQuAD-format QA files, one file per language.

The question is the query; the passage is the sentence holding the answer (LAReQA's unit, the
default) or the whole paragraph. The group is the question id, which XQuAD, XQuAD-R, MLQA-R and
our own parallel QA set share across the language versions of a question.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Mapping

from scaling.data.corpus import ParallelCorpus
from scaling.data.errors import DataError
from scaling.data.sentences import sentence_splitter
from scaling.data.squad import SquadParagraph, read_squad_json, split_paragraphs

PassageUnit = Literal["sentence", "paragraph"]


def ensure_sentences(paragraphs: list[SquadParagraph], *, file: Path, lang: str, split_sentences: bool
                     ) -> list[SquadParagraph]:
    """Paragraphs with sentences: their own breaks, or a splitter's where allowed.

    Without ``split_sentences`` a paragraph lacking breaks is an error, so a LAReQA file with a
    damaged paragraph is never silently re-split with different conventions.
    """
    unsplit = [p for p in paragraphs if p.spans is None]
    if not unsplit:
        return paragraphs
    if not split_sentences:
        raise DataError("paragraph has no 'sentence_breaks'", file=file, record=unsplit[0].record,
                        hint="use a source with LAReQA sentence breaks, or the raw SQuAD reader, which splits sentences")
    done = dict(zip(map(id, unsplit), split_paragraphs(unsplit, sentence_splitter(lang))))
    return [done.get(id(p), p) for p in paragraphs]


def read_squad_corpus(files: Mapping[str, Path], *, source: str, passage: PassageUnit = "sentence",
                      split_sentences: bool = False) -> ParallelCorpus:
    """Build a corpus from ``{lang: file}``.

    ``split_sentences=True`` accepts files without sentence breaks (raw SQuAD/XQuAD) and splits
    them with ``sentence_splitter``; the paragraph passage unit needs no sentences at all.
    """
    if passage not in ("sentence", "paragraph"):
        raise ValueError(f"passage must be 'sentence' or 'paragraph', not {passage!r}")
    rows, record_ids = [], []
    for lang, path in files.items():
        paragraphs = read_squad_json(path)
        if passage == "sentence":
            paragraphs = ensure_sentences(paragraphs, file=path, lang=lang, split_sentences=split_sentences)
        if not any(para.questions for para in paragraphs):
            raise DataError("the file has paragraphs but no questions, so its language would add nothing to the corpus",
                            file=path, hint="restore the 'qas' of its paragraphs, or delete the file to leave its language out")
        for para in paragraphs:
            for q in para.questions:
                text = para.sentences[para.answer_sentence(q, file=path)] if passage == "sentence" else para.context
                rows.append({"group_id": q.id, "lang": lang, "query": q.question, "passage": text,
                             "source": source, "title": para.title or None})
                record_ids.append(f"{path} {q.record}")
    return ParallelCorpus.from_rows(rows, origin=source, record_ids=record_ids)
