"""Shared fixtures: the real data directory (from SCALING_DATA_DIR), small file writers, a tiny study."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# A two-trial study of tiny random models on parallel-qa: seconds per trial on 2 CPUs.
TINY_STUDY = {
    "study": {"name": "tiny"},
    "axes": {"model": [{"model": "tiny:hidden=32,layers=2"}], "strategy": ["xy", {"name": "hybrid", "alpha": 0.5}],
             "seed": [0]},
    "train": {"encoder": {"query_prefix": "", "passage_prefix": "", "max_length": 32}, "sampler": {"batch_size": 8},
              "optim": {"lr": 1e-3, "warmup_steps": 1, "max_steps": 4},
              "data": {"train": ["parallel-qa:train"], "heldout": "parallel-qa:eval"},
              "run": {"report_every": 2, "checkpoint_every": 4}},
    "benchmarks": ["parallel-qa:eval"],
    "resources": {"workers_per_trial": 2, "cpus_per_worker": 0.5},
}


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real data; tests that need it skip, saying why, when it is not configured."""
    value = os.environ.get("SCALING_DATA_DIR")
    if not value:
        pytest.skip("SCALING_DATA_DIR is not set (point it at ../shared/data to run real-data tests)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"SCALING_DATA_DIR={value} does not exist")
    return path


# Switches that turn downloads off (all that scaling.data.remote.offline() reads, plus transformers').
# A test must not depend on whether the caller happened to set them.
OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch, tmp_path_factory):
    """Tests never touch the network or the user's cache, whatever the caller's environment says:
    downloads are off through SCALING_OFFLINE alone (a test that wants them deletes it) and the
    Hugging Face switches are cleared."""
    for var in OFFLINE_SWITCHES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SCALING_OFFLINE", "1")
    monkeypatch.setenv("SCALING_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def squad_doc(paragraphs: list[dict], title: str = "T") -> dict:
    return {"version": "test", "data": [{"title": title, "paragraphs": paragraphs}]}


def paragraph(sentences: list[str], questions: list[tuple[str, str, int]], sep: str = " ",
              breaks: bool = True) -> dict:
    """A SQuAD paragraph; each question is (id, text, index of the answer sentence)."""
    context, spans = "", []
    for s in sentences:
        if context:
            context += sep
        spans.append([len(context), len(context) + len(s)])
        context += s
    qas = [{"id": qid, "question": q, "answers": [{"text": context[slice(*spans[i])][:5], "answer_start": spans[i][0]}]}
           for qid, q, i in questions]
    para = {"context": context, "qas": qas}
    if breaks:
        para["sentence_breaks"] = spans
        para["sentences"] = sentences
    return para


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def crash_at(step_index: int):
    """A step hook that fails once, at ``step_index``, in a run that was not resumed."""
    def crash(step, rank, world, resumed):
        if step == step_index and not resumed:
            raise RuntimeError("crash")
    return crash


def crashed_run(plan, folder, step_index: int):
    """A local run that crashed at ``step_index`` (its checkpoints are kept)."""
    from scaling.training.context import LocalWorker
    from scaling.training.worker import run_worker

    worker = LocalWorker(folder)
    with pytest.raises(RuntimeError, match="crash"):
        run_worker(plan, worker, hooks=[crash_at(step_index)])
    return worker
