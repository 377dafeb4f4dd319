"""JSON Lines reading shared by every JSONL format (corpora, BEIR): errors name the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Iterator

from scaling.data.errors import DataError


def iter_jsonl(path: Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; objects must hold ``required`` keys."""
    if not path.is_file():
        raise DataError("file not found", file=path)
    with path.open(encoding="utf-8") as fh:
        yield from iter_jsonl_lines(fh, path, required)


def iter_jsonl_lines(fh: IO[str], path: Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict]]:
    """``iter_jsonl`` over an open text stream (a plain or a gzip file); ``path`` names it in errors."""
    for n, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"malformed JSON ({exc.msg}, column {exc.colno})", file=path, record=f"line {n}") from None
        if not isinstance(obj, dict):
            raise DataError(f"expected a JSON object, found {type(obj).__name__}", file=path, record=f"line {n}")
        missing = [k for k in required if k not in obj]
        if missing:
            raise DataError(f"missing field(s) {missing}", file=path, record=f"line {n}",
                            hint=f"each line needs {', '.join(required)}")
        yield n, obj
