"""Machine-translate a training corpus into more languages, resumably, with a manifest.

    python jobs/translate.py --config configs/translate_nllb.yaml --out runs/pqa-mt --set target_languages=[sw,yo]

Writes OUT/shards/*.parquet (one per shard, atomically; a rerun translates only missing ones),
OUT/corpus.parquet (train with ``data.train: [OUT/corpus.parquet]``) and, last, OUT/manifest.json.
``--dry-run`` checks the languages, the filters and the plan (tokenizer only) and translates nothing.
"""

from __future__ import annotations

import argparse
import json
import sys

from scaling.translate.config import load_config
from scaling.translate.job import pending_shards, prepare, run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="YAML file of translate settings (see configs/translate_nllb.yaml)")
    p.add_argument("--out", help="output folder (setting out)")
    p.add_argument("--source", help="training source string, e.g. parallel-qa:train or a .parquet file (setting source)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set target_languages=[de,sw] --set model.batch_size=64")
    p.add_argument("--dry-run", action="store_true", help="check and plan, translate nothing")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides, out=args.out, source=args.source)
        if args.dry_run:
            plan = prepare(cfg)
            pending = pending_shards(plan) if (plan.out / "plan.json").is_file() else list(range(len(plan.shards)))
            print(json.dumps({"source_groups": len(plan.source_rows), "shards": len(plan.shards), "pending": len(pending),
                              "code_mapping": {k: plan.codes.token(v) for k, v in plan.code_mapping.items()},
                              "filters": plan.filters}, indent=2))
            return 0
        manifest = run(cfg)
    except (ValueError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"corpus": str(cfg.out) + "/corpus.parquet", "rows": manifest["output"]["rows"],
                      "counts": manifest["filters"]["counts"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
