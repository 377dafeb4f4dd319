import pytest

from scaling.models.ladder import SizeLadder, measure


def test_tiny_ladder_grows_in_non_embedding_parameters():
    ladder = SizeLadder("tiny", ((32, 1), (32, 2), (64, 2)))
    configs = ladder.encoder_configs()
    assert [c.model for c in configs][0] == "tiny:hidden=32,layers=1,heads=1"
    counts = measure(configs, texts=["bees have wings", "the nile"])
    non_emb = [c["non_embedding"] for c in counts]
    assert non_emb == sorted(non_emb) and len(set(non_emb)) == 3
    assert ladder.labels() == ["h32-l1", "h32-l2", "h64-l2"]


def test_pretrained_ladder_keeps_first_layers():
    configs = SizeLadder("offline:multilingual-e5-small", (3, 6)).encoder_configs()
    assert [(c.model, c.num_layers) for c in configs] == [("offline:multilingual-e5-small", 3),
                                                           ("offline:multilingual-e5-small", 6)]


@pytest.mark.parametrize("family,sizes", [("tiny", ((32,),)), ("tiny", ()), ("xlm-roberta-base", (0,))])
def test_bad_ladders(family, sizes):
    with pytest.raises(ValueError):
        SizeLadder(family, sizes)
