"""Faults and bad input a user meets, without Ray: a results filesystem failing mid-write, two
drivers on one study, unwritable outputs, model paths that do not exist, the console's table."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from conftest import TINY_STUDY
from scaling.store import ResultStore
from scaling.sweep.study import StudyConfigError, build_study


class FailingHandler(pafs.FSSpecHandler):
    """An object store whose ``fail_after``-th file write raises (a network drop mid-trial)."""

    def __init__(self, fs, fail_after: int) -> None:
        super().__init__(fs)
        self.writes, self.fail_after = 0, fail_after

    def open_output_stream(self, path, metadata):
        self.writes += 1
        if self.writes == self.fail_after:
            raise OSError("connection reset while writing " + path)
        return super().open_output_stream(path, metadata)


def _tables():
    return (pa.table({"trial_id": ["t1"], "metric": ["map"], "value": [0.5]}),
            pa.table({"trial_id": ["t1"], "step": [10], "loss": [1.5]}))


@pytest.mark.parametrize("fail_after", [1, 2, 3])
def test_a_failing_object_store_never_shows_a_partial_trial(fail_after):
    memory = MemoryFileSystem()
    handler = FailingHandler(memory, fail_after)
    store = ResultStore(f"/bucket-{fail_after}/study", filesystem=pafs.PyFileSystem(handler))
    metrics, curve = _tables()
    with pytest.raises(OSError, match="connection reset"):
        store.write_trial("t1", metrics, curve, {"trial_id": "t1"})
    assert store.finished() == []  # whatever was written, the trial is not visible
    store.write_trial("t1", metrics, curve, {"trial_id": "t1"})  # the retry (a --resume) completes it
    assert store.finished() == ["t1"] and store.trial_tables("metrics.parquet").equals(metrics)


def test_a_local_write_that_fails_leaves_no_trial(tmp_path, monkeypatch):
    from fsspec.implementations.local import LocalFileSystem

    class NoRename(pafs.FSSpecHandler):
        def move(self, src, dest):
            raise OSError("disk full")

    monkeypatch.setattr(ResultStore, "is_local", property(lambda self: True))  # the rename-into-place path
    store = ResultStore(str(tmp_path / "study"), filesystem=pafs.PyFileSystem(NoRename(LocalFileSystem())))
    metrics, curve = _tables()
    with pytest.raises(OSError, match="disk full"):
        store.write_trial("t1", metrics, curve, {"trial_id": "t1"})
    assert store.finished() == [] and [p.name for p in (tmp_path / "study" / "trials").iterdir()][0].startswith(".t1-")


def test_two_drivers_on_one_study_the_second_is_refused(tmp_path):
    from scaling.sweep.driver import run_study
    from scaling.sweep.lock import LOCK_FILE, StudyLock

    raw = json.loads(json.dumps(TINY_STUDY))
    raw["storage"] = str(tmp_path)
    study = build_study(raw, [])
    store = ResultStore(tmp_path / "tiny")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        first = StudyLock(store)
        first.acquire()
        (tmp_path / "tiny" / LOCK_FILE).write_text(json.dumps({**json.loads((tmp_path / "tiny" / LOCK_FILE).read_text()),
                                                                "pid": sleeper.pid}))
        with pytest.raises(StudyConfigError, match=f"another run of this study is in progress \\(pid {sleeper.pid}"):
            run_study(study)
        assert not (tmp_path / "tiny" / "study.json").exists()  # the refused driver wrote nothing
    finally:
        sleeper.kill()
        sleeper.wait()
    assert "took over the lock of a run that is gone" in StudyLock(store).acquire()  # its owner is gone now


def test_unwritable_storage_is_refused_before_any_work(tmp_path):
    from scaling.sweep.driver import run_study

    (tmp_path / "afile").write_text("x")
    raw = json.loads(json.dumps(TINY_STUDY))
    raw["storage"] = str(tmp_path / "afile" / "results")
    with pytest.raises(StudyConfigError, match="is not writable .*choose a folder or URI this process can write"):
        run_study(build_study(raw, []))


def test_evaluate_out_below_a_file_fails_before_evaluating(tmp_path, capsys):
    from scaling.eval.cli import main

    (tmp_path / "afile").write_text("x")
    assert main(["--model", "./no/model", "--benchmark", "parallel-qa", "--out", str(tmp_path / "afile" / "out")]) == 2
    err = capsys.readouterr().err
    assert "afile is a file, not a folder; choose another --out" in err


def test_a_model_path_that_does_not_exist_is_named_as_a_path(tmp_path, monkeypatch):
    from scaling.models.encoder import EncoderConfig
    from scaling.models.families import family_for

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    for name in ("models/e5-finetuned", "a/b/c", "./x"):
        with pytest.raises(ValueError, match="is not a local folder \\(no such path\\)"):
            family_for(name).check(EncoderConfig(model=name))


def test_yaml_errors_and_a_list_at_the_top_are_named(tmp_path):
    from scaling.sweep.cli import main

    (tmp_path / "bad.yaml").write_text("study: {name: x\naxes: [")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    for name, message in (("bad.yaml", "not valid YAML"), ("list.yaml", "found a list at the top level")):
        with pytest.raises(StudyConfigError, match=message):
            from scaling.sweep.study import load_study
            load_study(tmp_path / name)
        assert main(["--config", str(tmp_path / name), "--dry-run"]) == 2


def test_summary_columns_stay_apart_with_long_names():
    from scaling.sweep.driver import summary

    rows = [{"benchmark": "parallel-qa:eval", "size": "intfloat/multilingual-e5-large-instruct (24 layers)",
             "recipe": "hybrid a=0.5", "setting": s, "metric": m, "query_lang": "*", "value": 0.5}
            for s, m in (("mono", "map"), ("cross", "map"), ("multi", "map"), ("multi", "rank_distance"))]
    line = summary(pa.Table.from_pylist(rows)).splitlines()[1]
    assert "(24 layers)  hybrid a=0.5" in line


def test_manifests_never_hold_credentials():
    from scaling.records import TrialRecord
    from scaling.secrets import redact

    assert redact("s3://AKIAXXXX:topsecret@bucket/studies") == "s3://***@bucket/studies"
    assert redact("gs://bucket/x?secret_key=abc&region=eu") == "gs://bucket/x?secret_key=***&region=eu"
    record = TrialRecord("s", "t1", {"seed": 0}, {"total": 1, "non_embedding": 1}, [],
                         manifest_extra={"config": {"run": {"storage_path": "s3://AKIAXXXX:topsecret@bucket/runs"}}})
    text = json.dumps(record.manifest())
    assert "topsecret" not in text and "AKIAXXXX" not in text and "s3://***@bucket/runs" in text


def test_training_languages_and_models_are_checked_before_ray(tmp_path):
    from scaling.sweep.driver import run_study

    for override, message in (("axes.languages=[[en, th]]", r"training languages \['th'\] are not in the corpus"),
                              ("axes.model=[./no/such/model]", "is not a local folder")):
        raw = json.loads(json.dumps(TINY_STUDY))
        raw["storage"] = str(tmp_path)
        with pytest.raises(StudyConfigError, match=message):
            run_study(build_study(raw, [override]))
        assert not (tmp_path / "tiny").exists()  # nothing written, Ray never started
    with pytest.raises(StudyConfigError, match=r"sampler.alpha must be in \[0, 1\], not 1.5"):
        build_study(json.loads(json.dumps(TINY_STUDY)), ["train.sampler.alpha=1.5"])


def test_the_memory_planner_refuses_a_trial_that_cannot_fit_and_names_the_lever(tmp_path, capsys):
    from scaling.plan.memory import GB, estimate
    from scaling.sweep.budget import budget_lines, trial_shape
    from scaling.sweep.cli import main

    raw = json.loads(json.dumps(TINY_STUDY))
    study = build_study(raw, [])
    trial = study.trials[0]
    shape = trial_shape(trial)
    whole = estimate(shape, trial.config)
    from dataclasses import replace

    chunked = estimate(shape, replace(trial.config, loss=replace(trial.config.loss, chunk_size=8)))
    assert chunked.activations < whole.activations and chunked.weights == whole.weights
    assert whole.weights == shape.total * 4 and whole.optimizer == 2 * whole.gradients  # fp32 AdamW
    budget = (chunked.total + whole.total) / 2 / GB
    raw["resources"]["gpu_memory_gb"] = budget
    lines, refusals = budget_lines(build_study(raw, []))
    assert len(lines) == 3 and len(refusals) == 2 and lines[-1].startswith("  study: ")  # a line per trial, a total
    assert "more than resources.gpu_memory_gb" in refusals[0] and "set loss.chunk_size: 8" in refusals[0]
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps({**raw, "storage": str(tmp_path)}))
    assert main(["--config", str(config), "--dry-run"]) == 2
    assert "set loss.chunk_size: 8" in capsys.readouterr().err
    from scaling.sweep.driver import run_study

    with pytest.raises(StudyConfigError, match="set loss.chunk_size: 8"):
        run_study(build_study(raw, [f"storage={tmp_path}"]))


def test_a_data_error_in_a_study_is_named_before_ray_and_text_is_not_a_list(tmp_path):
    from scaling.sweep.driver import run_study

    raw = json.loads(json.dumps(TINY_STUDY))
    raw["storage"] = str(tmp_path)
    with pytest.raises(StudyConfigError, match="no-such-corpus: no such file or folder, and not a registered dataset"):
        run_study(build_study(raw, ["train.data.train=[no-such-corpus]"]))
    with pytest.raises(StudyConfigError, match="data.train should be a list, got the text 'parallel-qa:train'"):
        build_study(raw, ["train.data.train=parallel-qa:train"])
