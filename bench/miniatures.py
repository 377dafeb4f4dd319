"""Every study's miniature (``configs/mini/``), end to end on this machine: each study, then its
report, on a fresh results folder; prints the wall time of each against the 15-minute target.

    python bench/miniatures.py [--only model_size,low_resource] [--keep DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 15 * 60


def run(config: Path, storage: Path) -> tuple[float, float, int]:
    """(study seconds, report seconds, exit status) of one miniature."""
    import yaml

    name = yaml.safe_load(config.read_text())["study"]["name"]
    start = time.perf_counter()
    study = subprocess.run([sys.executable, "jobs/sweep.py", "--config", str(config), "--set", f"storage={storage}"],
                           cwd=ROOT, capture_output=True, text=True)
    studied = time.perf_counter()
    if study.returncode:
        print(study.stdout[-2000:], study.stderr[-3000:], sep="\n", file=sys.stderr)
        return studied - start, 0.0, study.returncode
    report = subprocess.run([sys.executable, "-m", "analysis.report", str(storage / name), "--out",
                             str(storage / f"{name}-report")], cwd=ROOT, capture_output=True, text=True)
    if report.returncode:
        print(report.stderr[-3000:], file=sys.stderr)
    return studied - start, time.perf_counter() - studied, report.returncode


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", help="comma-separated miniature names (file stems)")
    p.add_argument("--keep", help="write results here instead of a temporary folder")
    args = p.parse_args()
    configs = sorted((ROOT / "configs" / "mini").glob("*.yaml"))
    if args.only:
        configs = [c for c in configs if c.stem in args.only.split(",")]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        storage = Path(args.keep or tmp)
        for config in configs:
            study_s, report_s, status = run(config, storage)
            total = study_s + report_s
            verdict = "FAILED" if status else ("ok" if total <= TARGET_S else "over 15 min")
            failed += bool(status)
            print(f"{config.stem:18} study {study_s:6.0f} s  report {report_s:5.0f} s  total {total / 60:5.1f} min  "
                  f"{verdict}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
