"""Tatoeba bitext retrieval as XTREME evaluates it: xxx -> eng and eng -> xxx, per language.

The English sides differ from file to file, so each language is its own two-language benchmark
(never one merged English pool); line i of one side is the only relevant candidate of line i of
the other. XTREME's score, accuracy@1 per direction and its macro-average over languages, is
the suite's rule (``TATOEBA_RULE``), not code of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from scaling.data.benchmark import RetrievalBenchmark
from scaling.data.bitext import pick_language_codes, read_tatoeba_pair, tatoeba_languages
from scaling.data.suites import BenchmarkSuite, SuiteRule
from scaling.languages import canonical

TATOEBA_RULE = SuiteRule(settings=("cross",), ks=(1,), metrics={"recall@1": "accuracy@1"}, pivot="en")


def build_tatoeba(directory: Path, languages: Sequence[str] | None = None, source: str = "tatoeba") -> BenchmarkSuite:
    """A suite keyed by canonical language; queries and candidates of each hold both sides."""
    out = {}
    for code in pick_language_codes(tatoeba_languages(directory), languages, directory, "Tatoeba"):
        xs, es = read_tatoeba_pair(directory, code)
        lang = canonical(code)
        rows, relevance = [], {}
        for i, (x, e) in enumerate(zip(xs, es)):
            rows.append({"id": f"{lang}/{i}", "lang": lang, "text": x, "group": str(i)})
            rows.append({"id": f"en/{i}", "lang": "en", "text": e, "group": str(i)})
            relevance[f"{lang}/{i}"] = {f"en/{i}": 1}
            relevance[f"en/{i}"] = {f"{lang}/{i}": 1}
        candidates = [{"id": r["id"], "lang": r["lang"], "text": r["text"]} for r in rows]
        out[lang] = RetrievalBenchmark.from_rows(f"tatoeba-{lang}", rows, candidates, relevance)
    return BenchmarkSuite("tatoeba", out, TATOEBA_RULE, source)
