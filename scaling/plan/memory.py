"""A memory and time planner for one trial: peak memory per accelerator and time per step,
estimated from the model's shape before anything is loaded, so a trial that cannot fit is
refused before Ray starts, naming the lever that would make it fit.

Per worker (bytes), following ``scaling.models.precision``'s storage rule: frozen weights (a LoRA
base, frozen word embeddings) in ``encoder.dtype``, trainable weights in fp32 (they are the
master weights) with fp32 gradients and AdamW's two fp32 moments, plus, when computing in 16 bits,
autocast's 16-bit copy of each trainable weight (kept for backward); and activations, in the
compute dtype, of the graphs alive at once: queries and passages of the local batch (or one chunk
under gradient caching), per layer and token about ``34 h + 5 a s`` 16-bit values' worth
(Korthikanti et al. 2022; twice that in fp32; plus one block's worth for backward's gradients of the
activations; with activation checkpointing each block's input plus a recomputed block and its gradients),
at the full ``max_length`` (an upper bound: skipped padding only
helps). Time per step: ``6 N T`` FLOPs for N non-embedding parameters and T tokens of the global
batch, at an assumed utilisation of the accelerators' peak. Under ``run.sharding: fsdp``
weights, gradients and optimizer states are divided by the workers, plus two gathered blocks.
The shape comes from the model's
configuration, built on the meta device (no weights read); a hub name with no configuration at hand
(offline) uses its model card (``scaling.models.cards``); for others the estimate says it is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from scaling.models.encoder import EncoderConfig
from scaling.training.config import TrainConfig

GB = 1024 ** 3


@dataclass(frozen=True)
class ModelShape:
    total: int  # parameters
    embedding: int
    hidden: int
    layers: int
    heads: int

    @property
    def non_embedding(self) -> int:
        return self.total - self.embedding


def shape_of(path: str, num_layers: int | None = None, *, trust_remote_code: bool = False) -> ModelShape:
    """Parameter counts and sizes from a Hugging Face configuration (meta device: no weights)."""
    import torch
    from torch import nn
    from transformers import AutoModel

    from scaling.models.cards import model_config

    config = model_config(path, trust_remote_code=trust_remote_code)
    if num_layers is not None:
        config.num_hidden_layers = num_layers
    with torch.device("meta"):
        model = AutoModel.from_config(config, trust_remote_code=trust_remote_code)
    total = sum(p.numel() for p in model.parameters())
    embedding = sum(p.numel() for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters())
    return ModelShape(total, embedding, int(config.hidden_size), int(config.num_hidden_layers),
                      int(getattr(config, "num_attention_heads", 1)))


def shape_for(encoder: EncoderConfig) -> ModelShape:
    """The shape of the model an encoder configuration names: random ``tiny`` models are built
    (kilobytes), others read from their configuration or model card."""
    from scaling.models.families import family_for

    family = family_for(encoder.model)
    if family.name.startswith("tiny"):
        model = family.instantiate(encoder, ("a b c",), 0)
        counts = model.parameter_counts()
        cfg = model.backbone.config
        return ModelShape(counts["total"], counts["total"] - counts["non_embedding"], cfg.hidden_size,
                          cfg.num_hidden_layers, cfg.num_attention_heads)
    return shape_of(family.weights_path(encoder), encoder.num_layers, trust_remote_code=encoder.trust_remote_code)


@dataclass(frozen=True)
class Estimate:
    weights: float  # bytes per worker
    gradients: float
    optimizer: float
    activations: float
    step_seconds: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations

    def describe(self) -> str:
        parts = ", ".join(f"{k} {getattr(self, k) / GB:.2f}" for k in ("weights", "gradients", "optimizer", "activations"))
        step = f"{self.step_seconds:.2f} s" if self.step_seconds >= 1 else f"{self.step_seconds * 1000:.2g} ms"
        return f"~{self.total / GB:.2f} GB per worker ({parts}), ~{step} per step at the assumed utilisation"


def estimate(shape: ModelShape, cfg: TrainConfig, *, trainable: int | None = None, weight_bytes: int | None = None,
             tflops: float = 312.0, utilisation: float = 0.4) -> Estimate:
    """``trainable``: parameters that train (default: all but frozen word embeddings; LoRA: the
    adapter, on top of the frozen base). ``weight_bytes``: bytes of a frozen weight and of an
    activation value (default: ``encoder.dtype``'s, 4 for fp32 and 2 for bf16/fp16)."""
    from scaling.models.precision import torch_dtype

    value_bytes = weight_bytes or torch_dtype(cfg.encoder.dtype).itemsize
    lora = cfg.encoder.lora is not None
    if trainable is None:
        trainable = shape.total - (shape.embedding if cfg.encoder.freeze_word_embeddings else 0)
        if lora:  # r x (in + out) per targeted square projection, three per layer
            trainable = 3 * shape.layers * cfg.encoder.lora.r * 2 * shape.hidden
    frozen = shape.total if lora else shape.total - trainable
    autocast_copies = trainable * value_bytes if value_bytes < 4 else 0
    weights = frozen * value_bytes + trainable * 4 + autocast_copies
    local = cfg.sampler.batch_size // cfg.run.num_workers
    rows = 2 * local if cfg.loss.chunk_size is None else min(cfg.loss.chunk_size, local)
    s = cfg.encoder.max_length
    per_token_layer = (34 * shape.hidden + 5 * shape.heads * s) * value_bytes / 2
    if cfg.encoder.gradient_checkpointing:  # each block's input kept, one block's activations alive at a time
        # + one recomputed block and its backward's gradients of those activations
        activations = rows * s * (shape.layers * shape.hidden * value_bytes + 2 * per_token_layer)
    else:
        # + backward's working memory: the gradients of one block's activations at a time
        activations = rows * s * (shape.layers + 1) * per_token_layer
    tokens = 2 * cfg.sampler.batch_size * s
    flops = (8 if cfg.encoder.gradient_checkpointing else 6) * shape.non_embedding * tokens  # + one recomputed forward
    step = flops / (cfg.run.num_workers * tflops * 1e12 * utilisation)
    return _sharded(Estimate(weights, trainable * 4, trainable * 8, activations, step), shape, cfg, value_bytes)


def _sharded(est: Estimate, shape: ModelShape, cfg: TrainConfig, weight_bytes: int) -> Estimate:
    """``run.sharding: fsdp``: each worker keeps 1/N of the weights, gradients and optimizer
    states, plus the blocks being gathered at a time (FSDP2 prefetches the next one: two blocks'
    full weights, and their full gradients before the reduce-scatter)."""
    if cfg.run.sharding != "fsdp":
        return est
    n = cfg.run.num_workers
    block = shape.non_embedding / max(1, shape.layers)
    gathered_grads = 2 * est.gradients / max(1, shape.layers)  # the trainable share of two blocks
    return replace(est, weights=est.weights / n + 2 * block * weight_bytes, gradients=est.gradients / n + gathered_grads,
                   optimizer=est.optimizer / n)


def lever_for(cfg: TrainConfig, shape: ModelShape, budget_gb: float, **kwargs) -> str:
    """The first lever that brings the estimate under ``budget_gb``, or what remains short."""
    options = []
    if cfg.loss.chunk_size is None:
        options.append(("loss.chunk_size: 8", replace(cfg, loss=replace(cfg.loss, chunk_size=8))))
    if not cfg.encoder.gradient_checkpointing:
        options.append(("encoder.gradient_checkpointing: true",
                        replace(cfg, encoder=replace(cfg.encoder, gradient_checkpointing=True))))
    if cfg.run.sharding == "none" and cfg.run.num_workers > 1:  # exact, like the two above: before LoRA
        fsdp = replace(cfg, run=replace(cfg.run, sharding="fsdp"))
        options.append(("run.sharding: fsdp", fsdp))
        options.append(("run.sharding: fsdp with loss.chunk_size: 8 and encoder.gradient_checkpointing: true",
                        replace(fsdp, loss=replace(cfg.loss, chunk_size=cfg.loss.chunk_size or 8),
                                encoder=replace(cfg.encoder, gradient_checkpointing=True))))
    if cfg.encoder.lora is None:
        from scaling.models.lora import LoraSettings

        options.append(("encoder.lora: {r: 16}", replace(cfg, encoder=replace(cfg.encoder, lora=LoraSettings(r=16)))))
    if cfg.loss.chunk_size is None and cfg.encoder.lora is None:
        options.append(("loss.chunk_size: 8 and encoder.lora: {r: 16}",
                        replace(options[-1][1], loss=replace(cfg.loss, chunk_size=8))))
    for name, option in options:
        if estimate(shape, option, **kwargs).total / GB <= budget_gb:
            return f"set {name}"
    if cfg.run.sharding == "none":
        return ("no single lever fits it: shard over more workers (run.num_workers >= 2 and run.sharding: fsdp; "
                "each worker then holds 1/N of weights, gradients and optimizer states) or use more GPU memory per worker")
    return f"no single lever fits it: shard over more than {cfg.run.num_workers} workers or use more GPU memory per worker"
