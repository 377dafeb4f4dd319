"""Extension points: a batch strategy and a model family defined here, in the test suite, run
through a real study (Ray Tune, Ray Train workers, the evaluation task) without any edit to
``scaling/``. Ray workers import this module from its file (``scaling.plugins``).

Module level imports only what a worker also has (no ``conftest``), since workers load this file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from scaling.models.encoder import DualEncoder, EncoderConfig
from scaling.models.families import ModelFamily, family_for, register_family
from scaling.samplers import Batch, BatchSampler, SamplerConfig, SamplerConfigError, make_sampler, register_strategy


# ---- a toy batch strategy: X-Y batches whose queries are all in one anchor language ----------
@dataclass(frozen=True)
class AnchorParams:
    anchor: str = "en"


@dataclass
class AnchorSampler(BatchSampler):
    kind = "anchor"

    def validate(self) -> None:
        if self.params.anchor not in self.index.languages:
            raise SamplerConfigError(f"sampler.anchor {self.params.anchor!r} is not a training language")

    def setup(self) -> None:
        anchor = self.params.anchor
        self._groups = np.array([g for g, langs in enumerate(self.index.group_langs) if anchor in langs and len(langs) > 1])

    def draw(self, rng: np.random.Generator, step: int) -> Batch:
        groups = self._choose(rng, self._groups, f"groups with {self.params.anchor}")
        q, p, langs = [], [], {self.params.anchor}
        for g in groups:
            others = [lang for lang in self.index.group_langs[int(g)] if lang != self.params.anchor]
            other = others[int(rng.integers(len(others)))]
            q.append(self.index.rows[(int(g), self.params.anchor)])
            p.append(self.index.rows[(int(g), other)])
            langs.add(other)
        return Batch(step, self.kind, np.array(q), np.array(p), tuple(sorted(langs)))


register_strategy("anchor", AnchorParams, AnchorSampler, label=lambda p: f"anchor {p.anchor}", axis_params=("anchor",))


# ---- a toy model family: random tiny Llama decoders built in the workers themselves ----------
class ToyLlamaFamily(ModelFamily):
    """``toy-llama:<hidden>``: a 2-layer random Llama with the byte-level ByT5 tokenizer (no files)."""

    name = "toy-llama"

    def matches(self, model: str) -> bool:
        return model.startswith("toy-llama:")

    def check(self, config: EncoderConfig) -> None:
        if not config.model.split(":", 1)[1].isdigit():
            raise ValueError(f"encoder.model {config.model!r}: expected toy-llama:<hidden size>")

    def build(self, config: EncoderConfig) -> DualEncoder:
        import torch
        from transformers import ByT5Tokenizer, LlamaConfig, LlamaModel

        hidden = int(config.model.split(":", 1)[1])
        tokenizer = ByT5Tokenizer()
        torch.manual_seed(0)  # every worker builds the same weights
        backbone = LlamaModel(LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                                          num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                          pad_token_id=tokenizer.pad_token_id))
        return DualEncoder(backbone, tokenizer, config)


register_family(ToyLlamaFamily())


# ---- tests ---------------------------------------------------------------------------------------
def _study(tmp_path: Path) -> dict:
    return {
        "study": {"name": "toys"},
        "axes": {"model": [{"model": "toy-llama:16", "pooling": "last", "size": "toy"}],
                 "strategy": [{"name": "anchor", "anchor": "de"}], "seed": [0]},
        "train": {"encoder": {"query_prefix": "", "passage_prefix": "", "max_length": 24},
                  "sampler": {"batch_size": 4}, "optim": {"lr": 1e-3, "warmup_steps": 1, "max_steps": 2},
                  "data": {"train": ["parallel-qa:train"], "heldout": None},
                  "run": {"report_every": 2, "checkpoint_every": 2}},
        "benchmarks": ["parallel-qa:eval"], "eval": {"ks": [1, 5], "metrics": ["map", "recall"]},
        "resources": {"workers_per_trial": 2, "cpus_per_worker": 0.5}, "storage": str(tmp_path / "results"),
        "keep_models": False,
    }


def test_toy_strategy_is_validated_like_a_builtin_one():
    from scaling.data import load_corpus
    from scaling.sweep.study import StudyConfigError, build_study

    corpus = load_corpus("parallel-qa:train")
    sampler = make_sampler(SamplerConfig.of("anchor", batch_size=8, anchor="de"), corpus)
    langs = corpus.table.column("lang").to_pylist()
    batch = next(iter(sampler))
    assert {langs[r] for r in batch.query_rows} == {"de"} and "de" not in {langs[r] for r in batch.passage_rows}
    with pytest.raises(SamplerConfigError, match="'th' is not a training language"):
        make_sampler(SamplerConfig.of("anchor", batch_size=8, anchor="th"), corpus)
    raw = _study(Path("/nonexistent"))
    raw["axes"]["strategy"] = [{"name": "anchor", "anchr": "de"}]
    with pytest.raises(StudyConfigError, match="anchr is not a parameter of strategy 'anchor' \\(did you mean 'anchor'"):
        build_study(raw, [])


def test_toy_strategy_and_toy_family_run_through_a_study(tmp_path, capsys):
    ray = pytest.importorskip("ray")
    from scaling.sweep.cli import main

    assert family_for("toy-llama:16").name == "toy-llama"
    config = tmp_path / "toys.yaml"
    config.write_text(json.dumps(_study(tmp_path)))  # JSON is YAML
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        assert main(["--config", str(config)]) == 0, capsys.readouterr().err
    finally:
        ray.shutdown()
    trial = next((tmp_path / "results" / "toys" / "trials").iterdir())
    manifest = json.loads((trial / "manifest.json").read_text())
    assert manifest["axes"]["recipe"] == "anchor de" and manifest["axes"]["anchor"] == "de"
    assert all(k.startswith("anchor:") and "de" in k.split(":")[1].split("+") for k in manifest["batch_counts"])
    assert sum(manifest["batch_counts"].values()) == 2
    assert manifest["config"]["encoder"]["model"] == "toy-llama:16" and manifest["evaluation"]["ks"] == [1, 5]
    import pyarrow.parquet as pq

    metrics = pq.read_table(trial / "metrics.parquet").to_pylist()
    assert {r["recipe"] for r in metrics} == {"anchor de"} and {r["anchor"] for r in metrics} == {"de"}
    names = {r["metric"] for r in metrics}
    assert {"map", "recall@1", "recall@5"} <= names and not {n for n in names if n.startswith(("ndcg", "mrr"))}
