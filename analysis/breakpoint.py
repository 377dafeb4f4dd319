"""Where does adding training languages start to hurt? A two-segment, continuous, piecewise-linear
fit of a metric against the number of training languages k, with seeded bootstrap intervals.

The model is ``y = a + b1 * min(x - c, 0) + b2 * max(x - c, 0)`` with ``x = log2 k`` by default:
study counts are geometric (5, 10, 20, 40, 80, 205), the curse of multilinguality is reported
against log k (Conneau et al. 2020, fig. 2), and on a linear axis the left segment would rest on
the few smallest counts. The slopes are then "change per doubling of the languages"; pass
``scale="linear"`` for "change per added language". For a fixed breakpoint ``c`` the fit is linear
least squares; ``c`` is chosen by least squares over every integer k from the second-smallest to
the second-largest count (so each segment spans at least two counts), and reported as a k.

Uncertainty, on the seed-level points (every seed, not the means):

* intervals of the breakpoint and both slopes: a residual bootstrap of the broken-line fit
  (residuals inflated for the 4 fitted parameters, as in ``analysis.fits``), each refit searching
  the breakpoint again;
* is there a breakpoint at all? A bootstrap test of the kink against a straight line: the
  statistic is the relative drop in the sum of squares from the line to the best broken line,
  and its null distribution comes from refitting (breakpoint search included) data simulated
  from the straight-line fit with its resampled residuals. Searching the breakpoint makes an F
  test anti-conservative (Davies 1987); simulating the search does not. A curve without a kink
  gets a large p-value and a breakpoint interval that spans most of the counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.fits import FitError, finite_points
from analysis.uncertainty import percentile_interval

SCALES = ("log", "linear")


def _x(k: np.ndarray, scale: str) -> np.ndarray:
    return np.log2(k) if scale == "log" else k.astype(float)


def _k(x: float, scale: str) -> float:
    return float(2.0 ** x) if scale == "log" else float(x)


def design(x: np.ndarray, c: float) -> np.ndarray:
    """Columns: intercept (the value at the breakpoint), the segment left of c, right of c."""
    d = x - c
    return np.column_stack([np.ones_like(x), np.minimum(d, 0.0), np.maximum(d, 0.0)])


def _best(x: np.ndarray, ys: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of ``ys`` (B x n): the index of the least-squares candidate, its coefficients
    (B x 3) and its residual sum of squares."""
    sse = np.empty((len(candidates), len(ys)))
    coefs = np.empty((len(candidates), len(ys), 3))
    for i, c in enumerate(candidates):
        X = design(x, c)
        beta = ys @ np.linalg.pinv(X).T
        coefs[i] = beta
        sse[i] = np.sum((ys - beta @ X.T) ** 2, axis=1)
    best = np.argmin(sse, axis=0)  # ties: the smallest k
    rows = np.arange(len(ys))
    return best, coefs[best, rows], sse[best, rows]


def _line_sse(x: np.ndarray, ys: np.ndarray) -> np.ndarray:
    X = np.column_stack([np.ones_like(x), x])
    beta = ys @ np.linalg.pinv(X).T
    return np.sum((ys - beta @ X.T) ** 2, axis=1)


@dataclass(frozen=True)
class BreakpointFit:
    scale: str  # "log": x = log2 k, slopes per doubling; "linear": x = k, slopes per added language
    breakpoint: float  # in languages (k)
    breakpoint_ci: tuple[float, float]
    slope_before: float
    slope_before_ci: tuple[float, float]
    slope_after: float
    slope_after_ci: tuple[float, float]
    change_ci: tuple[float, float]  # of slope_after - slope_before
    value_at_breakpoint: float
    p_value: float  # of the kink against a straight line
    sse: float
    line_sse: float
    counts: tuple[int, ...]
    candidates: tuple[int, ...]
    n_points: int
    confidence: float
    n_bootstrap: int
    lower_is_better: bool = False

    @property
    def meaningful(self) -> bool:
        """The kink is distinguishable from a straight line at the fit's level."""
        return self.p_value < 1 - self.confidence

    @property
    def hurts_after(self) -> bool:
        """Adding languages beyond the breakpoint makes the metric worse (interval excludes zero)."""
        low, high = self.slope_after_ci
        return low > 0 if self.lower_is_better else high < 0

    def predict(self, k) -> np.ndarray:
        x = _x(np.asarray(k, dtype=float), self.scale)
        c = _x(np.asarray([self.breakpoint]), self.scale)[0]
        return design(x, c) @ np.array([self.value_at_breakpoint, self.slope_before, self.slope_after])

    def describe(self) -> str:
        pct, unit = f"{self.confidence:.0%}", "per doubling of k" if self.scale == "log" else "per added language"
        lo, hi = self.breakpoint_ci
        text = (f"breakpoint at k = {self.breakpoint:.3g} ({pct} CI [{lo:.3g}, {hi:.3g}]); slope {unit} before "
                f"{self.slope_before:+.4g} [{self.slope_before_ci[0]:+.4g}, {self.slope_before_ci[1]:+.4g}], after "
                f"{self.slope_after:+.4g} [{self.slope_after_ci[0]:+.4g}, {self.slope_after_ci[1]:+.4g}]; ")
        if self.meaningful:
            text += f"kink against a straight line: p = {self.p_value:.3g}"
            text += " (adding languages beyond it hurts)" if self.hurts_after else ""
        else:
            text += f"no meaningful breakpoint: a straight line fits as well (p = {self.p_value:.3g})"
        return text + (f" ({self.n_points} points, counts {', '.join(map(str, self.counts))}, "
                       f"{self.n_bootstrap} bootstrap refits, {'log2' if self.scale == 'log' else 'linear'} k)")


def fit_breakpoint(num_languages, values, *, scale: str = "log", n_bootstrap: int = 1000, confidence: float = 0.95,
                   seed: int = 0, lower_is_better: bool = False) -> BreakpointFit:
    """Fit the two-segment continuous line to points (k, value), one per trial (every seed)."""
    if scale not in SCALES:
        raise FitError(f"fit_breakpoint: scale must be one of {list(SCALES)}, not {scale!r}")
    k, y = finite_points(num_languages, values, "fit_breakpoint: num_languages and values")
    counts = np.unique(k)
    if len(counts) < 4 or (k <= 0).any() or (k != np.round(k)).any():
        raise FitError(f"a breakpoint fit needs at least 4 distinct positive integer language counts (2 per "
                       f"segment); got {[float(c) for c in counts]}. Add counts to axes.languages.counts")
    if len(k) < 5:
        raise FitError(f"a breakpoint fit has 4 parameters and needs at least 5 points; got {len(k)}")
    ks = np.arange(int(counts[1]), int(counts[-2]) + 1)
    x, cands = _x(k, scale), _x(ks.astype(float), scale)

    best, coef, sse = _best(x, y[None, :], cands)
    c_hat, beta = cands[best[0]], coef[0]
    fitted = design(x, c_hat) @ beta
    rng = np.random.default_rng(seed)
    n = len(y)
    residuals = (y - fitted) * np.sqrt(n / max(n - 4, 1))
    boot = fitted + rng.choice(residuals, size=(n_bootstrap, n), replace=True)
    b_best, b_coef, _ = _best(x, boot, cands)

    # the kink against a straight line, with the breakpoint search simulated under the line
    X1 = np.column_stack([np.ones_like(x), x])
    line = X1 @ np.linalg.lstsq(X1, y, rcond=None)[0]
    line_sse = float(np.sum((y - line) ** 2))
    stat = (line_sse - sse[0]) / max(sse[0], 1e-300)
    line_res = (y - line) * np.sqrt(n / max(n - 2, 1))
    null = line + rng.choice(line_res, size=(n_bootstrap, n), replace=True)
    _, _, null_sse = _best(x, null, cands)
    null_stat = (_line_sse(x, null) - null_sse) / np.maximum(null_sse, 1e-300)
    p = (1 + np.sum(null_stat >= stat * (1 - 1e-9))) / (n_bootstrap + 1)

    return BreakpointFit(scale=scale, breakpoint=_k(c_hat, scale),
                         breakpoint_ci=percentile_interval(ks[b_best], confidence),
                         slope_before=float(beta[1]), slope_before_ci=percentile_interval(b_coef[:, 1], confidence),
                         slope_after=float(beta[2]), slope_after_ci=percentile_interval(b_coef[:, 2], confidence),
                         change_ci=percentile_interval(b_coef[:, 2] - b_coef[:, 1], confidence),
                         value_at_breakpoint=float(beta[0]), p_value=float(p), sse=float(sse[0]), line_sse=line_sse,
                         counts=tuple(int(c) for c in counts), candidates=tuple(int(c) for c in ks), n_points=n,
                         confidence=confidence, n_bootstrap=n_bootstrap, lower_is_better=lower_is_better)
