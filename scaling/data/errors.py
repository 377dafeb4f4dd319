"""Errors for bad input data: each names the file, the record and how to fix it."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Input data that cannot be used as it is.

    The message always starts with the file (or source) and, where there is one, the record, so a
    user can open the file at the right place.
    """

    def __init__(self, message: str, *, file: str | Path | None = None, record: str | None = None,
                 hint: str | None = None) -> None:
        self.file = str(file) if file is not None else None
        self.record = record
        self.hint = hint
        where = ": ".join(p for p in (self.file, f"record {record}" if record else None) if p)
        text = f"{where}: {message}" if where else message
        if hint:
            text = f"{text} ({hint})"
        super().__init__(text)


class SourceNotFoundError(DataError, FileNotFoundError):
    """A data source that is neither on disk nor downloadable here."""
