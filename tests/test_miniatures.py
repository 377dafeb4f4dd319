"""The miniatures of the reference studies (configs/mini/): every one plans offline on local data
only, and one runs end to end, report included (bench/miniatures.py runs them all)."""

import json
from pathlib import Path

import pytest
import yaml

from analysis.report import main as report_main
from scaling.store import ResultStore
from scaling.sweep.cli import main
from scaling.sweep.driver import StudyPlanner
from scaling.sweep.study import load_study

MINI = Path(__file__).parents[1] / "configs" / "mini"
LOCAL = ("parallel-qa", "xquad-r", "mlqa-r", "tatoeba", "sib-200", "offline:", "tiny")


def test_there_is_a_miniature_of_every_reference_study():
    studies = {p.stem[len("study_"):] for p in MINI.parent.glob("study_*.yaml")}
    assert studies == {p.stem for p in MINI.glob("*.yaml")}


@pytest.mark.parametrize("path", sorted(MINI.glob("*.yaml")), ids=lambda p: p.stem)
def test_each_miniature_plans_offline_on_local_data(path, tmp_path, monkeypatch, data_dir):
    monkeypatch.setenv("SCALING_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    study = load_study(path, [f"storage={tmp_path}"])
    sources = [s.source for t in study.trials for s in t.config.data.sources] + list(study.benchmarks)
    models = {t.config.encoder.model for t in study.trials}
    assert all(s.startswith(LOCAL) for s in sources + sorted(models)), (sources, models)
    StudyPlanner(study, ResultStore(str(tmp_path / study.name))).check()  # data, sampler, languages, models


def test_the_low_resource_miniature_runs_whole_and_reports_by_resource_level(tmp_path, monkeypatch, data_dir):
    """The cheapest miniature, run as shipped (2 trials): Q2's fixed training languages reach the
    trials, Tatoeba's pivot scores make its report (seen / zero-shot, resource classes)."""
    pytest.importorskip("ray")
    import ray

    monkeypatch.setenv("SCALING_DATA_DIR", str(Path(data_dir).resolve()))  # the study runs from another folder
    monkeypatch.chdir(tmp_path)
    name = yaml.safe_load((MINI / "low_resource.yaml").read_text())["study"]["name"]
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        assert main(["--config", str(MINI / "low_resource.yaml"), "--set", "storage=results"]) == 0
    finally:
        ray.shutdown()
    folder = tmp_path / "results" / name
    manifests = [json.loads(p.read_text()) for p in sorted(folder.glob("trials/*/manifest.json"))]
    assert len(manifests) == 2
    for m in manifests:
        assert sorted(m["training_languages"]) == ["de", "en", "es", "fr"]  # train.data.languages, not every language
        zero_shot = {lang for split in m["evaluation_languages"].values() for lang in split["zero_shot"]}
        seen = {lang for split in m["evaluation_languages"].values() for lang in split["seen"]}
        assert zero_shot == {"sw", "xh", "ta"} and seen == {"en", "de", "es", "fr"}  # one Tatoeba member per pair
        assert m["sampling"]  # realised batch counts recorded
    assert report_main([str(folder), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| cross accuracy@1 to en | cross accuracy@1 from en |" in text
    assert "Cross accuracy@1 to en per resource level" in text and "| class 2 | 2 |" in text  # sw, xh
    assert "| zero-shot | 3 |" in text and (tmp_path / "report" / "figures" / "tatoeba-resource-groups.png").is_file()
