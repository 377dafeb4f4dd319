"""The result store: atomic trials on a local disk, manifest-last on an object store."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from scaling.store import ResultStore, attempt_name, trial_run_name


def tables():
    metrics = pa.table({"trial_id": ["t1", "t1"], "metric": ["map", "mrr@10"], "value": [0.5, 0.6]})
    curve = pa.table({"trial_id": ["t1"], "step": [10], "loss": [1.5]})
    return metrics, curve


def memory_store(root: str = "/bucket/study") -> ResultStore:
    """An in-memory object store (no directory rename), standing in for s3:// in tests."""
    return ResultStore(root, filesystem=pafs.PyFileSystem(pafs.FSSpecHandler(MemoryFileSystem())))


@pytest.mark.parametrize("kind", ["local", "object"])
def test_trials_round_trip_and_count_only_when_the_manifest_exists(kind, tmp_path):
    store = ResultStore(tmp_path / "study") if kind == "local" else memory_store(f"/bucket-{tmp_path.name}/study")
    assert store.is_local == (kind == "local") and store.finished() == []
    metrics, curve = tables()
    store.write_trial("t1", metrics, curve, {"trial_id": "t1", "seed": 0})
    store.write_json("study.json", {"trials": ["t1", "t2"]})
    # an attempt that died after its Parquet files but before its manifest
    store.write_bytes("trials/t2/metrics.parquet", b"partial")
    assert store.finished() == ["t1"]
    assert store.trial_tables("metrics.parquet").equals(metrics)
    assert store.manifests() == {"t1": {"trial_id": "t1", "seed": 0}}
    assert store.read_json("study.json") == {"trials": ["t1", "t2"]}
    # a re-run replaces the trial as a whole
    store.write_trial("t1", metrics.slice(0, 1), curve, {"trial_id": "t1", "seed": 1})
    assert store.trial_tables("metrics.parquet").num_rows == 1 and store.manifests()["t1"]["seed"] == 1


def test_folders_upload_to_an_object_store(tmp_path):
    store = memory_store()
    (tmp_path / "model" / "sub").mkdir(parents=True)
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "model" / "sub" / "weights.bin").write_bytes(b"\x00\x01")
    store.upload_folder(tmp_path / "model", "runs/trial-x/final_model")
    assert store.read_bytes("runs/trial-x/final_model/sub/weights.bin") == b"\x00\x01"
    assert store.read_json("runs/trial-x/final_model/config.json") == {}


def test_local_writes_leave_no_temporary_files(tmp_path):
    store = ResultStore(tmp_path / "study")
    metrics, curve = tables()
    store.write_trial("t1", metrics, curve, {"trial_id": "t1"})
    store.write_json("study.json", {})
    names = sorted(p.name for p in (tmp_path / "study").rglob("*"))
    assert names == ["curve.parquet", "manifest.json", "metrics.parquet", "study.json", "t1", "trials"]
    assert json.loads((tmp_path / "study" / "trials" / "t1" / "manifest.json").read_text()) == {"trial_id": "t1"}


def test_stale_runs_of_a_trial_are_removed(tmp_path):
    store = ResultStore(tmp_path)
    first, second = attempt_name(trial_run_name("ab12")), attempt_name(trial_run_name("ab12"))
    other = attempt_name(trial_run_name("cd34"))
    for name in (f"{first}/checkpoint_1", second, other, "trial-ab12-notes"):
        (tmp_path / "runs" / name).mkdir(parents=True)
    removed = store.remove_stale_runs(trial_run_name("ab12"))
    assert sorted(p.rsplit("/", 1)[1] for p in removed) == sorted([first, second])
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted([other, "trial-ab12-notes"])


def test_uris_and_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ResultStore("results/study").location == f"{tmp_path}/results/study"  # absolute, as Ray needs
    assert ResultStore(f"file://{tmp_path}/s").root == f"{tmp_path}/s"
    with pytest.raises(ValueError, match="storage 'nosuchscheme://x/y': pyarrow cannot open this URI"):
        ResultStore("nosuchscheme://x/y")
    with pytest.raises(FileNotFoundError, match="no finished trials"):
        ResultStore(tmp_path / "empty").trial_tables("metrics.parquet")


@pytest.mark.parametrize("kind", ["local", "object"])
def test_damaged_trial_files_name_the_file_and_the_fix(kind, tmp_path):
    """A truncated or missing file in a finished trial: an error naming it and saying how to recover."""
    from scaling.store import MissingResultFile, ResultFileError

    store = ResultStore(tmp_path / "study") if kind == "local" else memory_store(f"/bucket-{tmp_path.name}/study")
    metrics, curve = tables()
    for t in ("t1", "t2"):
        store.write_trial(t, metrics, curve, {"trial_id": t})
    fix = f"delete the trial folder {store.location}/trials/t2 and run the study again with --resume"

    good = store.read_bytes("trials/t2/metrics.parquet")
    store.write_bytes("trials/t2/metrics.parquet", good[: len(good) // 2])  # truncated
    with pytest.raises(ResultFileError) as exc:
        store.trial_tables("metrics.parquet")
    msg = str(exc.value)
    assert msg.startswith(f"{store.location}/trials/t2/metrics.parquet: not a readable Parquet file") and fix in msg

    store.fs.delete_file(store.path("trials/t2/metrics.parquet"))  # missing
    with pytest.raises(MissingResultFile) as exc:
        store.trial_tables("metrics.parquet")
    assert isinstance(exc.value, FileNotFoundError) and isinstance(exc.value, ValueError)
    assert str(exc.value).startswith(f"{store.location}/trials/t2/metrics.parquet is missing (") and fix in str(exc.value)

    manifest = store.read_bytes("trials/t2/manifest.json")
    store.write_bytes("trials/t2/manifest.json", manifest[: len(manifest) // 2])  # truncated
    with pytest.raises(ResultFileError) as exc:
        store.manifests()
    msg = str(exc.value)
    assert msg.startswith(f"{store.location}/trials/t2/manifest.json: not valid JSON") and fix in msg

    with pytest.raises(MissingResultFile, match="study.json is missing .*run the study again with --resume"):
        store.read_json("study.json")
