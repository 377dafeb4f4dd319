"""``jobs/train.py``: one training run on Ray Train, for trying or debugging a single configuration."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from scaling.data import DataError
from scaling.files import write_atomic
from scaling.models.offline_e5 import OfflineModelMissing
from scaling.records import HELDOUT_COLUMNS
from scaling.samplers import SamplerConfigError
from scaling.training.config import TrainConfig

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train_quick.yaml"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="jobs/train.py", description=__doc__.split("\n")[0])
    p.add_argument("--config", default=str(DEFAULT_CONFIG),
                   help="YAML file with sections encoder, sampler, loss, optim, data, run "
                        "(default: configs/train_quick.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set optim.max_steps=20 (repeatable)")
    args = p.parse_args(argv)
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
    try:
        cfg = TrainConfig.from_yaml(args.config)
        cfg = cfg.with_overrides(args.set)
        from scaling.training.trainer import fit, plan_run

        result = fit(plan_run(cfg), show=lambda line: print(line, flush=True))
    except (DataError, SamplerConfigError, ValueError, FileNotFoundError, OfflineModelMissing) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {"model_dir": str(result.model_dir), "metrics": result.metrics, "parameters": result.parameters,
               "batch_counts": result.batch_counts, "sampling": result.sampling, "history": result.history}
    write_atomic(result.run_dir / "summary.json", json.dumps(summary, indent=1))
    last = result.history[-1] if result.history else {}
    heldout = [f"{k} {v:.4f}" if isinstance(v, float) else f"{k}: {v}"
               for k, v in result.metrics.items() if k in HELDOUT_COLUMNS]
    print(f"trained {result.metrics.get('step')} steps: loss {result.metrics.get('loss'):.4f}; "
          f"{', '.join(heldout) or 'no held-out loss (data.heldout unset)'}; "
          f"{last.get('samples_per_s', 0):.1f} samples/s")
    print(f"parameters: {result.parameters}")
    print(f"batches: {result.batch_counts}")
    print(f"final model: {result.model_dir}  (evaluate: python jobs/evaluate.py --model {result.model_dir} "
          f"--benchmark parallel-qa --out OUT)")
    return 0
