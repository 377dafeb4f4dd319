"""Whole sweeps as a user runs them, in subprocesses: submitted to a local Ray cluster with
``ray job submit``, and killed mid-study then resumed. Each starts its own Ray and tears it down."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.compute as pc
import yaml

from conftest import TINY_STUDY
from scaling.store import ResultStore
from scaling.sweep.driver import load_results

ROOT = Path(__file__).resolve().parents[1]
SWEEP = str(ROOT / "jobs" / "sweep.py")
RAY = str(Path(sys.executable).parent / "ray")


def tiny_study(folder: Path, strategies: list, storage: str | None = None) -> Path:
    """The shared tiny study on one worker, without held-out loss, checkpointing every 2 steps."""
    study = json.loads(json.dumps(TINY_STUDY))
    study["axes"]["strategy"] = strategies
    study["train"]["data"] = {"train": ["parallel-qa:train"], "heldout": None}
    study["train"]["run"]["checkpoint_every"] = 2
    study.update(resources={"workers_per_trial": 1, "cpus_per_worker": 1}, keep_models=False,
                 storage=storage or str(folder / "results"))
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    out.update({"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5", "SCALING_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"})
    return out | extra


def start_driver_until_a_trial_finishes(config: Path, store: ResultStore) -> subprocess.Popen:
    """``jobs/sweep.py`` in its own session, returned once the first trial's manifest is written."""
    driver = subprocess.Popen([sys.executable, SWEEP, "--config", str(config)], env=env(), cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 300
    while not store.finished() and time.time() < deadline and driver.poll() is None:
        time.sleep(0.2)
    if not store.finished():
        os.killpg(driver.pid, signal.SIGKILL)
        raise AssertionError("no trial finished before the deadline")
    return driver


def assert_one_set_of_rows_per_trial(folder: Path, trials: int) -> None:
    table = load_results(folder)
    ids = table.column("trial_id")
    assert len(pc.unique(ids)) == trials
    key = pc.binary_join_element_wise(ids, table.column("setting"), table.column("query_lang"),
                                      table.column("candidate_lang"), table.column("metric"), "|")
    assert len(pc.unique(key)) == table.num_rows  # no row twice


def test_ray_job_submit_runs_a_study_on_a_local_cluster(tmp_path):
    # storage as a URI: results, Ray Train checkpoints and Tune state take the cloud-storage path
    config = tiny_study(tmp_path, ["xy", {"name": "hybrid", "alpha": 0.5}], storage=f"file://{tmp_path}/results")
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths have a length limit
    cluster_env = env(RAY_AUTH_MODE="disabled")
    start = subprocess.run([RAY, "start", "--head", "--num-cpus", "2", "--port", "6391", "--dashboard-port", "8271",
                            "--include-dashboard", "true", "--temp-dir", ray_tmp, "--disable-usage-stats"],
                           env=cluster_env, capture_output=True, text=True, timeout=180)
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        for _ in range(6):  # the head's job agent may still be starting ("No available agent"): Ray's own race
            job = subprocess.run([RAY, "job", "submit", "--address", "http://127.0.0.1:8271", "--",
                                  sys.executable, SWEEP, "--config", str(config)],
                                 env=cluster_env, capture_output=True, text=True, timeout=600, cwd=ROOT)
            output = job.stdout + job.stderr
            if "No available agent to submit job" not in output:
                break
            time.sleep(5)
        assert job.returncode == 0, output[-4000:]
        assert "succeeded" in output and "2 of 2 finished, 0 failed" in output
        assert_one_set_of_rows_per_trial(tmp_path / "results" / "tiny", 2)
        runs = tmp_path / "results" / "tiny" / "runs"
        assert len(list(runs.iterdir())) == 2 and not [p for p in runs.glob("*/checkpoint_*") if p.is_dir()]
        assert (tmp_path / "results" / "tiny" / "tune").is_dir()
    finally:
        subprocess.run([RAY, "stop", "--force"], env=cluster_env, capture_output=True, timeout=120)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_killed_driver_then_resume_runs_only_unfinished_trials(tmp_path):
    config = tiny_study(tmp_path, ["xy", "multilingual", {"name": "hybrid", "alpha": 0.5}])
    store = ResultStore(tmp_path / "results" / "tiny")
    driver = start_driver_until_a_trial_finishes(config, store)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
    driver.wait(timeout=60)
    done = store.finished()
    assert 1 <= len(done) < 3
    stamps = {t: os.stat(store.path("trials", t, "manifest.json")).st_mtime_ns for t in done}

    resumed = subprocess.run([sys.executable, SWEEP, "--config", str(config), "--resume"], env=env(), cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-4000:]
    assert f"{len(done)} trial(s) already finished, {3 - len(done)} to run" in output
    assert "3 of 3 finished, 0 failed" in output
    assert {t: os.stat(store.path("trials", t, "manifest.json")).st_mtime_ns for t in done} == stamps  # not re-run
    assert_one_set_of_rows_per_trial(tmp_path / "results" / "tiny", 3)
    runs = sorted(p.name for p in (tmp_path / "results" / "tiny" / "runs").iterdir())
    assert len(runs) == 3  # the killed attempt's run folder was removed, not left beside the re-run


def test_ctrl_c_is_not_success_and_resume_continues(tmp_path):
    config = tiny_study(tmp_path, ["xy", {"name": "hybrid", "alpha": 0.5}])
    store = ResultStore(tmp_path / "results" / "tiny")
    driver = start_driver_until_a_trial_finishes(config, store)
    try:
        driver.send_signal(signal.SIGINT)  # Ctrl-C during the second trial
        output, _ = driver.communicate(timeout=180)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 130, output[-3000:]
    assert "SIGINT received" in output and "interrupted by SIGINT: 1 of 2 trial(s) of this run finished" in output
    assert "--resume" in output and "report: python -m analysis.report" not in output and "hybrid minus" not in output
    assert store.finished() and len(store.finished()) == 1
    logs = list((tmp_path / "results" / "tiny" / "logs").glob("console-*.log"))
    assert logs and "[study]" in logs[0].read_text()
    resumed = subprocess.run([sys.executable, SWEEP, "--config", str(config), "--resume"], env=env(), cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    assert "1 trial(s) already finished, 1 to run" in resumed.stdout
    assert resumed.stdout.count("  trial ") >= 1 and "Trial status" not in resumed.stdout  # our console, not Tune's
    assert_one_set_of_rows_per_trial(tmp_path / "results" / "tiny", 2)
