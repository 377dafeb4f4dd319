"""The study's console: our own lines (a trial starts, ends; the study's progress with an
estimate of the time left; training progress once per report), kept for the study's log folder.
Ray's own tables and notices are hidden unless ``--verbose``."""

from __future__ import annotations

import time


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class StudyConsole:
    def __init__(self, total: int, already: int) -> None:
        self.total, self.finished, self.failed = total, already, 0
        self.already = already
        self.started = time.monotonic()
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(f"{time.strftime('%H:%M:%S')} {text}")
        print(text, flush=True)

    def status(self) -> str:
        """``k of N finished, f failed, r to go; elapsed, about T left`` (from this run's finished trials)."""
        left = self.total - self.finished - self.failed
        elapsed = time.monotonic() - self.started
        done_here = self.finished + self.failed - self.already
        eta = f", about {_duration(elapsed / done_here * left)} left" if done_here and left else ""
        return (f"{self.finished} of {self.total} finished, {self.failed} failed, {left} to go; "
                f"elapsed {_duration(elapsed)}{eta}")

    def bar(self) -> str:
        width = 20
        filled = round(width * (self.finished + self.failed) / max(1, self.total))
        return "[" + "#" * filled + "." * (width - filled) + "]"

    def tune_callback(self, describe):
        """A Tune callback printing our lines; ``describe(trial_id)`` names a trial."""
        from ray.tune import Callback

        console = self

        class StudyProgress(Callback):
            def on_trial_start(self, iteration, trials, trial, **info):
                console.line(f"[study] trial {trial.config.get('trial_id')} started: {describe(trial.config.get('trial_id'))}")

            def on_trial_complete(self, iteration, trials, trial, **info):
                console.finished += 1
                console.line(f"[study] {console.bar()} trial {trial.config.get('trial_id')} finished: {console.status()}")

            def on_trial_error(self, iteration, trials, trial, **info):
                console.failed += 1
                console.line(f"[study] {console.bar()} trial {trial.config.get('trial_id')} FAILED: {console.status()}")

        return StudyProgress()
