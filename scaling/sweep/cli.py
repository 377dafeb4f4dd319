"""``jobs/sweep.py``: validate a study, print its grid, and (with the driver) run it."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from scaling.data import DataError
from scaling.models.offline_e5 import OfflineModelMissing
from scaling.samplers import SamplerConfigError
from scaling.sweep.study import StudyConfigError, load_study

DEFAULT_STUDY = Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="jobs/sweep.py", description=__doc__.split("\n")[0])
    p.add_argument("--config", default=str(DEFAULT_STUDY), help="study YAML (default: configs/quickstart.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any study field by its dotted path, e.g. --set train.optim.max_steps=10")
    p.add_argument("--dry-run", action="store_true", help="print the grid and the estimated training steps, then stop")
    p.add_argument("--resume", action="store_true", help="finish an interrupted study: run only unfinished trials")
    p.add_argument("--verbose", action="store_true", help="show Ray's own tables, notices and worker output too")
    args = p.parse_args(argv)
    try:
        study = load_study(args.config, args.set)
    except (StudyConfigError, FileNotFoundError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(study.describe())
    if args.dry_run:
        from scaling.sweep.budget import budget_lines

        lines, refusals = budget_lines(study)
        print("memory and time per trial (estimates; see scaling/plan/memory.py):", *lines, sep="\n")
        for refusal in refusals:
            print(f"error: {refusal}", file=sys.stderr)
        return 2 if refusals else 0
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
    if not args.verbose:  # our console only: no progress bars of model saving on the driver
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import transformers

        transformers.utils.logging.disable_progress_bar()
    from scaling.sweep.driver import TrialsFailed, load_results, run_study, summary
    from scaling.sweep.signals import StudyInterrupted

    start = time.perf_counter()
    try:
        store = run_study(study, resume=args.resume, verbose=args.verbose)
        table = load_results(store)
    except (StudyConfigError, DataError, SamplerConfigError, FileNotFoundError, OfflineModelMissing) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrialsFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except StudyInterrupted as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("error: interrupted before any trial finished; run again (with --resume if trials had started)",
              file=sys.stderr)
        return 130
    print(summary(table))
    print(f"study {study.name}: {len({r for r in table.column('trial_id').to_pylist()})} finished trials, "
          f"{time.perf_counter() - start:.0f} s; results in {store.location} (trials/*/metrics.parquet, curve.parquet, "
          f"manifest.json)\nreport: python -m analysis.report {store.location} --out {store.location.rstrip('/')}-report")
    return 0
