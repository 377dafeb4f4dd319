"""Tiny random-weight encoders with a tokenizer built in memory: no download, milliseconds.

Used by tests and as the bottom rungs of from-scratch size ladders.
"""

from __future__ import annotations

from typing import Sequence

import torch

from scaling.models.encoder import DualEncoder, EncoderConfig


def parse_tiny_spec(spec: str) -> dict[str, int]:
    """``tiny:hidden=32,layers=2[,heads=1,vocab_size=800]`` (or ``tiny-llama:...``) -> keyword
    arguments of ``tiny_encoder`` / ``tiny_decoder``."""
    scheme, _, body = spec.partition(":")
    out = {}
    for part in filter(None, body.split(",")):
        key, _, value = part.partition("=")
        if key not in ("hidden", "layers", "heads", "vocab_size") or not value.isdigit():
            raise ValueError(f"encoder.model {spec!r}: expected {scheme}:hidden=H,layers=L[,heads=A,vocab_size=V]")
        out[key] = int(value)
    return out


def tiny_tokenizer(texts: Sequence[str], vocab_size: int = 1000):
    """A WordPiece tokenizer for ``texts`` (BERT special tokens), the same on every run.

    The vocabulary: the special tokens, every character (word-initial ``c`` and inside a word
    ``##c``, so nothing is unknown), then the most frequent whole words (ties alphabetical) up to
    ``vocab_size``. Rarer words are spelled out. ``tokenizers``' WordPiece trainer is not used: it
    breaks ties between equally frequent merges in hash order, so each process learned another
    vocabulary (12 different ones in 12 trainings on 200 parallel-qa texts), and Ray workers or a
    resumed run would have tokenised differently from the process that started.
    """
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = Counter(word for text in texts
                    for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    alphabet = sorted({w[0] for w in words} | {"##" + c for w in words for c in w[1:]})
    vocab = specials + alphabet
    known = set(vocab)
    for word, _ in sorted(words.items(), key=lambda wc: (-wc[1], wc[0])):
        if len(vocab) >= vocab_size:
            break
        if word not in known:
            vocab.append(word)
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
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
                                    max_position_embeddings=512,
                                    attn_implementation=config.get("attn_implementation", "sdpa")), add_pooling_layer=False)
    return DualEncoder(backbone, tokenizer, EncoderConfig(model=f"tiny-bert-h{hidden}-l{layers}", **config))


def tiny_decoder(texts: Sequence[str], *, hidden: int = 32, layers: int = 2, heads: int = 2, seed: int = 0,
                 vocab_size: int = 1000, **config) -> DualEncoder:
    """A random Llama-shaped decoder (rotary positions, gated MLP, causal attention), the stand-in
    for 7B LLM embedders in tests: same code paths, kilobytes of weights. Use last-token pooling;
    the tokenizer ends every text with ``[SEP]``, which plays EOS."""
    from transformers import LlamaConfig, LlamaModel

    tokenizer = tiny_tokenizer(texts, vocab_size)
    tokenizer.eos_token = "[SEP]"
    torch.manual_seed(seed)
    backbone = LlamaModel(LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                                      max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                                      eos_token_id=tokenizer.eos_token_id,
                                      attn_implementation=config.get("attn_implementation", "sdpa")))
    return DualEncoder(backbone, tokenizer, EncoderConfig(model=f"tiny-llama-h{hidden}-l{layers}", **config))
