"""The dual encoder: pooling, prefixes, layer truncation, freezing, parameter counts, encoding."""

import numpy as np
import pytest
import torch

from scaling.models.encoder import EncoderConfig, pool
from scaling.models.tiny import tiny_encoder

TEXTS = ["bees have four wings", "the nile flows into the sea", "ice floats on water because it is light",
         "a", "water boils at one hundred degrees at sea level"]


def test_pooling_rules_on_a_hand_tensor():
    hidden = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [9.0, 9.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 0.0]]
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 1.0]]  # padding ignored
    assert pool(hidden, mask, "last").tolist() == [[3.0, 2.0]]  # last non-padding token


def test_config_validation_names_the_setting():
    with pytest.raises(ValueError, match="encoder.pooling"):
        EncoderConfig(pooling="max")
    with pytest.raises(ValueError, match="encoder.num_layers"):
        EncoderConfig(num_layers=0)


def test_encode_is_normalised_and_independent_of_batching():
    enc = tiny_encoder(TEXTS)
    a = enc.encode(TEXTS, "passage", batch_size=2)
    b = enc.encode(TEXTS, "passage", batch_size=64)
    one = np.stack([enc.encode([t], "passage")[0] for t in TEXTS])
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a, one, atol=1e-5)  # length sorting returns rows in input order


def test_prefixes_change_the_embedding():
    enc = tiny_encoder(TEXTS, query_prefix="bees: ", passage_prefix="")  # prefixes in the tiny vocabulary
    q, p = enc.tokenize(["the nile"], "query")["input_ids"][0], enc.tokenize(["the nile"], "passage")["input_ids"][0]
    assert len(q) == len(p) + 2  # "bees" and ":" added
    assert not np.allclose(enc.encode(TEXTS[:2], "query"), enc.encode(TEXTS[:2], "passage"))


def test_parameter_counts_truncation_and_freezing():
    enc = tiny_encoder(TEXTS, hidden=32, layers=4)
    counts = enc.parameter_counts()
    emb = sum(p.numel() for p in enc.backbone.embeddings.word_embeddings.parameters())
    embeddings = enc.backbone.embeddings
    emb += embeddings.position_embeddings.weight.numel() + embeddings.token_type_embeddings.weight.numel()
    assert counts["total"] - counts["non_embedding"] == emb
    small = tiny_encoder(TEXTS, hidden=32, layers=4, num_layers=2, freeze_word_embeddings=True)
    assert len(small.backbone.encoder.layer) == 2 and small.backbone.config.num_hidden_layers == 2
    per_layer = sum(p.numel() for p in enc.backbone.encoder.layer[0].parameters())
    assert counts["non_embedding"] - small.parameter_counts()["non_embedding"] == 2 * per_layer
    assert small.parameter_counts()["trainable"] == small.parameter_counts()["total"] - small.word_embeddings().weight.numel()
    with pytest.raises(ValueError, match="has only 4 layers"):
        tiny_encoder(TEXTS, layers=4, num_layers=5)


def _twin_encoders(kind: str, pooling: str):
    """The same random model twice: skipping padding and padding as usual."""
    if kind == "bert":
        return [tiny_encoder(TEXTS, hidden=32, layers=2, pooling=pooling, skip_padding=skip) for skip in (True, False)]
    from transformers import LlamaConfig, LlamaModel  # a decoder: rotary positions, gated MLP, "last" pooling

    from scaling.models.encoder import DualEncoder
    from scaling.models.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer(TEXTS, 300)
    out = []
    for skip in (True, False):
        torch.manual_seed(0)
        backbone = LlamaModel(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                          attention_dropout=0.1, pad_token_id=0))
        out.append(DualEncoder(backbone, tokenizer, EncoderConfig(model="tiny-llama", pooling=pooling, skip_padding=skip)))
    return out


@pytest.mark.parametrize("kind,pooling", [("bert", "mean"), ("bert", "cls"), ("llama", "last")])
def test_skipping_padding_changes_no_output_or_gradient(kind, pooling, monkeypatch):
    """Linears run on real tokens only, yet outputs and every gradient match the padded model,
    in training mode too (the dropout masks are drawn on the same padded shapes)."""
    skipping, padded = _twin_encoders(kind, pooling)
    ids, mask = (skipping.tokenize(TEXTS, "passage")[k] for k in ("input_ids", "attention_mask"))
    assert 0 < int(mask.sum()) < mask.numel()  # the batch has padding to skip

    rows = []  # rows each linear inside the blocks multiplies
    plain = torch.nn.Linear.forward
    monkeypatch.setattr(torch.nn.Linear, "forward",
                        lambda self, x: rows.append(x.reshape(-1, x.shape[-1]).shape[0]) or plain(self, x))
    for training in (False, True):
        grads = []
        for enc in (skipping, padded):
            enc.train(training)
            enc.zero_grad()
            torch.manual_seed(7)
            rows.clear()
            out = enc(ids, mask)
            (out * torch.linspace(-1, 1, out.shape[1])).sum().backward()
            grads.append({n: p.grad.clone() for n, p in enc.named_parameters() if p.grad is not None})
            if enc is skipping:
                assert set(rows) == {int(mask.sum())}, "every block linear multiplies the real tokens only"
                first = out.detach()
            else:
                assert set(rows) == {mask.numel()}
                torch.testing.assert_close(first, out.detach(), atol=1e-5, rtol=1e-5)
        assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
        for name in grads[0]:
            torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-5, rtol=1e-4, msg=name)


def test_skipping_padding_keeps_names_saving_and_unpadded_batches(tmp_path):
    from scaling.models.encoder import DualEncoder
    from scaling.models.unpadded import UnpaddedLinear

    skipping, padded = _twin_encoders("bert", "mean")
    assert list(skipping.state_dict()) == list(padded.state_dict())
    assert sum(isinstance(m, UnpaddedLinear) for m in skipping.modules()) == 2 * 6  # 6 linears per BERT block
    assert not any(isinstance(m, UnpaddedLinear) for m in padded.modules())
    one = skipping.tokenize(["bees have four wings"], "query")  # no padding at all: the plain path
    torch.testing.assert_close(skipping.eval()(**one), padded.eval()(**one))
    loaded = DualEncoder.load(skipping.save(tmp_path / "model"))
    assert loaded.config.skip_padding and isinstance(loaded.backbone.encoder.layer[0].output.dense, UnpaddedLinear)
    np.testing.assert_allclose(loaded.encode(TEXTS, "passage"), padded.encode(TEXTS, "passage"), atol=1e-5)


def test_tiny_tokenizer_is_the_same_in_every_process():
    """Workers and resumed runs rebuild the tokenizer in new processes: they must agree (the trained
    WordPiece vocabulary differed from process to process)."""
    import json
    import subprocess
    import sys

    from scaling.models.tiny import tiny_tokenizer

    code = ("import json, sys; from scaling.models.tiny import tiny_tokenizer; "
            "print(json.dumps(tiny_tokenizer(json.loads(sys.argv[1]), 40).get_vocab(), sort_keys=True))")
    runs = {subprocess.run([sys.executable, "-c", code, json.dumps(TEXTS)], capture_output=True, text=True,
                           check=True).stdout for _ in range(3)}
    assert len(runs) == 1
    vocab = json.loads(runs.pop())
    tok = tiny_tokenizer(TEXTS, 40)
    assert vocab == tok.get_vocab() and len(vocab) == 40
    assert "[UNK]" not in tok.tokenize(" ".join(TEXTS))  # every character is in the alphabet
    assert tok.tokenize("water at sea") == ["water", "at", "sea"]  # words seen twice are whole tokens
    assert tok.tokenize("wings") == ["w", "##i", "##n", "##g", "##s"]  # a word seen once is spelled out


def test_pad_token_policy_is_eos_or_an_error_never_a_silent_zero():
    from transformers import LlamaConfig, LlamaModel

    from scaling.models.encoder import DualEncoder
    from scaling.models.tiny import tiny_tokenizer

    def llama(tokenizer):
        return LlamaModel(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2))

    tokenizer = tiny_tokenizer(TEXTS, 200)
    tokenizer.pad_token = None
    tokenizer.eos_token = "[SEP]"
    enc = DualEncoder(llama(tokenizer), tokenizer, EncoderConfig(model="no-pad-llama", pooling="last"))
    assert enc.pad_id == tokenizer.convert_tokens_to_ids("[SEP]") != 0
    bare = tiny_tokenizer(TEXTS, 200)
    bare.pad_token = None
    bare.eos_token = None
    with pytest.raises(ValueError, match="'no-pad-or-eos': its tokenizer has neither a pad nor an EOS token"):
        DualEncoder(llama(bare), bare, EncoderConfig(model="no-pad-or-eos"))


def test_skip_padding_without_found_layers_is_an_error():
    from scaling.models.encoder import DualEncoder

    class Hidden(torch.nn.Module):  # a wrapper that hides the transformer blocks
        def __init__(self, inner):
            super().__init__()
            self.inner, self.config = inner, inner.config

    enc = tiny_encoder(TEXTS, hidden=32, layers=1)
    with pytest.raises(ValueError, match="encoder.skip_padding is on, but the transformer layers of Hidden"):
        DualEncoder(Hidden(enc.backbone), enc.tokenizer, EncoderConfig(model="hidden"))
    DualEncoder(Hidden(enc.backbone), enc.tokenizer, EncoderConfig(model="hidden", skip_padding=False))


def test_model_names_find_their_family():
    from scaling.models.families import family_for

    assert [family_for(n).name for n in ("tiny:hidden=32,layers=2", "offline:multilingual-e5-small",
                                         "intfloat/multilingual-e5-small", "./some/folder", "org/model")] == [
        "tiny", "offline-e5", "offline-e5", "huggingface", "huggingface"]
    with pytest.raises(ValueError, match="encoder.model 'tiny:hidden=x'"):
        family_for("tiny:hidden=x").check(EncoderConfig(model="tiny:hidden=x"))
    with pytest.raises(ValueError, match="is not a local folder"):
        family_for("./no/such/model").check(EncoderConfig(model="./no/such/model"))


@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_activation_checkpointing_with_skipped_padding_is_exact_and_recomputes(kind, monkeypatch):
    """encoder.gradient_checkpointing together with skip_padding: the same outputs and gradients,
    in training mode with dropout, and each block really is recomputed on real tokens only."""
    from scaling.models.tiny import tiny_decoder

    build, pooling = (tiny_encoder, "mean") if kind == "bert" else (tiny_decoder, "last")
    rows = []
    plain = torch.nn.Linear.forward
    monkeypatch.setattr(torch.nn.Linear, "forward",
                        lambda self, x: rows.append(x.reshape(-1, x.shape[-1]).shape[0]) or plain(self, x))
    results = []
    for checkpointing in (True, False):
        enc = build(TEXTS, hidden=32, layers=2, seed=1, pooling=pooling, gradient_checkpointing=checkpointing).train()
        batch = enc.tokenize(TEXTS, "passage")
        torch.manual_seed(3)
        rows.clear()
        out = enc(batch["input_ids"], batch["attention_mask"])
        forward_calls = len(rows)
        (out * torch.linspace(-1, 1, out.shape[1])).sum().backward()
        results.append((out.detach(), {n: p.grad for n, p in enc.named_parameters() if p.grad is not None},
                        forward_calls, list(rows)))
    (out_c, grads_c, fwd_c, rows_c), (out_p, grads_p, fwd_p, rows_p) = results
    real = int(batch["attention_mask"].sum())
    assert len(rows_c) == 2 * fwd_c and len(rows_p) == fwd_p  # the blocks ran again in backward
    assert set(rows_c) == {real}  # ... on the real tokens only
    torch.testing.assert_close(out_c, out_p, atol=1e-5, rtol=1e-5)
    assert grads_c.keys() == grads_p.keys()
    for name in grads_p:
        torch.testing.assert_close(grads_c[name], grads_p[name], atol=1e-5, rtol=1e-4, msg=name)
