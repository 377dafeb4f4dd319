"""The data inspection command, as a user runs it."""

import subprocess
import sys

from scaling.data.__main__ import main


def test_inspect_corpus_prints_languages_groups_and_pairs(capsys):
    assert main(["inspect", "parallel-qa"]) == 0
    out = capsys.readouterr().out
    assert "560 rows, 70 groups, 8 languages" in out
    assert "German" in out and "cross-lingual (query lang != passage lang) pairs available: 3920" in out


def test_inspect_benchmark(capsys):
    assert main(["inspect", "--benchmark", "parallel-qa:eval", "--languages", "en,deu"]) == 0
    out = capsys.readouterr().out
    assert "60 queries (30 groups)" in out and "relevant per query: {2: 60}" in out


def test_bad_source_exits_2_with_a_message(capsys, tmp_path):
    assert main(["inspect", str(tmp_path / "nope.jsonl")]) == 2
    assert "error:" in capsys.readouterr().err


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "scaling.data", "inspect", "parallel-qa", "--languages", "zh,hi"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "Chinese" in result.stdout and "Hindi" in result.stdout
