"""Belebele (``facebook/belebele``): 900 questions on 488 FLORES passages, N-way parallel in 122
language variants, as QA pairs: query = the question, passage = its FLORES passage (or, with
``positive: answer``, the text of the correct answer).

One question is one group across all languages (its passage ``link``, the FLORES ``split`` where
the row has one, and ``question_number``), so every language gives X-X pairs and every two
languages X-Y pairs. Belebele publishes one (test) split; ``train`` and ``eval`` here are a fixed
partition by passage (a hash of the link: both questions of a passage, in every language, fall on
the same side), ``all`` is everything. Local copy: ``<dir>/data/<code>.jsonl`` as on the hub (or
``<dir>/<code>.jsonl``), one JSON object per line with the hub's fields.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from scaling.data.adapters import (
    Adapter,
    AdapterRequest,
    check_languages_option,
    hub_config_names,
    read_per_language,
    register_adapter,
)
from scaling.data.corpus import ParallelCorpus
from scaling.data.errors import DataError
from scaling.data.jsonl import iter_jsonl
from scaling.data.remote import fetch_hub_dataset

HUB_NAME = "facebook/belebele"
FIELDS = ("link", "question_number", "flores_passage", "question", "mc_answer1", "mc_answer2", "mc_answer3",
          "mc_answer4", "correct_answer_num")
NO_ROWS, NO_ROWS_HINT = "no rows in this split", "check the split and the languages"
LAYOUT = "<folder>/data/<FLORES code>.jsonl (e.g. data/eng_Latn.jsonl), the hub's files"


@dataclass(frozen=True)
class BelebeleOptions:
    path: str | None = None  # a local copy (default: <data dir>/belebele)
    languages: tuple[str, ...] | None = None  # read only these (any code style); None: all
    positive: str = "passage"  # "passage": the FLORES passage; "answer": the correct answer's text
    eval_fraction: float = 0.1  # share of passages in the eval split

    def __post_init__(self) -> None:
        check_languages_option(self.languages)
        if self.positive not in ("passage", "answer"):
            raise ValueError(f"option positive must be 'passage' or 'answer', not {self.positive!r}")
        if isinstance(self.eval_fraction, bool) or not isinstance(self.eval_fraction, (int, float)) \
                or not 0 < self.eval_fraction < 1:
            raise ValueError(f"option eval_fraction must be a number in (0, 1), not {self.eval_fraction!r}")


def in_eval(passage_key: str, fraction: float) -> bool:
    """The fixed train/eval partition: a passage is in eval when its hash falls below ``fraction``."""
    h = int.from_bytes(hashlib.blake2b(passage_key.encode(), digest_size=8).digest(), "big")
    return h / 2 ** 64 < fraction


def rows_of(records, code: str, lang_file: str, request: AdapterRequest) -> tuple[list[dict], list[str]]:
    """Corpus rows of one language's records ``(record id, object)``; fields are checked."""
    opts = request.options
    rows, ids = [], []
    for rec_id, obj in records:
        missing = [f for f in FIELDS if obj.get(f) in (None, "")]
        if missing:
            raise DataError(f"missing field(s) {missing}", file=lang_file, record=rec_id,
                            hint=f"a Belebele row has {', '.join(FIELDS)}")
        passage_key = f"{obj['split']}/{obj['link']}" if obj.get("split") else str(obj["link"])
        if request.split != "all" and in_eval(passage_key, opts.eval_fraction) != (request.split == "eval"):
            continue
        if opts.positive == "answer":
            num = str(obj["correct_answer_num"]).strip()
            if num not in ("1", "2", "3", "4"):
                raise DataError(f"correct_answer_num should be 1..4, found {obj['correct_answer_num']!r}",
                                file=lang_file, record=rec_id)
            positive = str(obj[f"mc_answer{num}"])
        else:
            positive = str(obj["flores_passage"])
        rows.append({"group_id": f"belebele/{passage_key}/{obj['question_number']}", "lang": code,
                     "query": str(obj["question"]), "passage": positive, "source": "belebele"})
        ids.append(f"{Path(lang_file).name} {rec_id}")
    return rows, ids


def read_local(folder: Path, request: AdapterRequest) -> ParallelCorpus:
    base = folder / "data" if (folder / "data").is_dir() else folder
    files = {p.stem: p for p in sorted(base.glob("*.jsonl"))}
    if not files:
        raise DataError("no <code>.jsonl files", file=base, hint=f"a local Belebele copy is laid out as {LAYOUT}")

    def language(code: str) -> tuple[list[dict], list[str]]:
        return rows_of(((f"line {n}", obj) for n, obj in iter_jsonl(files[code])), code, str(files[code]), request)

    return read_per_language(list(files), language, request, dataset="belebele", origin=str(base),
                             where=lambda c: str(files[c]), empty=NO_ROWS, hint=NO_ROWS_HINT)


def read_hub(request: AdapterRequest) -> ParallelCorpus:
    """One hub configuration per language (split ``test``); older revisions had one ``default``
    configuration with a split per language, which is tried when the language is not a configuration."""
    configs = hub_config_names(HUB_NAME)
    per_language = [c for c in configs if c != "default"]
    if not per_language:
        import datasets

        per_language = list(datasets.get_dataset_split_names(HUB_NAME, "default"))

    def language(code: str) -> tuple[list[dict], list[str]]:
        ds = fetch_hub_dataset(HUB_NAME, code, "test") if code in configs else fetch_hub_dataset(HUB_NAME, "default", code)
        return rows_of(((f"row {i}", dict(obj)) for i, obj in enumerate(ds)), code, f"hf:{HUB_NAME}/{code}", request)

    return read_per_language(per_language, language, request, dataset=f"hf:{HUB_NAME}", origin=f"hf:{HUB_NAME}",
                             empty=NO_ROWS, hint=NO_ROWS_HINT)


ADAPTER = register_adapter(Adapter(
    "belebele", HUB_NAME, ("train", "eval", "all"), "train", BelebeleOptions, read_local, read_hub,
    pairs="X-X and X-Y (122 variants, N-way parallel)", layout=LAYOUT))
