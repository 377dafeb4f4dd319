"""One-GPU check of the large-model path: peak memory against the planner, samples/s and model
FLOP utilisation of training steps, and encoding texts/s, for random-weight decoders shaped like
1B and 7B models (no download: the architecture comes from a configuration).

Each case trains ``--steps`` steps after one warm-up step on batches of exactly ``--length``
tokens, with the levers named in the case (bf16 compute, LoRA, activation checkpointing,
gradient-cache chunks), through the same ``DualEncoder`` and training step a worker uses. Model
FLOP utilisation is ``6 N T`` (``8 N T`` with checkpointing: one recomputed forward) FLOPs per
step for N non-embedding parameters and T tokens, over the step time and the device's peak.

    bash bench/gpu_check.sh                      # on a GPU machine: the 1B and 7B cases, < 8 min
    python bench/gpu_check.py --smoke            # on a CPU: the same code on a tiny decoder
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace

SHAPES = {  # Llama-shaped decoders: hidden, layers, heads, kv heads, intermediate, vocabulary
    "smoke": (64, 2, 4, 2, 128, 1000),
    "1b": (2048, 16, 32, 8, 8192, 128256),  # Llama-3.2-1B's shape
    "7b": (4096, 32, 32, 8, 14336, 32000),  # Mistral-7B's shape (e5-mistral-7b-instruct)
}


@dataclass(frozen=True)
class Case:
    shape: str
    batch: int  # pairs per step (queries and passages: twice as many sequences)
    length: int
    lora: bool = False
    checkpointing: bool = False
    chunk: int | None = None

    @property
    def name(self) -> str:
        levers = [n for n, on in (("lora", self.lora), ("ckpt", self.checkpointing)) if on]
        levers += [f"chunk{self.chunk}"] if self.chunk else []
        return f"{self.shape} b{self.batch}x{self.length} " + ("+".join(levers) or "full")


GPU_CASES = (
    Case("1b", 64, 256),
    Case("1b", 64, 256, checkpointing=True, chunk=16),
    Case("7b", 64, 256, lora=True, checkpointing=True),
    Case("7b", 256, 256, lora=True, checkpointing=True, chunk=32),
)
SMOKE_CASES = (Case("smoke", 4, 16), Case("smoke", 4, 16, lora=True, checkpointing=True, chunk=2))


def llama_config(shape: str):
    from transformers import LlamaConfig

    hidden, layers, heads, kv, inter, vocab = SHAPES[shape]
    return LlamaConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                       num_key_value_heads=kv, intermediate_size=inter, vocab_size=vocab,
                       max_position_embeddings=4096, tie_word_embeddings=False)


def train_config(case: Case):
    from scaling.training.config import TrainConfig

    values = {"encoder.model": f"random:{case.shape}", "encoder.pooling": "last", "encoder.max_length": case.length,
              "encoder.query_prefix": "", "encoder.passage_prefix": "", "encoder.gradient_checkpointing": case.checkpointing,
              "sampler.batch_size": case.batch, "run.num_workers": 1, "data.heldout": None, "loss.chunk_size": case.chunk}
    if case.lora:
        values["encoder.lora"] = {"r": 16, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
    return TrainConfig().with_values(values)


def mfu(non_embedding: int, tokens: int, seconds: float, peak_flops: float, checkpointing: bool) -> float:
    """Model FLOP utilisation of one step (see the module docstring)."""
    return (8 if checkpointing else 6) * non_embedding * tokens / seconds / peak_flops


def run_case(case: Case, *, device: str, steps: int, peak_tflops: float) -> dict:
    import torch
    from transformers import AutoModel

    from scaling.models.encoder import DualEncoder
    from scaling.models.tiny import tiny_tokenizer
    from scaling.plan.memory import GB, ModelShape, estimate
    from scaling.training.loss import InfoNCELoss
    from scaling.training.step import make_step

    dev = torch.device(device)
    cfg = train_config(case)
    config = llama_config(case.shape)
    backbone = AutoModel.from_config(config)  # random weights, fp32: trainable ones stay fp32 masters
    tokenizer = tiny_tokenizer(["a b c"], vocab_size=64)
    # bf16 on the GPU: the frozen base (LoRA) stored in bf16, trainable weights fp32 masters, bf16 compute
    encoder_cfg = replace(cfg.encoder, model="random", skip_padding=False, dtype="bf16" if dev.type == "cuda" else "fp32")
    encoder = DualEncoder(backbone, tokenizer, encoder_cfg).to(dev)
    encoder.train()
    counts = encoder.parameter_counts()
    shape = ModelShape(counts["total"], counts["total"] - counts["non_embedding"], config.hidden_size,
                       config.num_hidden_layers, config.num_attention_heads)
    planned = estimate(shape, replace(cfg, encoder=encoder_cfg, run=replace(cfg.run, gpus_per_worker=1.0 if dev.type == "cuda"
                                                                            else 0.0)), tflops=peak_tflops)
    step = make_step(encoder, cfg.optim, InfoNCELoss(cfg.loss), world=1, device=dev)
    gen = torch.Generator().manual_seed(0)
    ones = torch.ones(case.batch, case.length, dtype=torch.long, device=dev)

    def batch():
        return torch.randint(5, config.vocab_size, (case.batch, case.length), generator=gen).to(dev)

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step(batch(), ones, batch(), ones, time.perf_counter())  # warm-up
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step(batch(), ones, batch(), ones, time.perf_counter())
    sync()
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated() / GB if dev.type == "cuda" else float("nan")
    encoder.eval()
    with torch.no_grad():  # the encoder computes under autocast in its own dtype
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            encoder(batch(), ones)
        sync()
        texts_per_s = steps * case.batch / (time.perf_counter() - t0)
    tokens = 2 * case.batch * case.length
    return {"case": case.name, "device": device, "non_embedding_params": shape.non_embedding,
            "trainable_params": counts.get("trainable", sum(p.numel() for p in encoder.parameters() if p.requires_grad)),
            "planned_gb": planned.total / GB, "peak_gb": peak, "step_s": seconds,
            "samples_per_s": case.batch / seconds,
            "mfu": mfu(shape.non_embedding, tokens, seconds, peak_tflops * 1e12, case.checkpointing),
            "encode_texts_per_s": texts_per_s}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny decoder on the CPU (the logic, no GPU numbers)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--peak-tflops", type=float, default=989.0, help="the device's dense bf16 peak (H100/H200: 989)")
    p.add_argument("--cases", help="comma-separated indices into the case list (default: all)")
    args = p.parse_args(argv)
    cases = SMOKE_CASES if args.smoke else GPU_CASES
    if args.cases:
        cases = tuple(cases[int(i)] for i in args.cases.split(","))
    device = "cpu" if args.smoke else "cuda"
    rows = []
    for case in cases:
        try:
            row = run_case(case, device=device, steps=args.steps, peak_tflops=args.peak_tflops)
        except RuntimeError as exc:  # out of memory on the device: report it, go on
            row = {"case": case.name, "error": str(exc).splitlines()[0][:200]}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if device == "cuda":
            import torch

            torch.cuda.empty_cache()
    return rows


if __name__ == "__main__":
    main()
