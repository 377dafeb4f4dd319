"""A tiny random NLLB-shaped translation model, built locally (tests, the throughput bench).

An M2M-100 architecture (what NLLB-200 checkpoints are) with a word-level tokenizer over the
given texts and FLORES-style language tokens, or a T5 with MADLAD ``<2xx>`` tags. Its output is
nonsense; it exercises exactly the code paths of the real checkpoints, with nothing downloaded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Sequence

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


def _words(texts: Iterable[str]) -> list[str]:
    return sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]", t)})


def build_tiny_translator(path: str | Path, texts: Sequence[str], lang_codes: Sequence[str], *, style: str = "nllb",
                          seed: int = 0, d_model: int = 16, layers: int = 1, init_std: float = 0.5,
                          stop_early: bool = False) -> Path:
    """Save a random model and its tokenizer under ``path``; ``lang_codes`` are model codes
    (``deu_Latn`` for nllb, ``de`` for madlad). Language tokens are special and decode to nothing,
    and a large ``init_std`` makes the output depend on the input. ``stop_early`` (nllb) gives the
    end-of-sequence token the output row of the token the model most often starts with, so that
    some outputs are empty and others cut short (to exercise the filters)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        M2M100Config,
        M2M100ForConditionalGeneration,
        PreTrainedTokenizerFast,
        T5Config,
        T5ForConditionalGeneration,
    )

    path = Path(path)
    lang_tokens = list(lang_codes) if style == "nllb" else [f"<2{c}>" for c in lang_codes]
    vocab = {t: i for i, t in enumerate([*SPECIALS, *lang_tokens, *_words(texts)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", additional_special_tokens=lang_tokens)
    torch.manual_seed(seed)
    common = dict(vocab_size=len(vocab), pad_token_id=1, eos_token_id=2, decoder_start_token_id=2)
    if style == "nllb":
        config = M2M100Config(d_model=d_model, encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=2,
                              decoder_attention_heads=2, encoder_ffn_dim=2 * d_model, decoder_ffn_dim=2 * d_model,
                              max_position_embeddings=256, bos_token_id=0, init_std=init_std,
                              tie_word_embeddings=not stop_early, **common)
        model = M2M100ForConditionalGeneration(config)
        if stop_early:
            _stop_early(model, fast, texts, lang_tokens[-1])
    else:
        config = T5Config(d_model=d_model, d_kv=d_model // 2, d_ff=2 * d_model, num_layers=layers, num_heads=2,
                          initializer_factor=init_std / 0.02, **common)
        config.decoder_start_token_id = 1
        model = T5ForConditionalGeneration(config)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def _stop_early(model, tokenizer, texts: Sequence[str], target_token: str) -> None:
    import collections

    import torch

    firsts = collections.Counter()
    forced = tokenizer.convert_tokens_to_ids(target_token)
    with torch.no_grad():
        for text in texts[:64]:
            row = tokenizer(text, add_special_tokens=False)["input_ids"][:30] + [2]
            out = model.generate(input_ids=torch.tensor([row]), max_new_tokens=2, forced_bos_token_id=forced)[0]
            if len(out) > 2:  # decoder start, language token, first word
                firsts[int(out[2])] += 1
        common = max(firsts, key=lambda t: (firsts[t], -t))
        model.lm_head.weight[2] = 1.05 * model.lm_head.weight[common]
