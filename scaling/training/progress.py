"""Training progress as a file beside the run (``<run folder>/progress.jsonl``, one curve record
per line), written by rank 0 at every report and read by whoever shows it: the sweep driver's
console, ``jobs/train.py``. Not the workers' stdout, which Ray repeats and interleaves."""

from __future__ import annotations

import json
import posixpath
import threading
from typing import Callable

from scaling.store import ResultStore

PROGRESS_FILE = "progress.jsonl"


def run_location(plan_location: str) -> str:
    """The run folder of a plan (its parent)."""
    return posixpath.dirname(plan_location.rstrip("/"))


class ProgressWriter:
    def __init__(self, plan_location: str) -> None:
        self.store = ResultStore(run_location(plan_location))
        self.lines: list[str] = []

    def add(self, record: dict) -> None:
        self.lines.append(json.dumps(record))
        self.store.write_bytes(PROGRESS_FILE, ("\n".join(self.lines) + "\n").encode())


def read_progress(run: str) -> list[dict]:
    store = ResultStore(run)
    if not store.exists(PROGRESS_FILE):
        return []
    try:
        return [json.loads(line) for line in store.read_bytes(PROGRESS_FILE).decode().splitlines() if line]
    except (OSError, ValueError):
        return []  # being replaced right now: read it at the next poll


class ProgressWatcher:
    """Polls the progress files of runs and calls ``show(run, record)`` once per new record."""

    def __init__(self, runs: dict[str, str], show: Callable[[str, dict], None], every_s: float = 2.0) -> None:
        self.runs, self.show, self.every_s = runs, show, every_s  # key -> run location
        self.seen = {key: 0 for key in runs}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def poll(self) -> None:
        for key, run in self.runs.items():
            records = read_progress(run)
            for record in records[self.seen[key]:]:
                self.show(key, record)
            self.seen[key] = max(self.seen[key], len(records))

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.poll()

    def __enter__(self) -> "ProgressWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.poll()  # the last records
