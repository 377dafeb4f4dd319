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
    emb += enc.backbone.embeddings.position_embeddings.weight.numel() + enc.backbone.embeddings.token_type_embeddings.weight.numel()
    assert counts["total"] - counts["non_embedding"] == emb
    small = tiny_encoder(TEXTS, hidden=32, layers=4, num_layers=2, freeze_word_embeddings=True)
    assert len(small.backbone.encoder.layer) == 2 and small.backbone.config.num_hidden_layers == 2
    per_layer = sum(p.numel() for p in enc.backbone.encoder.layer[0].parameters())
    assert counts["non_embedding"] - small.parameter_counts()["non_embedding"] == 2 * per_layer
    assert small.parameter_counts()["trainable"] == small.parameter_counts()["total"] - small.word_embeddings().weight.numel()
    with pytest.raises(ValueError, match="has only 4 layers"):
        tiny_encoder(TEXTS, layers=4, num_layers=5)
