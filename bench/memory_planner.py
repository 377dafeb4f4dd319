"""The memory planner against measured peak memory of real CPU training steps.

Each case runs in its own process: build the encoder the worker's way (its model family), then
run training steps on batches of exactly ``max_length`` tokens (the planner's assumption), and
take the peak resident set size above the process's size just before the model was built.
Printed per case: the planner's estimate (``scaling.plan.memory.estimate``), the measurement, and
the relative error; the last line gives the largest absolute error.

    python bench/memory_planner.py [--steps 2] [--cases NAME,NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

E5 = "offline:multilingual-e5-small"
TINY = "tiny-llama:hidden=256,layers=4,heads=4,vocab_size=8000"
CASES = {  # name: (model, batch size, max_length, settings)
    "tiny-llama": (TINY, 32, 128, {}),
    "tiny-llama+ckpt": (TINY, 32, 128, {"encoder.gradient_checkpointing": True}),
    "e5-small": (E5, 32, 128, {}),
    "e5-small+ckpt": (E5, 32, 128, {"encoder.gradient_checkpointing": True}),
    "e5-small+chunks": (E5, 32, 128, {"loss.chunk_size": 8}),
    "e5-small+lora": (E5, 32, 128, {"encoder.lora": {"r": 16}}),
}


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def config_for(name: str):
    from scaling.training.config import TrainConfig

    model, batch, length, settings = CASES[name]
    return TrainConfig().with_values({"encoder.model": model, "encoder.max_length": length, "sampler.batch_size": batch,
                                      "run.num_workers": 1, "data.heldout": None, **settings})


def measure(name: str, steps: int) -> dict:
    """In this process: peak RSS above the pre-model baseline over ``steps`` training steps."""
    import tempfile

    import torch

    from scaling.models.families import family_for
    from scaling.plan.memory import GB, estimate, shape_for
    from scaling.training.loss import InfoNCELoss
    from scaling.training.step import make_step

    torch.set_num_threads(2)
    cfg = config_for(name)
    texts = [f"word{i} text{i % 97} sample" for i in range(2000)]
    family = family_for(cfg.encoder.model)
    with tempfile.TemporaryDirectory() as folder:
        encoder_cfg = family.materialise(cfg.encoder, texts=texts, seed=0, folder=__import__("pathlib").Path(folder))
        shape = shape_for(encoder_cfg)
        planned = estimate(shape, cfg, tflops=1.0)
        baseline = _rss_mb()
        encoder = family_for(encoder_cfg.model).build(encoder_cfg)  # the worker's way: from the materialised folder
        encoder.train()  # as the worker loop does (checkpointing only acts in training mode)
        step = make_step(encoder, cfg.optim, InfoNCELoss(cfg.loss), world=1, device=torch.device("cpu"))
        b, s = cfg.sampler.batch_size, cfg.encoder.max_length
        gen = torch.Generator().manual_seed(0)
        vocab = encoder.backbone.config.vocab_size
        for _ in range(steps):
            q = torch.randint(5, vocab, (b, s), generator=gen)
            p = torch.randint(5, vocab, (b, s), generator=gen)
            ones = torch.ones(b, s, dtype=torch.long)
            step(q, ones, p, ones, 0.0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MB on Linux
    return {"case": name, "planned_mb": planned.total / GB * 1024, "measured_mb": peak - baseline,
            "parts_mb": {k: getattr(planned, k) / 2**20 for k in ("weights", "gradients", "optimizer", "activations")}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: measure one case in this process
    args = p.parse_args()
    if args.case:
        print(json.dumps(measure(args.case, args.steps)))
        return
    worst = 0.0
    print(f"{'case':18} {'planned MB':>11} {'measured MB':>12} {'error':>7}   planned parts (MB)")
    for name in args.cases.split(","):
        out = subprocess.run([sys.executable, __file__, "--case", name, "--steps", str(args.steps)],
                             capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"case {name} failed:\n{out.stderr[-3000:]}")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        error = row["planned_mb"] / row["measured_mb"] - 1
        worst = max(worst, abs(error))
        parts = ", ".join(f"{k} {v:.0f}" for k, v in row["parts_mb"].items())
        print(f"{name:18} {row['planned_mb']:11.0f} {row['measured_mb']:12.0f} {error:+7.0%}   {parts}", flush=True)
    print(f"largest planner error against measured peak RSS: {worst:.0%}")


if __name__ == "__main__":
    main()
