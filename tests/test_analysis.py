"""The analysis package against synthetic results of known shape, and hand computations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.aggregate import aggregate_seeds
from analysis.compare import compare_recipes
from analysis.curves import metric_curve, size_fits, step_curve
from analysis.fits import FitError, fit_power_law, slope_beyond
from analysis.per_language import language_matrix, per_language_scores
from analysis.report import main as report_main
from analysis.results import load
from analysis.synthetic import SyntheticStudy, write_synthetic_study
from analysis.uncertainty import mean_ci


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """5 sizes x 3 recipes x 5 seeds, hybrid ahead by 0.03 mAP."""
    return load(write_synthetic_study(str(tmp_path_factory.mktemp("planted")), SyntheticStudy()))


@pytest.fixture(scope="module")
def null(tmp_path_factory):
    spec = SyntheticStudy(name="null", advantage={"hybrid": 0.0}, seed=7)
    return load(write_synthetic_study(str(tmp_path_factory.mktemp("null")), spec))


def power_law_points(alpha=0.35, E=0.2, A=50.0, seeds=3, noise=0.02, seed=1):
    rng = np.random.default_rng(seed)
    n = np.repeat(np.geomspace(1e6, 3e8, 6), seeds)
    return n, (E + A * n ** -alpha) * np.exp(rng.normal(0, noise, len(n)))


def test_power_law_exponent_recovered_within_its_interval():
    n, y = power_law_points()
    fit = fit_power_law(n, y, n_bootstrap=300)
    assert fit.alpha_ci[0] <= 0.35 <= fit.alpha_ci[1]
    assert fit.E_ci[0] <= 0.2 <= fit.E_ci[1]
    assert abs(fit.alpha - 0.35) < 0.05 and fit.alpha_ci[1] - fit.alpha_ci[0] < 0.2
    # the fitted curve goes through the data (within the noise)
    assert np.max(np.abs(np.log(fit.predict(n)) - np.log(y))) < 0.08
    # without a floor, data with a large floor is fitted with a much smaller exponent
    assert fit_power_law(n, y, saturating=False, n_bootstrap=50).alpha < 0.2


def test_power_law_is_reproducible_from_its_seed():
    n, y = power_law_points()
    a, b = fit_power_law(n, y, n_bootstrap=100, seed=3), fit_power_law(n, y, n_bootstrap=100, seed=3)
    assert a == b
    assert fit_power_law(n, y, n_bootstrap=100, seed=4).alpha_ci != a.alpha_ci


def test_power_law_is_robust_to_one_diverged_trial():
    n, y = power_law_points(noise=0.01)
    y = y.copy()
    y[-1] *= 2.5  # one seed of the largest model diverged
    assert abs(fit_power_law(n, y, n_bootstrap=20).alpha - 0.35) < 0.06


def test_power_law_refuses_too_few_sizes():
    with pytest.raises(FitError, match="at least 4 distinct model sizes; got 2"):
        fit_power_law([1e6, 1e6, 4e6, 4e6], [0.5, 0.52, 0.4, 0.41])
    with pytest.raises(FitError, match="needs at least 3"):
        fit_power_law([1e6, 4e6], [0.5, 0.4], saturating=False)
    with pytest.raises(FitError, match="1 - mAP"):
        fit_power_law([1e6, 2e6, 4e6, 8e6], [0.5, 0.4, 0.0, -0.1])


def test_slope_beyond_k_against_hand_computed_ols():
    x = np.repeat([20, 40, 50, 60, 80], 3)
    rng = np.random.default_rng(0)
    y = 0.6 - 0.002 * np.maximum(x - 40, 0) + rng.normal(0, 0.004, len(x))
    fit = slope_beyond(x, y, k=40)
    xs, ys = x[x >= 40], y[x >= 40]
    sxx = np.sum((xs - xs.mean()) ** 2)
    slope = np.sum((xs - xs.mean()) * (ys - ys.mean())) / sxx
    resid = ys - (ys.mean() + slope * (xs - xs.mean()))
    se = math.sqrt(np.sum(resid ** 2) / (len(xs) - 2) / sxx)
    assert fit.slope == pytest.approx(slope) and fit.n_points == 12 and fit.counts == (40, 50, 60, 80)
    assert fit.slope_ci[1] - fit.slope == pytest.approx(2.2281 * se, rel=1e-3)  # t(0.975, 10 df)
    assert fit.excludes_zero
    covered = 0
    for r in range(200):  # the interval contains the planted slope about 95% of the time
        noisy = 0.6 - 0.002 * np.maximum(x - 40, 0) + np.random.default_rng(r).normal(0, 0.004, len(x))
        low, high = slope_beyond(x, noisy, k=40).slope_ci
        covered += low <= -0.002 <= high
    assert 0.9 <= covered / 200 <= 0.99
    flat = slope_beyond(x, 0.6 + rng.normal(0, 0.004, len(x)), k=40)
    assert not flat.excludes_zero
    with pytest.raises(FitError, match="at least 2 distinct language counts >= 60"):
        slope_beyond([40, 60, 60], [0.5, 0.4, 0.41], k=60)


def test_mean_ci_reproducible_and_degenerate_cases():
    values = [0.50, 0.52, 0.47, 0.55, 0.51]
    assert mean_ci(values, seed=1) == mean_ci(values, seed=1)
    low, high = mean_ci(values, seed=1)
    assert low < np.mean(values) < high and min(values) <= low and high <= max(values)
    assert all(math.isnan(v) for v in mean_ci([0.5]))
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)


def test_mean_ci_covers_at_about_its_level():
    hits = sum(lo <= 1.0 <= hi for lo, hi in
               (mean_ci(np.random.default_rng(r).normal(1.0, 0.1, 10), seed=r, n_resamples=1000) for r in range(200)))
    assert 0.88 <= hits / 200 <= 0.99


def test_aggregate_seeds_matches_numpy():
    frame = pd.DataFrame({"trial_id": list("abcdef"), "seed": [0, 1, 2] * 2, "recipe": ["xx"] * 3 + ["xy"] * 3,
                          "metric": "map", "value": [0.1, 0.2, 0.6, 0.3, 0.3, 0.3]})
    agg = aggregate_seeds(frame).set_index("recipe")
    assert agg.loc["xx", "mean"] == pytest.approx(0.3) and agg.loc["xx", "n"] == 3
    assert agg.loc["xx", "std"] == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1))
    assert 0.1 <= agg.loc["xx", "ci_low"] < 0.3 < agg.loc["xx", "ci_high"] <= 0.6
    assert agg.loc["xy", "ci_low"] == agg.loc["xy", "ci_high"] == pytest.approx(0.3)
    again = aggregate_seeds(frame).set_index("recipe")
    assert again.equals(agg)


def test_load_builds_tidy_frames(planted):
    assert len(planted.trials) == 75 and planted.grid_size() == 75
    assert planted.varying() == ["size", "recipe"]
    assert set(planted.metrics["recipe"]) == {"xx", "xy", "hybrid a=0.5"}
    assert {"trial_id", "seed", "size", "non_embedding_params", "benchmark", "setting", "query_lang",
            "candidate_lang", "metric", "value"} <= set(planted.metrics.columns)
    rows = planted.select(setting="multi", metric="map", recipe=["xx", "xy"], query_lang="*")
    assert len(rows) == 50 and set(rows["recipe"]) == {"xx", "xy"}
    with pytest.raises(KeyError, match="no column 'modell'"):
        planted.select(modell="x")
    assert planted.training_languages(planted.trials["trial_id"][0]) == ["en", "de", "es", "fr", "ru", "zh", "ar", "hi"]
    assert len(planted.curves) == 750 and "recipe" in planted.curves


def test_load_reads_a_uri_and_refuses_an_empty_folder(planted, tmp_path):
    uri = "file://" + planted.location
    assert len(load(uri).trials) == 75
    with pytest.raises(FileNotFoundError, match="no finished trials"):
        load(tmp_path)


def test_planted_hybrid_advantage_is_detected_and_null_is_not(planted, null):
    def flagged(results):
        rows = results.select(setting="multi", metric="map", query_lang="*")
        return compare_recipes(rows)

    found = flagged(planted)
    assert len(found) == 10 and (found["n_pairs"] == 5).all()
    assert found["excludes_zero"].all() and (found["better"] == "hybrid a=0.5").all()
    assert found["diff"].between(0.01, 0.05).all()
    none = flagged(null)
    assert none["excludes_zero"].sum() <= 1  # ~5% false positives expected over 10 cells
    assert none["diff"].abs().max() < 0.02


def test_paired_difference_by_hand(planted):
    rows = planted.select(setting="multi", metric="map", query_lang="*", size="m")
    cmp = compare_recipes(rows, baselines=["xx"])
    hybrid = rows[rows["recipe"] == "hybrid a=0.5"].set_index("seed")["value"]
    xx = rows[rows["recipe"] == "xx"].set_index("seed")["value"]
    assert cmp["diff"].iloc[0] == pytest.approx((hybrid - xx).mean())
    lower = compare_recipes(planted.select(setting="multi", metric="rank_distance", query_lang="*", size="m"),
                            baselines=["xx"])
    assert lower["diff"].iloc[0] < 0 and lower["better"].iloc[0] == "hybrid a=0.5"  # lower rank distance wins
    with pytest.raises(ValueError, match="baseline 'multilingual' not among"):
        compare_recipes(rows, baselines=["multilingual"])


def test_size_curve_and_fits_on_a_study(planted):
    curve, fits = size_fits(planted, n_bootstrap=200)
    assert set(curve["line"]) == {"xx", "xy", "hybrid a=0.5"} and (curve["n"] == 5).all()
    # synthetic truth: 1 - mAP = E' + 40 / N^0.3 (E' shifted per recipe), additive seed noise
    assert all(abs(fit.alpha - 0.3) < 0.05 for fit in fits.values())
    assert sum(fit.alpha_ci[0] <= 0.3 <= fit.alpha_ci[1] for fit in fits.values()) >= 2  # three 95% intervals
    hybrid = curve[curve["line"] == "hybrid a=0.5"]
    assert hybrid["non_embedding_params"].is_monotonic_increasing and hybrid["mean"].is_monotonic_increasing
    steps = step_curve(planted)
    assert set(steps["step"]) == set(range(10, 101, 10))
    assert set(step_curve(planted, column="heldout_loss_xy")["step"]) == {50, 100}  # only where it was recorded


def test_three_sizes_get_the_power_law_without_a_floor(tmp_path):
    """Three sizes cannot identify E + A / N^alpha (three parameters from three points); the fit
    drops the floor and says so. Planted: error = 40 / N^0.3 (E = 0), seed noise 0.01."""
    spec = SyntheticStudy(name="three", sizes=(("s", 2_000_000), ("m", 8_000_000), ("l", 30_000_000)), E=0.0,
                          recipes=("xy", "hybrid"), seeds=(0, 1, 2))
    results = load(write_synthetic_study(str(tmp_path), spec))
    _, fits = size_fits(results, n_bootstrap=200)
    assert all(not fit.saturating and fit.E == 0 and abs(fit.alpha - 0.3) < 0.05 for fit in fits.values()), fits
    assert all("no floor E fitted" in fit.describe() for fit in fits.values())


def test_language_slope_on_a_language_study(tmp_path):
    spec = SyntheticStudy(name="langs", sizes=(("s", 8_000_000),), recipes=("xy", "hybrid"), language_counts=(4, 6, 8, 10),
                          language_slope=-0.01, slope_from=6, seeds=(0, 1, 2), zero_shot_languages=2)
    results = load(write_synthetic_study(str(tmp_path), spec))
    assert results.varying() == ["recipe", "num_languages", "languages"]
    curve = metric_curve(results, x="languages")
    assert set(curve["num_languages"]) == {4, 6, 8, 10}
    rows = results.select(setting="multi", metric="map", query_lang="*", recipe="xy")
    fit = slope_beyond(rows["num_languages"], rows["value"], k=6)
    assert fit.excludes_zero and fit.slope_ci[0] <= -0.01 <= fit.slope_ci[1]


def test_per_language_views(planted):
    chosen = planted.select(size="xl", recipe="hybrid a=0.5")
    matrix = language_matrix(chosen)
    assert list(matrix.index) == list(matrix.columns) and len(matrix) == 10
    mono = chosen[(chosen["setting"] == "mono") & (chosen["query_lang"] == "de") & (chosen["metric"] == "map")]
    assert matrix.loc["de", "de"] == pytest.approx(mono["value"].mean())
    scores = per_language_scores(planted, chosen).set_index("query_lang")
    assert scores.loc["en", "seen"] == True and scores.loc["th", "seen"] == False  # noqa: E712
    assert scores.loc["en", "mean"] > scores.loc["th", "mean"]  # zero-shot languages are planted 0.08 lower


def test_report_on_a_multi_seed_study(planted, tmp_path):
    out = tmp_path / "report"
    assert report_main([planted.location, "--out", str(out), "--n-bootstrap", "100"]) == 0
    text = (out / "report.md").read_text()
    for heading in ("## Grid", "### Results (macro over languages)", "### Hybrid versus each baseline",
                    "### Scaling with model size", "### Per language", "## Training", "## Figures"):
        assert heading in text
    assert text.count("residual-bootstrap refits") >= 9 and "not fitted" not in text
    figures = sorted(p.name for p in (out / "figures").iterdir())
    stems = {p.rsplit(".", 1)[0] for p in figures}
    assert {f"{s}.{ext}" for s in stems for ext in ("png", "svg")} == set(figures)
    assert {"synthetic-qa-multi-map-vs-size", "synthetic-qa-language-matrix", "training-loss",
            "heldout-xy-vs-size", "heldout-xy-vs-step", "synthetic-qa-hybrid-vs-baselines"} <= stems
    for stem in stems:
        assert f"figures/{stem}.png" in text
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_report_refuses_fits_on_two_sizes(tmp_path):
    spec = SyntheticStudy(name="two", sizes=(("3 layers", 5_000_000), ("6 layers", 10_000_000)), seeds=(0,))
    results_dir = write_synthetic_study(str(tmp_path), spec).location
    assert report_main([results_dir, "--out", str(tmp_path / "r")]) == 0
    text = (tmp_path / "r" / "report.md").read_text()
    assert "not fitted: a saturating power law has 3 parameters and needs at least 4 distinct model sizes; got 2" in text
    assert "one seed: no interval" in text
    assert report_main([str(tmp_path / "missing"), "--out", str(tmp_path / "r2")]) == 2
    assert report_main([results_dir, "--out", str(tmp_path / "r3"), "--benchmark", "xquad-r"]) == 2


def test_notebook_runs_on_a_synthetic_study(planted, tmp_path, monkeypatch):
    import nbclient
    import nbformat

    root = Path(__file__).resolve().parents[1]
    nb = nbformat.read(root / "notebooks" / "scaling_curves.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # committed without outputs
    monkeypatch.setenv("SCALING_RESULTS", planted.location)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(root)}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "75 of 75 trials finished" in printed and "alpha 95% CI" in printed
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 5
