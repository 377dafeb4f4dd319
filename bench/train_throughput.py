"""Training throughput: our Ray Train path against sentence-transformers' trainer, side by side.

Same model (multilingual-e5-small, word embeddings frozen), same pairs (drawn by our hybrid
sampler from parallel-qa), batch size, maximum length, learning rate and steps. The baseline is
SentenceTransformerTrainer with MultipleNegativesRankingLoss (scale 20 = temperature 0.05).
Ours runs through the whole Ray Train path (TorchTrainer, workers, checkpoint at the end). Both
rates are steady state, over the steps after the first third (warm-up, and compilation where a
lever compiles): ours from the loop's per-step times, the baseline's from a step-end callback
(which includes its on-the-fly tokenisation). Printed beside them: the baseline's whole ``train()``
rate, our whole ``fit()`` wall time, our time per phase (data, forward, backward, optimizer), and
the time our reports and checkpoints took outside the steps. Each lever is one extra run.

    python bench/train_throughput.py [--steps 30] [--levers baseline,padded,unfused] [--repeats 3]
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")


def sentence_transformers_baseline(args) -> float:
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        models,
    )
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    from scaling.data import load_corpus
    from scaling.models.offline_e5 import ensure_offline_e5
    from scaling.samplers import SamplerConfig, make_sampler

    corpus = load_corpus("parallel-qa:train")
    sampler = make_sampler(SamplerConfig.of("hybrid", batch_size=args.batch_size, seed=0,
                                            steps_per_epoch=args.steps), corpus)
    q, p = corpus.table.column("query").to_pylist(), corpus.table.column("passage").to_pylist()
    anchors, positives = [], []
    for batch in sampler:
        anchors += ["query: " + q[r] for r in batch.query_rows]
        positives += ["passage: " + p[r] for r in batch.passage_rows]
    word = models.Transformer(str(ensure_offline_e5()), max_seq_length=args.max_length)
    word.auto_model.embeddings.word_embeddings.weight.requires_grad_(False)
    model = SentenceTransformer(modules=[word, models.Pooling(word.get_word_embedding_dimension(), "mean"),
                                         models.Normalize()], device="cpu")

    class StepClock(TrainerCallback):  # the same steady-state window as ours: after the first third
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_step_end(self, *_, **__):
            self.ends.append(time.perf_counter())

    clock = StepClock()
    with tempfile.TemporaryDirectory() as out:
        trainer = SentenceTransformerTrainer(
            model=model, train_dataset=Dataset.from_dict({"anchor": anchors, "positive": positives}),
            loss=MultipleNegativesRankingLoss(model, scale=20.0), callbacks=[clock],
            args=SentenceTransformerTrainingArguments(
                output_dir=out, per_device_train_batch_size=args.batch_size, max_steps=args.steps,
                learning_rate=3e-5, warmup_steps=2, logging_steps=10 ** 6, save_strategy="no", report_to="none",
                use_cpu=True, dataloader_drop_last=True, seed=0, disable_tqdm=True))
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    warm = max(1, args.steps // 3)
    rate = (len(clock.ends) - warm) * args.batch_size / (clock.ends[-1] - clock.ends[warm - 1])
    print(f"{'sentence-transformers':<28}{rate:8.2f} samples/s  (steps {warm + 1}-{args.steps}; all of train(): "
          f"{args.steps * args.batch_size / seconds:.2f} samples/s in {seconds:.1f} s, {torch.get_num_threads()} threads)")
    return rate


ONE_WORKER = ["run.num_workers=1", "run.cpus_per_worker=1", "run.torch_threads=2"]
LEVERS = {  # each is the default configuration with one lever changed
    "baseline": ONE_WORKER,
    "padded": [*ONE_WORKER, "encoder.skip_padding=false"],
    "unfused": [*ONE_WORKER, "optim.fused=false"],
    "compile": [*ONE_WORKER, "run.compile=true"],
    "2x1": ["run.num_workers=2", "run.cpus_per_worker=0.5", "run.torch_threads=1"],
}


def ours(args, lever: str) -> float:
    from scaling.training.config import TrainConfig
    from scaling.training.trainer import fit, plan_run

    cfg = TrainConfig().with_overrides([
        "encoder.model=offline:multilingual-e5-small", "encoder.freeze_word_embeddings=true",
        f"encoder.max_length={args.max_length}", "sampler.strategy=hybrid", f"sampler.batch_size={args.batch_size}",
        f"optim.max_steps={args.steps}", "optim.warmup_steps=2", "optim.lr=3e-5", "data.heldout=null",
        f"run.report_every={max(1, args.steps // 3)}", f"run.checkpoint_every={args.steps}",
        f"run.storage_path={tempfile.mkdtemp(prefix='bench-train-')}", f"run.name=bench-{lever}", *LEVERS[lever]])
    start = time.perf_counter()
    result = fit(plan_run(cfg))
    wall = time.perf_counter() - start
    windows, prev = [], 0
    for h in result.history:  # records average over windows of steps
        windows.append((h["step"] - prev, h))
        prev = h["step"]
    steady = windows[1:] or windows  # the first window (a third of the steps) holds warm-up and compilation
    n = sum(k for k, _ in steady)
    loop = sum(k * h["step_time_s"] for k, h in steady)
    rate = n * args.batch_size / loop
    phases = {k: sum(m * h[f"{k}_s"] for m, h in steady) / n for k in ("data", "forward", "backward", "optimizer")}
    reporting = sum(h["reporting_s"] for h in result.history)
    print(f"{'ours ' + lever:<28}{rate:8.2f} samples/s  (fit() wall {wall:.1f} s incl. Ray start-up; per step "
          + ", ".join(f"{k} {v:.3f} s" for k, v in phases.items())
          + f"; reports and checkpoints before the last: {reporting:.3f} s in all)")
    return rate


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--levers", default="baseline,padded,unfused")
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument("--repeats", type=int, default=1,
                   help="alternate sentence-transformers and ours this many times (order flipped each round) and "
                        "report medians: a 2-core VM drifts by +-10%% within minutes")
    args = p.parse_args()
    import statistics

    import ray

    print(f"multilingual-e5-small (12 layers, frozen word embeddings), batch {args.batch_size}, "
          f"max length {args.max_length}, {args.steps} steps, hybrid batches from parallel-qa")
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False)
    levers = args.levers.split(",")
    rates: dict[str, list[float]] = {"sentence-transformers": [], **{lever: [] for lever in levers}}
    for round_ in range(args.repeats):
        order = ["sentence-transformers", *levers]
        for name in order if round_ % 2 == 0 or args.skip_baseline else order[::-1]:
            if name == "sentence-transformers":
                if not args.skip_baseline:
                    rates[name].append(sentence_transformers_baseline(args))
            else:
                rates[name].append(ours(args, name))
    base = statistics.median(rates["sentence-transformers"]) if rates["sentence-transformers"] else None
    print(f"medians over {args.repeats} round(s):")
    for name, values in rates.items():
        if values:
            ratio = f"  ratio {statistics.median(values) / base:.2f}" if base and name != "sentence-transformers" else ""
            print(f"  {name:<26}{statistics.median(values):8.2f} samples/s  (runs: "
                  f"{', '.join(f'{v:.2f}' for v in values)}){ratio}")


if __name__ == "__main__":
    main()
