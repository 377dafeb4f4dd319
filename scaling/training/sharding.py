"""``run.sharding: fsdp``: each worker holds 1/N of the weights, gradients and optimizer states.

FSDP2 (``torch.distributed.fsdp.fully_shard``) on every transformer block, then on the backbone
as the root, over the workers' process group (NCCL on GPUs, gloo on CPU). FSDP2 averages the
gradients itself (reduce-scatter), so the step's own all-reduce and the start-up broadcast are
skipped (on sharded parameters they raise); every worker builds the same initial weights from
the plan (a saved folder, seeded LoRA initialisation). Resume checkpoints are sharded with
``torch.distributed.checkpoint`` (each worker writes its own shard files, which Ray Train merges
into one checkpoint folder); the final model is gathered into one full state dict on rank 0's
CPU and saved by the model family as an unsharded run saves it, so evaluation reads it unchanged.
Under LoRA only the adapter's entries go into resume checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from scaling.models.encoder import DualEncoder, EncoderConfig, _layer_list

SHARDINGS = ("none", "fsdp")
DCP_FOLDER = "sharded"  # inside a resume checkpoint: the DCP files of model and optimizer
STATE_KEY = "sharded"  # in the resume state: its model and optimizer are in DCP_FOLDER


def blocks(backbone: nn.Module, model: str) -> nn.ModuleList:
    """The transformer blocks FSDP wraps one by one; a clear error where none are found."""
    found = _layer_list(backbone)
    if found is None or not len(found[2]):
        raise ValueError(f"run.sharding: fsdp needs the transformer blocks of {model!r} ({type(backbone).__name__}), "
                         "but none were found (looked for encoder.layer, layers, h); set run.sharding: none")
    return found[2]


def check_shardable(path: str, model: str, *, trust_remote_code: bool = False) -> None:
    """``blocks`` before any weights load: the architecture built on the meta device."""
    from transformers import AutoModel

    from scaling.models.cards import model_config

    with torch.device("meta"):
        backbone = AutoModel.from_config(model_config(path, trust_remote_code=trust_remote_code),
                                         trust_remote_code=trust_remote_code)
    blocks(backbone, model)


def shard(encoder: DualEncoder) -> DualEncoder:
    """``fully_shard`` each block, then the backbone (embeddings, final norm). Call before the
    optimizer is built: sharding replaces the parameters with DTensors."""
    from torch.distributed.fsdp import fully_shard

    for block in blocks(encoder.backbone, encoder.config.model):
        fully_shard(block)
    fully_shard(encoder.backbone)
    return encoder


def _resume_entries(encoder: DualEncoder, state: dict) -> dict:
    """What a resume checkpoint keeps of the model: the adapter under LoRA, else everything."""
    if encoder.config.lora is None:
        return state
    from scaling.models.lora import is_adapter_parameter

    return {k: v for k, v in state.items() if is_adapter_parameter(k)}


def save_resume(folder: Path, encoder: DualEncoder, optimizer: torch.optim.Optimizer) -> None:
    """Every worker writes its shards of the model and optimizer (collective)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optim_state = get_state_dict(encoder.backbone, optimizer)
    dcp.save({"model": _resume_entries(encoder, model_state), "optimizer": optim_state},
             checkpoint_id=str(Path(folder) / DCP_FOLDER))


def load_resume(folder: Path, encoder: DualEncoder, optimizer: torch.optim.Optimizer) -> None:
    """Read what ``save_resume`` wrote into this worker's shards (collective)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict

    model_state, optim_state = get_state_dict(encoder.backbone, optimizer)  # initialises empty AdamW states
    state = {"model": _resume_entries(encoder, model_state), "optimizer": optim_state}
    dcp.load(state, checkpoint_id=str(Path(folder) / DCP_FOLDER))
    set_state_dict(encoder.backbone, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"],
                   options=StateDictOptions(strict=encoder.config.lora is None))


def full_state(encoder: DualEncoder) -> dict:
    """The whole model's state dict on rank 0's CPU ({} on the other ranks; collective)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(encoder.backbone, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def unsharded(family, config: EncoderConfig, state: dict) -> DualEncoder:
    """A plain (unsharded) encoder built by ``family`` from ``config``, holding ``state``
    (``full_state``'s): what the family saves as the final model folder."""
    encoder = family.build(config)
    encoder.backbone.load_state_dict(state, assign=True)
    return encoder
