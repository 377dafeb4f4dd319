"""The language axis of the analysis: the breakpoint fit, quality against k, seen / zero-shot
splits and the low-resource view, against hand computations and synthetic studies of known shape."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.breakpoint import fit_breakpoint
from analysis.fits import FitError
from analysis.joshi2020 import CLASSES, JOSHI_2020, NOT_CLASSIFIED
from analysis.language_axis import breakpoint_fits, language_curves
from analysis.per_language import per_language_seen, seen_unseen_scores
from analysis.report import main as report_main
from analysis.resource import UNCLASSIFIED, ResourceTable, resource_group_scores, size_levels
from analysis.results import load
from analysis.synthetic import SyntheticStudy, write_synthetic_study
from scaling.languages import canonical

# a training order of 36 languages across the resource classes, two of them unclassified (bem, kac)
ORDER = ("en", "de", "es", "fr", "ru", "zh", "ar", "hi", "th", "tr", "vi", "el", "ja", "ko", "pt", "it", "nl", "pl",
         "sv", "fi", "cs", "id", "bn", "uk", "ta", "ur", "sw", "am", "yo", "zu", "ha", "ne", "si", "my", "bem", "kac")
KINK = SyntheticStudy(name="kink", sizes=(("s", 8_000_000),), recipes=("xy", "hybrid"), language_counts=(2, 4, 8, 16, 32),
                      language_gain=0.04, language_slope=-0.05, slope_from=8, language_scale="log", languages=ORDER,
                      seeds=(0, 1, 2, 3), zero_shot_languages=4, language_offsets={"bem": -0.1, "kac": -0.1})


@pytest.fixture(scope="module")
def kink(tmp_path_factory):
    """Multilingual mAP rises 0.04 per doubling of k up to 8 languages, then falls 0.05 per doubling."""
    return load(write_synthetic_study(str(tmp_path_factory.mktemp("kink")), KINK))


def broken(x, c, a, b1, b2):
    return a + b1 * np.minimum(x - c, 0) + b2 * np.maximum(x - c, 0)


def test_breakpoint_of_an_exact_broken_line():
    k = np.repeat([2, 4, 8, 16, 32, 64], 2)
    y = broken(np.log2(k), 3.0, 0.5, 0.04, -0.05)
    fit = fit_breakpoint(k, y, n_bootstrap=50)
    assert fit.breakpoint == 8 and fit.breakpoint_ci == (8, 8)
    assert fit.slope_before == pytest.approx(0.04) and fit.slope_after == pytest.approx(-0.05)
    assert fit.value_at_breakpoint == pytest.approx(0.5) and fit.sse == pytest.approx(0, abs=1e-20)
    assert fit.candidates == tuple(range(4, 33)) and fit.counts == (2, 4, 8, 16, 32, 64)
    assert fit.meaningful and fit.hurts_after and np.allclose(fit.predict(k), y)
    lin = fit_breakpoint(k, broken(k.astype(float), 20.0, 0.5, 0.01, -0.002), scale="linear", n_bootstrap=20)
    assert lin.breakpoint == 20 and lin.slope_before == pytest.approx(0.01) and lin.slope_after == pytest.approx(-0.002)


def _brute_force(k, y, candidates):
    """Per candidate c: least squares of y on [1, min(k - c, 0), max(k - c, 0)] from the normal
    equations, written out element by element; returns {c: (sse, a, b1, b2)}."""
    out = {}
    for c in candidates:
        cols = [[1.0] * len(k), [min(v - c, 0.0) for v in k], [max(v - c, 0.0) for v in k]]
        xtx = [[sum(p * q for p, q in zip(ci, cj)) for cj in cols] for ci in cols]
        xty = [sum(p * q for p, q in zip(ci, y)) for ci in cols]
        a, b1, b2 = np.linalg.solve(np.array(xtx), np.array(xty))
        sse = sum((yy - (a + b1 * u + b2 * w)) ** 2 for yy, u, w in zip(y, cols[1], cols[2]))
        out[c] = (sse, a, b1, b2)
    return out


def test_breakpoint_against_brute_force_on_a_tiny_hand_case():
    k = np.array([1, 2, 3, 4, 5, 1, 3, 5], dtype=float)
    y = np.array([0.0, 1.1, 1.9, 1.6, 0.9, 0.1, 2.1, 1.0])
    fit = fit_breakpoint(k, y, scale="linear", n_bootstrap=200, seed=3)
    table = _brute_force(k, y, [2, 3, 4])
    best = min(table, key=lambda c: table[c][0])
    sse, a, b1, b2 = table[best]
    assert fit.candidates == (2, 3, 4) and fit.breakpoint == best == 3
    assert (fit.sse, fit.value_at_breakpoint, fit.slope_before, fit.slope_after) == pytest.approx((sse, a, b1, b2))
    assert fit.line_sse == pytest.approx(np.sum((y - np.polyval(np.polyfit(k, y, 1), k)) ** 2))
    # on the log scale the candidates are the same ks, placed at log2 k
    table = _brute_force(np.log2(k), y, np.log2([2, 3, 4]))
    best = min(table, key=lambda c: table[c][0])
    log_fit = fit_breakpoint(k, y, n_bootstrap=20)
    assert log_fit.breakpoint == pytest.approx(2 ** best) and log_fit.sse == pytest.approx(table[best][0])


def test_known_breakpoint_recovered_within_its_interval():
    k = np.repeat([2, 4, 8, 16, 32, 64], 3)
    x = np.log2(k)
    covered = {"breakpoint": 0, "before": 0, "after": 0}
    for r in range(60):
        y = broken(x, np.log2(11), 0.5, 0.04, -0.05) + np.random.default_rng(r).normal(0, 0.01, len(k))
        fit = fit_breakpoint(k, y, n_bootstrap=200, seed=r)
        assert fit.meaningful and fit.hurts_after
        covered["breakpoint"] += fit.breakpoint_ci[0] <= 11 <= fit.breakpoint_ci[1]
        covered["before"] += fit.slope_before_ci[0] <= 0.04 <= fit.slope_before_ci[1]
        covered["after"] += fit.slope_after_ci[0] <= -0.05 <= fit.slope_after_ci[1]
    assert all(v / 60 >= 0.85 for v in covered.values()), covered


def test_a_straight_line_has_no_meaningful_breakpoint():
    k = np.repeat([2, 4, 8, 16, 32, 64, 128], 3)
    x = np.log2(k)
    fits = [fit_breakpoint(k, 0.5 - 0.02 * x + np.random.default_rng(100 + r).normal(0, 0.01, len(k)),
                           n_bootstrap=200, seed=r) for r in range(120)]
    p_values = np.array([f.p_value for f in fits])
    assert 0.01 <= np.mean(p_values < 0.05) <= 0.12  # the test's false-positive rate is about its level
    widths = [np.log2(f.breakpoint_ci[1] / f.breakpoint_ci[0]) for f in fits]
    assert np.median(widths) >= 2.5  # the breakpoint interval spans most of the 4 doublings it can take
    assert all(("no meaningful breakpoint" in f.describe()) == (f.p_value >= 0.05) for f in fits)
    assert all(f.meaningful == (f.p_value < 0.05) for f in fits)


def test_breakpoint_is_seeded_direction_aware_and_refuses_too_few_counts():
    k = np.repeat([2, 4, 8, 16, 32], 3)
    y = broken(np.log2(k), 3, 200.0, -10.0, 15.0) + np.random.default_rng(0).normal(0, 1, len(k))
    a, b = fit_breakpoint(k, y, n_bootstrap=100, seed=5), fit_breakpoint(k, y, n_bootstrap=100, seed=5)
    assert a == b and fit_breakpoint(k, y, n_bootstrap=100, seed=6).slope_after_ci != a.slope_after_ci
    assert fit_breakpoint(k, y, n_bootstrap=100, lower_is_better=True).hurts_after  # rank distance rising
    assert not a.hurts_after  # as a score, rising is not hurting
    with pytest.raises(FitError, match="at least 4 distinct positive integer language counts"):
        fit_breakpoint([2, 4, 8, 2, 4, 8], [0.1, 0.2, 0.3, 0.1, 0.2, 0.3])
    with pytest.raises(FitError, match="scale must be one of"):
        fit_breakpoint(k, y, scale="sqrt")


def test_language_curves_per_recipe_and_metric(kink):
    curves = language_curves(kink)
    assert set(zip(curves["setting"], curves["metric"])) == {("multi", "map"), ("multi", "rank_distance"),
                                                            ("mono", "map"), ("cross", "map")}
    assert set(curves["line"]) == {"xy", "hybrid a=0.5"} and (curves["n"] == 4).all()
    rows = kink.select(setting="multi", metric="rank_distance", query_lang="*", recipe="xy", num_languages=16)
    point = curves[(curves["metric"] == "rank_distance") & (curves["line"] == "xy") & (curves["num_languages"] == 16)]
    assert point["mean"].iloc[0] == pytest.approx(rows["value"].mean())
    assert point["ci_low"].iloc[0] < rows["value"].mean() < point["ci_high"].iloc[0]


def test_breakpoint_fits_on_a_study_recover_the_planted_kink(kink):
    _, fits = breakpoint_fits(kink, n_bootstrap=300)
    assert set(fits) == {"xy", "hybrid a=0.5"}
    for fit in fits.values():
        assert fit.breakpoint_ci[0] <= 8 <= fit.breakpoint_ci[1] and fit.meaningful and fit.hurts_after
        assert fit.slope_after_ci[0] <= -0.05 <= fit.slope_after_ci[1]
    _, rank = breakpoint_fits(kink, metric="rank_distance", n_bootstrap=100)
    assert all(f.hurts_after and f.slope_after > 0 for f in rank.values())  # 400 * (1 - mAP) rises past 8


def test_seen_and_zero_shot_split_per_trial(kink):
    split = seen_unseen_scores(kink, kink.metrics)
    assert set(split["group"]) == {"seen", "zero-shot"}
    # independent: per trial, the mean over its rows whose language is in its manifest's list; then over seeds
    rows = kink.metrics[(kink.metrics["setting"] == "multi") & (kink.metrics["metric"] == "map")
                        & (kink.metrics["query_lang"] != "*")]
    for k in (2, 16):
        mine = rows[(rows["num_languages"] == k) & (rows["recipe"] == "xy")]
        per_trial = {flag: [] for flag in (True, False)}
        for trial_id, trial in mine.groupby("trial_id"):
            trained = set(kink.manifests[trial_id]["training_languages"])
            assert len(trained) == k
            for flag in (True, False):
                per_trial[flag].append(trial[trial["query_lang"].isin(trained) == flag]["value"].mean())
        got = split[(split["num_languages"] == k) & (split["recipe"] == "xy")].set_index("group")
        assert got.loc["seen", "mean"] == pytest.approx(np.mean(per_trial[True]))
        assert got.loc["zero-shot", "mean"] == pytest.approx(np.mean(per_trial[False]))
        assert got.loc["seen", "n_languages"] == k and got.loc["zero-shot", "n_languages"] == 36 - k
    # planted: zero-shot languages 0.08 below seen ones (bem and kac, zero-shot throughout, another 0.1)
    k8 = split[split["num_languages"] == 8].set_index(["recipe", "group"])["mean"]
    assert k8[("xy", "seen")] - k8[("xy", "zero-shot")] == pytest.approx(0.08 + 0.2 / 28, abs=0.01)
    detail = per_language_seen(kink, kink.metrics)
    de = detail[(detail["query_lang"] == "de") & (detail["recipe"] == "xy")].set_index("num_languages")["seen"]
    th = detail[(detail["query_lang"] == "th") & (detail["recipe"] == "xy")].set_index("num_languages")["seen"]
    assert (de == "seen").all() and th[8] == "zero-shot" and th[16] == "seen"  # th is the 9th language


def test_seen_split_compares_canonical_codes_and_says_unknown(kink):
    results = load(kink.location)
    trial = results.trials["trial_id"].iloc[0]
    trained = results.manifests[trial]["training_languages"]
    results.manifests[trial]["training_languages"] = [{"en": "eng", "de": "deu_Latn", "zh": "zho_Hans"}.get(c, c)
                                                      for c in trained]
    before = seen_unseen_scores(kink, kink.metrics)
    after = seen_unseen_scores(results, results.metrics)
    pd.testing.assert_frame_equal(before, after)
    for key in ("training_languages", "languages"):
        results.manifests[trial].pop(key, None)
    unknown = seen_unseen_scores(results, results.metrics[results.metrics["trial_id"] == trial])
    assert list(unknown["group"]) == ["unknown"] and unknown["n_languages"].iloc[0] == 36


def test_joshi_table_is_consistent():
    codes = [c for c, _, _, _ in CLASSES]
    assert len(codes) == len(set(codes)) and not set(codes) & set(NOT_CLASSIFIED)
    assert all(canonical(c) == c for c in codes + list(NOT_CLASSIFIED))
    assert {cls for _, _, cls, _ in CLASSES} == set(range(6))
    # the paper's seven class-5 languages (Mandarin as zh, in both scripts)
    assert {c for c, _, cls, _ in CLASSES if cls == 5} == {"ar", "de", "en", "es", "fr", "ja", "zh", "zh-Hant"}
    for code, level in (("hi", "class 4"), ("bn", "class 3"), ("sw", "class 2"), ("yo", "class 2"), ("ne", "class 1"),
                        ("deu_Latn", "class 5"), ("kor_Hang", "class 4"), ("arb_Latn", UNCLASSIFIED),
                        ("ary", UNCLASSIFIED), ("xx-not-a-code", UNCLASSIFIED)):
        assert JOSHI_2020.level(code) == level, code


def test_every_language_of_our_data_is_classified_or_listed_as_not():
    data = Path(os.environ.get("SCALING_DATA_DIR", ""))
    if not (data / "sib-200").is_dir() or not (data / "tatoeba").is_dir():
        pytest.skip("SCALING_DATA_DIR does not hold sib-200/ and tatoeba/ (the shared data)")
    ours = {canonical(p.name) for p in (data / "sib-200").iterdir() if p.is_dir()}
    ours |= {canonical(p.name.split(".")[1].split("-")[0]) for p in (data / "tatoeba").glob("tatoeba.*-eng.*")}
    ours |= {canonical(p.stem) for folder in ("xquad-r", "mlqa-r") for p in (data / folder).glob("*.json")}
    known = {c for c, _, _, _ in CLASSES} | set(NOT_CLASSIFIED)
    assert len(ours) >= 230 and ours <= known, sorted(ours - known)


def test_resource_groups_against_a_hand_computation(kink):
    frame = kink.select(recipe="hybrid a=0.5", num_languages=32)
    scores = resource_group_scores(frame, JOSHI_2020).set_index("group")
    assert list(scores.index) == ["class 1", "class 2", "class 3", "class 4", "class 5", UNCLASSIFIED]
    assert scores["n_languages"].sum() == 36  # every evaluated language is in a group, none dropped
    assert scores.loc[UNCLASSIFIED, "group_languages"] == "bem, kac"
    rows = frame[(frame["setting"] == "multi") & (frame["metric"] == "map") & (frame["query_lang"] != "*")]
    for group, langs in (("class 2", {"am", "ha", "sw", "yo", "zu"}), (UNCLASSIFIED, {"bem", "kac"})):
        per_seed = rows[rows["query_lang"].isin(langs)].groupby("seed")["value"].mean()
        assert scores.loc[group, "mean"] == pytest.approx(per_seed.mean())
        assert scores.loc[group, "std"] == pytest.approx(per_seed.std(ddof=1))
        assert scores.loc[group, "n"] == 4
    # planted: bem and kac 0.1 lower, and zero-shot (0.08 lower) at k = 32, like my and si (class 1)
    assert scores.loc["class 5", "mean"] - scores.loc[UNCLASSIFIED, "mean"] == pytest.approx(0.18, abs=0.02)
    with pytest.raises(ValueError, match="no per-language 'ndcg' rows"):
        resource_group_scores(frame, JOSHI_2020, metric="ndcg")


def test_resource_levels_from_data_sizes():
    table = ResourceTable.from_sizes({"deu": 50_000, "fr": 10_000, "sw": 9_999, "yo": 0}, edges=(1_000, 10_000))
    assert [table.level(c) for c in ("de", "fr", "sw", "yo", "zu")] == [
        ">= 10,000 training pairs", ">= 10,000 training pairs", "1,000-10,000 training pairs",
        "< 1,000 training pairs", UNCLASSIFIED]
    assert table.group_order()[-1] == UNCLASSIFIED
    with pytest.raises(ValueError, match="strictly ascending"):
        ResourceTable.from_sizes({"de": 1}, edges=(10, 10))
    with pytest.raises(ValueError, match="negative size"):
        ResourceTable.from_sizes({"de": -1})


def test_resource_levels_from_the_studys_training_rows_against_a_hand_computation(tmp_path):
    # rows per language as study.json records them: the first 4 languages rich, the next 4 mid, the rest
    # (including the zero-shot ones, absent from the training data) low
    rows = {lang: (50_000 if i < 4 else 5_000 if i < 8 else 200) for i, lang in enumerate(ORDER[:12])}
    spec = SyntheticStudy(name="sized", sizes=(("s", 8_000_000),), recipes=("hybrid",), language_counts=(12,),
                          languages=ORDER[:16], seeds=(0, 1, 2), zero_shot_languages=4, training_rows=rows)
    results = load(write_synthetic_study(str(tmp_path), spec).location)
    frame = results.select(recipe="hybrid a=0.5")
    table = size_levels(results.study, sorted(set(frame["query_lang"]) - {"*"}), edges=(1_000, 10_000))
    scores = resource_group_scores(frame, table).set_index("group")
    assert list(scores.index) == ["< 1,000 training rows", "1,000-10,000 training rows", ">= 10,000 training rows"]
    per_row = frame[(frame["setting"] == "multi") & (frame["metric"] == "map") & (frame["query_lang"] != "*")]
    groups = {">= 10,000 training rows": set(ORDER[:4]), "1,000-10,000 training rows": set(ORDER[4:8]),
              "< 1,000 training rows": set(ORDER[8:16])}  # 4 with 200 rows, 4 zero-shot with none
    for group, langs in groups.items():
        assert set(scores.loc[group, "group_languages"].split(", ")) == {canonical(c) for c in langs}
        per_seed = per_row[per_row["query_lang"].isin(langs)].groupby("seed")["value"].mean()
        assert scores.loc[group, "mean"] == pytest.approx(per_seed.mean()) and scores.loc[group, "n"] == 3
    out = tmp_path / "report"
    assert report_main([results.location, "--out", str(out), "--resource-levels", "data-size",
                        "--size-edges", "1000,10000", "--n-bootstrap", "20"]) == 0
    text = (out / "report.md").read_text()
    assert "training rows per language in this study's data" in text and "| >= 10,000 training rows |" in text
    with pytest.raises(ValueError, match="records no training data sizes"):
        size_levels({"trials": []}, ["en"])
    with pytest.raises(SystemExit):
        report_main([results.location, "--out", str(out), "--resource-levels", "data-size", "--size-edges", "1e3,x"])


def test_report_on_a_language_study(kink, tmp_path):
    out = tmp_path / "report"
    assert report_main([kink.location, "--out", str(out), "--n-bootstrap", "100"]) == 0
    text = (out / "report.md").read_text()
    assert "every macro metric" in text and "| multi rank_distance |" in text
    assert text.count("hurts beyond k = 8") == 8  # 4 macro metrics x 2 recipes
    assert "### Low-resource view" in text and "| unclassified |" in text and "bem, kac" in text
    assert "| seen |" in text and "| zero-shot |" in text
    stems = {p.name.rsplit(".", 1)[0] for p in (out / "figures").iterdir()}
    assert {"synthetic-qa-multi-map-vs-languages", "synthetic-qa-seen-vs-zero-shot",
            "synthetic-qa-resource-groups"} <= stems


def test_report_without_a_language_axis_keeps_its_shape(tmp_path):
    """The quick start's shape: two sizes, three recipes, one seed, one language set."""
    spec = SyntheticStudy(name="quick", sizes=(("3 layers", 5_000_000), ("6 layers", 10_000_000)), seeds=(0,))
    location = write_synthetic_study(str(tmp_path), spec).location
    assert report_main([location, "--out", str(tmp_path / "r")]) == 0
    text = (tmp_path / "r" / "report.md").read_text()
    assert "One language set in this study: no language curve." in text and "breakpoint" not in text.lower()
    assert "### Low-resource view" in text and "| seen |" in text
    stems = {p.name.rsplit(".", 1)[0] for p in (tmp_path / "r" / "figures").iterdir()}
    assert "synthetic-qa-multi-map-vs-languages" not in stems and "synthetic-qa-resource-groups" in stems


def test_report_says_why_a_breakpoint_is_not_fitted(tmp_path):
    spec = SyntheticStudy(name="three", sizes=(("s", 8_000_000),), recipes=("xy",), language_counts=(4, 6, 8),
                          seeds=(0, 1))
    location = write_synthetic_study(str(tmp_path), spec).location
    assert report_main([location, "--out", str(tmp_path / "r"), "--n-bootstrap", "50"]) == 0
    text = (tmp_path / "r" / "report.md").read_text()
    assert "not fitted: a breakpoint fit needs at least 4 distinct positive integer language counts" in text
    assert (tmp_path / "r" / "figures" / "synthetic-qa-multi-map-vs-languages.png").exists()


def _pivot_study():
    """Tatoeba's shape, by hand: accuracy@1 per language pair against the pivot en, both directions,
    and the macro rows *->en and en->*; 2 recipes x 2 seeds; German (class 5) above Swahili (class 2)."""
    from analysis.results import StudyResults

    rows, trials = [], []
    for n, (recipe, seed, base) in enumerate((("hybrid a=0.5", 0, 0.60), ("multilingual", 0, 0.50),
                                              ("hybrid a=0.5", 1, 0.64), ("multilingual", 1, 0.48))):
        trial = f"t{n}"
        trials.append({"trial_id": trial, "recipe": recipe, "seed": seed, "size": "s", "non_embedding_params": 1e6})
        common = {"trial_id": trial, "recipe": recipe, "seed": seed, "size": "s", "non_embedding_params": 1e6,
                  "benchmark": "tatoeba", "setting": "cross", "metric": "accuracy@1"}
        to_en = {"de": base + 0.1, "sw": base - 0.2}
        from_en = {lang: v - 0.05 for lang, v in to_en.items()}
        rows += [{**common, "query_lang": lang, "candidate_lang": "en", "value": v} for lang, v in to_en.items()]
        rows += [{**common, "query_lang": "en", "candidate_lang": lang, "value": v} for lang, v in from_en.items()]
        rows += [{**common, "query_lang": "*", "candidate_lang": "en", "value": np.mean(list(to_en.values()))},
                 {**common, "query_lang": "en", "candidate_lang": "*", "value": np.mean(list(from_en.values()))}]
    return StudyResults("pivot", pd.DataFrame(rows), pd.DataFrame(trials), pd.DataFrame(), {}, {})


def test_a_pivot_suite_is_viewed_per_direction_without_changing_a_value():
    from analysis.views import benchmark_view, headline, macro_pairs

    frame = _pivot_study().metrics
    view = benchmark_view(frame)
    assert len(view) == len(frame) and sorted(view["value"]) == sorted(frame["value"])  # labels move, values do not
    assert macro_pairs(view) == [("cross", "accuracy@1 to en"), ("cross", "accuracy@1 from en")]
    assert headline(view) == ("cross", "accuracy@1 to en")
    de = view[(view["trial_id"] == "t0") & (view["query_lang"] == "de")].set_index("metric")["value"]
    assert de["accuracy@1 to en"] == pytest.approx(0.70) and de["accuracy@1 from en"] == pytest.approx(0.65)
    assert set(view["candidate_lang"]) == {"*"}
    macro = view[view["query_lang"] == "*"]  # (*, *) rows: a benchmark in the common shape is left as it is
    assert benchmark_view(macro).equals(macro)


def test_the_report_of_a_pivot_suite_leads_with_its_metric_and_groups_its_languages(tmp_path):
    from analysis.report import build_report

    build_report(_pivot_study(), tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "| cross accuracy@1 to en | cross accuracy@1 from en |" in text
    # hybrid - multilingual, to en, paired over the 2 seeds: (0.55 - 0.45 + 0.59 - 0.43) / 2 = 0.13
    assert "| cross | accuracy@1 to en | hybrid a=0.5 | multilingual | 2 | **+0.130" in text
    assert "Cross accuracy@1 to en per resource level" in text
    # class 5 (de) of hybrid: mean over seeds of 0.70 and 0.74; class 2 (sw): 0.40 and 0.44
    assert "| class 2 | 1 | 0.420" in text and "| class 5 | 1 | 0.720" in text
