"""Tiny random-weight encoders with a tokenizer trained in memory: no download, milliseconds.

Used by tests and as the bottom rungs of from-scratch size ladders.
"""

from __future__ import annotations

from typing import Sequence

import torch

from scaling.models.encoder import DualEncoder, EncoderConfig


def parse_tiny_spec(spec: str) -> dict[str, int]:
    """``tiny:hidden=32,layers=2[,heads=1,vocab_size=800]`` -> keyword arguments of ``tiny_encoder``."""
    body = spec.split(":", 1)[1]
    out = {}
    for part in filter(None, body.split(",")):
        key, _, value = part.partition("=")
        if key not in ("hidden", "layers", "heads", "vocab_size") or not value.isdigit():
            raise ValueError(f"encoder.model {spec!r}: expected tiny:hidden=H,layers=L[,heads=A,vocab_size=V]")
        out[key] = int(value)
    return out


def tiny_tokenizer(texts: Sequence[str], vocab_size: int = 1000):
    """A WordPiece tokenizer fitted to ``texts`` (BERT special tokens)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(list(texts), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    # The trainer's token set is deterministic but its ids are not (hash-map order in Rust): renumber
    # in a canonical order, so a seed gives the same model on every run and every machine.
    learned = sorted(set(tok.get_vocab()) - set(specials))
    tok.model = models.WordPiece({t: i for i, t in enumerate(specials + learned)}, unk_token="[UNK]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def tiny_encoder(texts: Sequence[str], *, hidden: int = 32, layers: int = 2, heads: int = 2, seed: int = 0,
                 vocab_size: int = 1000, **config) -> DualEncoder:
    """A random BERT encoder (no pooler) sized by width and depth, deterministic from ``seed``."""
    from transformers import BertConfig, BertModel

    tokenizer = tiny_tokenizer(texts, vocab_size)
    torch.manual_seed(seed)
    backbone = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                                    num_attention_heads=heads, intermediate_size=4 * hidden,
                                    max_position_embeddings=512), add_pooling_layer=False)
    return DualEncoder(backbone, tokenizer, EncoderConfig(model=f"tiny-bert-h{hidden}-l{layers}", **config))
