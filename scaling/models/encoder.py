"""The dual encoder: a Hugging Face backbone, a pooling rule, prefixes and L2 normalisation.

One module serves training and evaluation, so a checkpoint is always encoded the way it was
trained. Backbones are built without a pooler (an unused pooler breaks DDP), and may keep only
their first k layers, which is how a pretrained model becomes a size ladder.
"""

from __future__ import annotations

import copy
import json
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
from torch import nn

from scaling.models.lora import LoraSettings
from scaling.models.unpadded import unpad_linears

Pooling = Literal["cls", "mean", "last"]
TextKind = Literal["query", "passage"]


@dataclass(frozen=True)
class EncoderConfig:
    """How to build and apply an encoder; recorded with every result."""

    model: str = "offline:multilingual-e5-small"
    pooling: Pooling = "mean"
    normalize: bool = True
    query_prefix: str = "query: "
    passage_prefix: str = "passage: "
    max_length: int = 128
    num_layers: int | None = None  # keep the first k transformer layers
    freeze_word_embeddings: bool = False
    skip_padding: bool = True  # transformer-block linears skip padded positions (same outputs, less work)
    lora: LoraSettings | None = None  # train a LoRA adapter instead of the whole model (``scaling.models.lora``)
    gradient_checkpointing: bool = False  # recompute each block in backward: activations of one block, not all
    dtype: str = "fp32"  # fp32, bf16 or fp16: frozen weights and compute (``scaling.models.precision``)
    attn_implementation: str = "sdpa"  # sdpa, eager or flash_attention_2 (the flash extra)
    trust_remote_code: bool = False  # run a model folder's own code (config.json auto_map)
    bidirectional: bool = False  # decoder made non-causal (gte-Qwen2, NV-Embed; ``scaling.models.attention``)
    instruction: str = ""  # queries only, before the query prefix, through instruction_template
    instruction_template: str = "Instruct: {instruction}\nQuery: "  # e5-mistral / Qwen3-Embedding

    def __post_init__(self) -> None:
        from scaling.models.attention import check_attention
        from scaling.models.precision import dtype_name

        object.__setattr__(self, "lora", LoraSettings.of(self.lora))
        object.__setattr__(self, "dtype", dtype_name(self.dtype))
        check_attention(self.attn_implementation)
        if self.instruction:
            try:
                self.instruction_template.format(instruction=self.instruction)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"encoder.instruction_template {self.instruction_template!r} must contain "
                                 f"{{instruction}} and no other field ({type(exc).__name__}: {exc})") from None
            if "{instruction}" not in self.instruction_template:
                raise ValueError(f"encoder.instruction_template {self.instruction_template!r} must contain {{instruction}}")
        if self.pooling not in ("cls", "mean", "last"):
            raise ValueError(f"encoder.pooling must be 'cls', 'mean' or 'last', not {self.pooling!r}")
        if self.max_length < 2:
            raise ValueError(f"encoder.max_length must be at least 2, not {self.max_length}")
        if self.num_layers is not None and self.num_layers < 1:
            raise ValueError(f"encoder.num_layers must be >= 1 or unset, not {self.num_layers}")


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int, *, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists -> (ids, attention mask), padded to the longest in this batch only, on
    the right (or on the ``left``, as decoder tokenizers with ``padding_side == "left"`` do)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        cols = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[row, cols] = torch.tensor(seq, dtype=torch.long)
        mask[row, cols] = 1
    return ids, mask


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: Pooling) -> torch.Tensor:
    """Pool token states (batch, tokens, dim) under an attention mask (batch, tokens)."""
    if how == "cls":
        return hidden[:, 0]
    if how == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)
    # the last real token (right or left padding): the highest position the mask keeps
    positions = torch.arange(mask.size(1), device=mask.device)
    last = (positions * (mask != 0)).argmax(1)
    return hidden[torch.arange(hidden.size(0), device=hidden.device), last]


def positions_of(mask: torch.Tensor) -> torch.Tensor:
    """Position ids counted over real tokens only, so a left-padded text gets the positions it
    has right-padded (0 for the padding itself, which nothing attends to)."""
    return (mask.long().cumsum(1) - 1).clamp(min=0)


_LAYER_PATHS = (("encoder", "layer"), ("layers",), ("h",))  # BERT/XLM-R, Llama-style, GPT-2-style


def _layer_list(backbone: nn.Module) -> tuple[nn.Module, str, nn.ModuleList] | None:
    """(owner, attribute, layers): where the transformer blocks live, or None if not found.
    Wrappers that hide the model (peft's ``get_base_model``) are looked through."""
    if hasattr(backbone, "get_base_model"):
        backbone = backbone.get_base_model()
    for *owner_path, name in _LAYER_PATHS:
        owner = backbone
        for part in owner_path:
            owner = getattr(owner, part, None)
        layers = getattr(owner, name, None)
        if isinstance(layers, nn.ModuleList):
            return owner, name, layers
    return None


def _truncate_layers(backbone: nn.Module, k: int) -> None:
    """Keep the first k transformer layers (a pretrained model's size ladder)."""
    found = _layer_list(backbone)
    if found is None:
        raise ValueError(f"cannot find the layer list of {type(backbone).__name__} to keep {k} layers")
    owner, name, layers = found
    if k > len(layers):
        raise ValueError(f"encoder.num_layers={k} but the model has only {len(layers)} layers")
    setattr(owner, name, layers[:k])
    backbone.config.num_hidden_layers = k


def _load_backbone(path: str, config: EncoderConfig):
    """The backbone in an explicit dtype (transformers 5 would load a bf16 checkpoint as bf16,
    and pure-bf16 AdamW loses updates), with the configured attention and remote-code settings."""
    from transformers import AutoModel

    from scaling.models.precision import loading_dtype

    kwargs = dict(dtype=loading_dtype(config.dtype, config.lora is not None),
                  attn_implementation=config.attn_implementation, trust_remote_code=config.trust_remote_code)
    try:
        return AutoModel.from_pretrained(path, add_pooling_layer=False, **kwargs)
    except TypeError:  # architectures without a pooler do not take the argument
        return AutoModel.from_pretrained(path, **kwargs)


def load_hf_encoder(path: str, config: EncoderConfig) -> "DualEncoder":
    """A backbone and tokenizer from a Hugging Face folder or hub name, with ``config``'s settings."""
    from transformers import AutoTokenizer

    from scaling.models.attention import check_attention_available, check_remote_code

    check_attention_available(config.attn_implementation)
    check_remote_code(path, config.trust_remote_code, config.model)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=config.trust_remote_code)
    return DualEncoder(_load_backbone(path, config), tokenizer, config)


class DualEncoder(nn.Module):
    """Shared-weight query/passage encoder returning one (normalised) vector per text."""

    def __init__(self, backbone: nn.Module, tokenizer, config: EncoderConfig) -> None:
        from scaling.models.families import ensure_pad_token

        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.config = config
        self.pad_id = ensure_pad_token(tokenizer, config.model)
        if config.num_layers is not None:
            _truncate_layers(backbone, config.num_layers)
        from scaling.models.attention import check_causal_modules, make_bidirectional

        if config.bidirectional:
            make_bidirectional(backbone, config.model)
        else:
            check_causal_modules(backbone, config.model)
        if config.freeze_word_embeddings:
            self.word_embeddings().weight.requires_grad_(False)
        if config.lora is not None:  # before the padding-skip conversion, which peft cannot wrap
            from scaling.models.lora import apply_lora

            self.backbone = backbone = apply_lora(backbone, config.lora, config.model)
        from scaling.models.precision import place_parameters

        place_parameters(self.backbone, config.dtype)  # trainable fp32 (master weights), frozen in encoder.dtype
        self.left_padding = getattr(tokenizer, "padding_side", "right") == "left"
        self.eos_id = self._eos_to_append()
        self.real_tokens = None  # None: the backbone pads as usual
        if config.skip_padding:
            found = _layer_list(backbone)
            if found is None:
                raise ValueError(f"encoder.skip_padding is on, but the transformer layers of {type(backbone).__name__} "
                                 "were not found (looked for encoder.layer, layers, h); set encoder.skip_padding: false")
            self.real_tokens = unpad_linears(found[2])
        if config.gradient_checkpointing:
            self._checkpoint_blocks()

    def _checkpoint_blocks(self) -> None:
        """Hugging Face's activation checkpointing, non-reentrant; with skipped padding each
        recomputation gets the real-token index of its forward pass (``recompute_context``)."""
        from scaling.models.unpadded import recompute_context

        model = self.backbone.get_base_model() if hasattr(self.backbone, "get_base_model") else self.backbone
        if not getattr(model, "supports_gradient_checkpointing", False):
            raise ValueError(f"encoder.gradient_checkpointing: {type(model).__name__} does not support it; set it false")
        kwargs = {"use_reentrant": False}
        if self.real_tokens is not None:
            kwargs["context_fn"] = recompute_context(self.real_tokens)
        if hasattr(model.config, "use_cache"):
            model.config.use_cache = False  # no key/value cache in an embedder; it clashes with recomputation
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2 (the old name is deprecated)
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    @classmethod
    def from_config(cls, config: EncoderConfig) -> "DualEncoder":
        """Built by the model's family (``scaling.models.families``), chosen by its name."""
        from scaling.models.families import family_for

        return family_for(config.model).build(config)

    def save(self, folder: str | Path, *, merged: bool = False) -> Path:
        """A Hugging Face folder (weights, tokenizer) plus ``encoder.json`` (pooling, prefixes...).

        With LoRA: the adapter alone and ``encoder.json`` naming the base model and its depth
        (``merged=True``: the adapter folded into a full model folder instead)."""
        folder = Path(folder)
        if self.config.lora is not None and merged:
            plain = DualEncoder(copy.deepcopy(self.backbone).merge_and_unload(), self.tokenizer,
                                replace(self.config, lora=None, num_layers=None))
            return plain.save(folder)
        self.backbone.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        if self.config.lora is not None:  # the base is rebuilt from its name, cut to the same depth
            settings = {**asdict(self.config), "adapter": True}
        else:
            settings = {**asdict(self.config), "model": self.config.model, "num_layers": None}  # layers already cut
        (folder / "encoder.json").write_text(json.dumps(settings, indent=1))
        return folder

    @staticmethod
    def saved_config(folder: str | Path) -> tuple[EncoderConfig, bool]:
        """(the configuration ``load`` builds from, whether the folder holds a LoRA adapter alone),
        read from ``encoder.json`` without loading any weights."""
        folder = Path(folder)
        settings = json.loads((folder / "encoder.json").read_text())
        if settings.pop("adapter", False):
            return EncoderConfig(**settings), True
        settings.update(model=str(folder), freeze_word_embeddings=False)
        return EncoderConfig(**settings), False

    @classmethod
    def load(cls, folder: str | Path) -> "DualEncoder":
        """Load what ``save`` wrote, with the pooling and prefixes it was trained with."""
        config, adapter = cls.saved_config(folder)
        encoder = cls.from_config(config)
        if adapter:
            from safetensors.torch import load_file

            from scaling.models.lora import load_adapter_state

            load_adapter_state(encoder.backbone, load_file(str(Path(folder) / "adapter_model.safetensors")))
        return encoder

    def trainable_state(self) -> dict:
        """What a resume checkpoint keeps: the adapter under LoRA, else the whole backbone."""
        if self.config.lora is not None:
            from scaling.models.lora import adapter_state

            return adapter_state(self.backbone)
        return self.backbone.state_dict()

    def load_trainable_state(self, state: dict) -> None:
        if self.config.lora is not None:
            from scaling.models.lora import load_adapter_state

            load_adapter_state(self.backbone, state)
        else:
            self.backbone.load_state_dict(state)

    # ---- parts ----------------------------------------------------------------------------
    def word_embeddings(self) -> nn.Embedding:
        return self.backbone.get_input_embeddings()

    def parameter_counts(self) -> dict[str, int]:
        """Total and non-embedding parameters of the base model (the scaling-curve x-axis counts
        the latter), trainable ones, and a LoRA adapter's own count."""
        from scaling.models.lora import is_adapter_parameter

        named = list(self.backbone.named_parameters())
        base = [(n, p) for n, p in named if not is_adapter_parameter(n)]
        total = sum(p.numel() for _, p in base)
        embedding_modules = [m for m in self.backbone.modules() if isinstance(m, nn.Embedding)]
        embedding = sum(p.numel() for m in embedding_modules for p in m.parameters())
        trainable = sum(p.numel() for _, p in named if p.requires_grad)
        counts = {"total": total, "non_embedding": total - embedding, "trainable": trainable}
        if self.config.lora is not None:
            counts["adapter"] = sum(p.numel() for n, p in named if is_adapter_parameter(n))
        return counts

    def describe(self) -> dict:
        return {"encoder": asdict(self.config), "parameters": self.parameter_counts(),
                "hidden_size": int(self.backbone.config.hidden_size)}

    # ---- encoding -------------------------------------------------------------------------
    def prefix(self, kind: TextKind, instruction: str | None = None) -> str:
        """What precedes a text: the query prefix after the instruction (queries only; ``instruction``
        overrides ``encoder.instruction``, e.g. per mteb task), or the passage prefix."""
        cfg = self.config
        if kind != "query":
            return cfg.passage_prefix
        instruction = cfg.instruction if instruction is None else instruction
        return (cfg.instruction_template.format(instruction=instruction) if instruction else "") + cfg.query_prefix

    def _eos_to_append(self) -> int | None:
        """Last-token pooling reads the EOS state; the EOS id when the tokenizer does not end its
        output with it (judged from its output on a probe text, not from its name), else None."""
        eos = getattr(self.tokenizer, "eos_token_id", None)
        if self.config.pooling != "last" or eos is None:
            return None
        probe = self.tokenizer(["a b"], truncation=True, max_length=self.config.max_length)["input_ids"][0]
        return None if probe and probe[-1] == eos else int(eos)

    def token_ids(self, texts: Sequence[str], kind: TextKind, instruction: str | None = None) -> list[list[int]]:
        """Token ids of prefixed texts, at most ``max_length`` each, ending with EOS under
        last-token pooling (appended once, after truncation, where the tokenizer does not add it)."""
        pre = self.prefix(kind, instruction)
        ids = self.tokenizer([pre + t for t in texts], truncation=True, max_length=self.config.max_length)["input_ids"]
        if self.eos_id is None:
            return [list(s) for s in ids]
        room = self.config.max_length - 1
        return [list(s) if s and s[-1] == self.eos_id else list(s[:room]) + [self.eos_id] for s in ids]

    def pad(self, seqs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, mask) on the tokenizer's padding side."""
        return pad_batch(seqs, self.pad_id, left=self.left_padding)

    def tokenize(self, texts: Sequence[str], kind: TextKind) -> dict[str, torch.Tensor]:
        ids, mask = self.pad(self.token_ids(texts, kind))
        return {"input_ids": ids, "attention_mask": mask}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Embeddings (float32) of a padded batch; the backbone computes under autocast in
        ``encoder.dtype`` (its backward too), so every caller trains and encodes alike."""
        from scaling.models.precision import autocast

        extra = {}
        if self.left_padding:  # positions from the mask: the same embeddings as right padding
            extra["position_ids"] = positions_of(attention_mask)
        with self.real_tokens.using(attention_mask) if self.real_tokens else nullcontext(), \
                autocast(self.config.dtype, input_ids.device):
            hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        out = pool(hidden.float(), attention_mask, self.config.pooling)
        return nn.functional.normalize(out, dim=-1) if self.config.normalize else out

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], kind: TextKind, *, batch_size: int = 64,
               device: str | torch.device | None = None, instruction: str | None = None) -> np.ndarray:
        """Embed texts in length-sorted batches (less padding), returned in input order.

        The forward pass computes in ``encoder.dtype`` (autocast), as in training; outputs are float32.
        """
        return self.encode_token_ids(self.token_ids(texts, kind, instruction), batch_size=batch_size, device=device)

    @torch.inference_mode()
    def encode_token_ids(self, enc: Sequence[Sequence[int]], *, batch_size: int = 64,
                         device: str | torch.device | None = None) -> np.ndarray:
        """``encode`` of texts already tokenized by ``token_ids`` (lists or integer arrays)."""
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        was_training = self.training
        self.eval().to(device)
        lengths = np.fromiter((len(ids) for ids in enc), dtype=np.int64, count=len(enc))
        order = np.argsort(-lengths, kind="stable")
        dim = int(self.backbone.config.hidden_size)
        out = np.empty((len(enc), dim), dtype=np.float32)
        for start in range(0, len(enc), batch_size):
            idx = order[start:start + batch_size]
            ids, mask = self.pad([enc[i] for i in idx])
            vectors = self(ids.to(device), mask.to(device))
            out[idx] = vectors.float().cpu().numpy()
        self.train(was_training)
        return out
