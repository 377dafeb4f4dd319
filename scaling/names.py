"""The closest valid name to a misspelt one, for errors that say what was probably meant."""

from __future__ import annotations

import difflib
from typing import Iterable


def closest(name: str, known: Iterable[str]) -> str | None:
    """A known name that starts with ``name`` (``gpus`` -> ``gpus_per_worker``), else the most similar."""
    known = list(known)
    starts = [k for k in known if k.startswith(str(name))]
    if starts:
        return min(starts, key=len)
    close = difflib.get_close_matches(str(name), known, n=1)
    return close[0] if close else None
