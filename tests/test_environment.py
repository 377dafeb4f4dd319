"""The suite does not depend on the caller's environment: Hugging Face offline switches are cleared."""

import os
import subprocess
import sys
from pathlib import Path

from conftest import OFFLINE_SWITCHES
from scaling.data import remote

ROOT = Path(__file__).resolve().parents[1]


def test_fixture_clears_every_switch_offline_reads(monkeypatch):
    for var in OFFLINE_SWITCHES:
        assert var not in os.environ
    assert os.environ["SCALING_OFFLINE"] == "1"
    monkeypatch.delenv("SCALING_OFFLINE")
    assert not remote.offline()  # nothing else offline() reads is left set


def test_a_run_under_hf_hub_offline_behaves_the_same():
    """A test that turns SCALING_OFFLINE off passes with HF_HUB_OFFLINE=1 (and friends) exported."""
    env = {**os.environ, **{var: "1" for var in OFFLINE_SWITCHES}}
    test = "tests/test_sources.py::test_dataset_without_public_address_says_so"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "1 passed" in run.stdout
