"""LAReQA-style retrieval pools from SQuAD-format data with sentence breaks.

Every sentence of every paragraph in every language is a candidate (duplicates included: the pool
is the sentence slots, 13,014 for XQuAD-R). The relevant candidates of a question are the
sentences holding its answer in every language that has that question, so an XQuAD-R question
has 11 and an MLQA-R question 2 to 4.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from scaling.data.benchmark import RetrievalBenchmark
from scaling.data.qa import ensure_sentences
from scaling.data.squad import read_squad_json
from scaling.languages import canonical_many


def build_lareqa(files: Mapping[str, Path], *, name: str, split_sentences: bool = False) -> RetrievalBenchmark:
    """Build the merged multilingual pool from ``{lang: file}`` (ids: ``lang/p<para>/s<sent>``)."""
    langs = canonical_many(files)
    queries, candidates, titles = [], [], set()
    answers: dict[str, dict[str, int]] = {}  # group -> {answer candidate id: 1}
    for lang, path in zip(langs, files.values()):
        paragraphs = ensure_sentences(read_squad_json(path), file=path, lang=lang, split_sentences=split_sentences)
        for p, para in enumerate(paragraphs):
            if para.title:
                titles.add(para.title)
            for s, sentence in enumerate(para.sentences):
                candidates.append({"id": f"{lang}/p{p}/s{s}", "lang": lang, "text": sentence})
            for q in para.questions:
                queries.append({"id": f"{lang}/{q.id}", "lang": lang, "text": q.question, "group": q.id})
                answers.setdefault(q.id, {})[f"{lang}/p{p}/s{para.answer_sentence(q, file=path)}"] = 1
    relevance = {row["id"]: answers[row["group"]] for row in queries}
    return RetrievalBenchmark.from_rows(name, queries, candidates, relevance, titles=frozenset(titles))
