"""Power-law data-efficiency fits: ε(n) = α·n^β + γ with bootstrap confidence intervals.

Test error ε falls with the number of labelled slices n as a power law that levels off at an
irreducible error γ (Hestness et al., "Deep Learning Scaling is Predictable, Empirically", 2017;
used for Fig. 6 of Kalapos & Gyires-Tóth, "Self-Supervised Pretraining for 2D Medical Image
Segmentation", ECCV-W 2022). α > 0, β < 0 and γ ≥ 0.

**Transition budget.** On log-log axes the curve has two asymptotes, the power law α·n^β and
the floor γ. The transition budget n* is where they cross, i.e. where the reducible error
α·n^β has fallen to ``fraction`` × γ (default ``fraction = 1``: the reducible part equals the
irreducible part, so ε(n*) = 2γ)::

    n* = (fraction · γ / α) ** (1 / β)

Below n* the error is dominated by the shrinking reducible part and each doubling of the
labels pays; above n* the error sits within a factor (1 + fraction) of its floor and a doubling
lowers it by at most fraction·(1 − 2^β)/(1 + fraction) of its current value. With γ = 0 the
curve never levels off and n* is +∞. The paper places this knee at 30–75 labelled slices.

**Numerics.** n is divided by its geometric mean before fitting and α is fitted on a log scale
at that reference, which keeps the Jacobian well conditioned across 1–1500 slices. The start
point comes from a grid over β with closed-form least squares for (α, γ), and the default fit
minimises residuals of log ε so that every budget counts alike on the log-log plot.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.optimize import curve_fit

log = logging.getLogger(__name__)

Space = Literal["log", "linear"]
Resample = Literal["points", "seeds"]

#: Test errors of Fig. 6: name → (results column, whether the error is 1 − column).
ERRORS: dict[str, tuple[str, bool]] = {
    "1 − mean IoU": ("test_slice_iou_mean", True),
    "Jaccard loss": ("test_jaccard_loss", False),
    "1 − 3D Dice": ("test_dice_3d_mean", True),
    "1 − IoU (study metric)": ("paper_iou", True),
    "Jaccard loss (study metric)": ("paper_jaccard_loss", False),
}
PARAMS = ("alpha", "beta", "gamma")
BETA_BOUNDS = (-4.0, -1e-3)
_FLOOR = 1e-6


def power_law(n: np.ndarray, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """ε(n) = α·n^β + γ, elementwise over ``n`` (any shape)."""
    return alpha * np.power(np.asarray(n, float), beta) + gamma


def transition_budget(alpha: float, beta: float, gamma: float, fraction: float = 1.0) -> float:
    """Budget n* at which the reducible error α·n^β equals ``fraction`` × γ (see module doc).

    Returns +∞ when γ ≤ 0 (no floor to reach) and NaN for α ≤ 0 or β ≥ 0 (no decay).
    """
    if not (alpha > 0 and beta < 0):
        return float("nan")
    if gamma <= 0:
        return float("inf")
    return float((fraction * gamma / alpha) ** (1.0 / beta))


@dataclass(frozen=True)
class PowerLawFit:
    """A fitted ε(n) = α·n^β + γ; ``rmse`` is measured in the fit space (log or linear)."""

    alpha: float
    beta: float
    gamma: float
    rmse: float
    n_points: int

    def predict(self, n: np.ndarray) -> np.ndarray:
        """Fitted error at budgets ``n``."""
        return power_law(n, self.alpha, self.beta, self.gamma)

    def transition(self, fraction: float = 1.0) -> float:
        """Transition budget n* of this fit (see :func:`transition_budget`)."""
        return transition_budget(self.alpha, self.beta, self.gamma, fraction)


def _initial_guess(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(α, β, γ) in scaled units x = n / n_ref: grid over β, closed-form (α, γ) per β."""
    betas = np.linspace(BETA_BOUNDS[0], -0.02, 80)[:, None]
    u = np.power(x[None, :], betas)  # (B, N)
    du, dy = u - u.mean(1, keepdims=True), y - y.mean()
    alpha = (du * dy).sum(1) / np.maximum((du * du).sum(1), 1e-300)
    gamma = y.mean() - alpha * u.mean(1)
    neg = gamma < 0  # refit through the origin
    alpha[neg] = (u[neg] @ y) / (u[neg] * u[neg]).sum(1)
    gamma[neg] = 0.0
    alpha = np.maximum(alpha, 1e-9 * y.max())
    sse = ((alpha[:, None] * u + gamma[:, None] - y) ** 2).sum(1)
    best = int(np.argmin(sse))
    return float(alpha[best]), float(betas[best, 0]), float(gamma[best])


def fit_power_law(n: np.ndarray, err: np.ndarray, *, space: Space = "log") -> PowerLawFit:
    """Least-squares fit of ε(n) = α·n^β + γ with α > 0, β ∈ [-4, -0.001], 0 ≤ γ ≤ max ε.

    Args:
        n: (N,) labelled slices per point (> 0); at least four distinct values.
        err: (N,) test error per point (> 0 for ``space="log"``; clipped at 1e-6).
        space: ``"log"`` fits log ε (relative residuals), ``"linear"`` fits ε itself.

    Returns:
        The fit in original units.

    Raises:
        ValueError: too few distinct budgets or non-finite input.
        RuntimeError: the optimiser did not converge.
    """
    n, err = np.asarray(n, float), np.asarray(err, float)
    if n.shape != err.shape or not (np.all(np.isfinite(n)) and np.all(np.isfinite(err))):
        raise ValueError("n and err must be finite arrays of the same shape")
    if np.unique(n).size < 4 or np.any(n <= 0):
        raise ValueError(f"need ≥ 4 distinct positive budgets, got {np.unique(n).tolist()}")
    y = np.maximum(err, _FLOOR)
    n_ref = float(np.exp(np.mean(np.log(n))))
    x = n / n_ref
    a0, b0, g0 = _initial_guess(x, y)
    top = float(y.max())
    lower = [np.log(1e-8 * top), BETA_BOUNDS[0], 0.0]
    upper = [np.log(1e3 * top), BETA_BOUNDS[1], top]
    p0 = np.clip([np.log(a0), b0, min(g0, 0.999 * top)], lower, upper)

    def model(xx: np.ndarray, log_a: float, b: float, g: float) -> np.ndarray:
        pred = np.exp(log_a) * np.power(xx, b) + g
        return np.log(pred) if space == "log" else pred

    target = np.log(y) if space == "log" else y
    params, _ = curve_fit(
        model, x, target, p0=p0, bounds=(lower, upper), method="trf", x_scale="jac", max_nfev=2000
    )
    log_a, beta, gamma = (float(v) for v in params)
    rmse = float(np.sqrt(np.mean((model(x, *params) - target) ** 2)))
    return PowerLawFit(
        alpha=float(np.exp(log_a) * n_ref ** (-beta)),
        beta=beta,
        gamma=gamma,
        rmse=rmse,
        n_points=int(n.size),
    )


@dataclass(frozen=True)
class PowerLawBootstrap:
    """A fit on all points plus bootstrap refits; ``samples`` is (B, 3) rows of (α, β, γ)."""

    fit: PowerLawFit
    samples: np.ndarray
    n_failed: int
    level: float
    fraction: float

    def ci(self, values: np.ndarray) -> tuple[float, float]:
        """Percentile interval of ``values`` (one per bootstrap sample) at ``level``."""
        values = np.asarray(values, float)
        values = values[~np.isnan(values)]
        if values.size == 0:
            return float("nan"), float("nan")
        tail = (1.0 - self.level) / 2.0
        lo, hi = np.quantile(values, [tail, 1.0 - tail], method="inverted_cdf")
        return float(lo), float(hi)

    def param_ci(self, name: str) -> tuple[float, float]:
        """Interval for ``"alpha"``, ``"beta"`` or ``"gamma"``."""
        return self.ci(self.samples[:, PARAMS.index(name)])

    def transitions(self) -> np.ndarray:
        """(B,) transition budget of every bootstrap sample (+∞ where γ = 0)."""
        return np.array([transition_budget(*row, fraction=self.fraction) for row in self.samples])

    def band(self, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise percentile band of the fitted curve at budgets ``n`` (M,) → two (M,)."""
        a, b, g = (self.samples[:, i : i + 1] for i in range(3))
        curves = a * np.power(np.asarray(n, float)[None, :], b) + g
        tail = (1.0 - self.level) / 2.0
        lo, hi = np.quantile(curves, [tail, 1.0 - tail], axis=0)
        return lo, hi


def _replicate(
    n: np.ndarray,
    err: np.ndarray,
    groups: np.ndarray,
    how: Resample,
    rng: np.random.Generator,
    space: Space,
) -> tuple[np.ndarray, np.ndarray]:
    """One bootstrap replicate (n*, ε*) with small-stratum variance correction.

    Runs are drawn with replacement, then each drawn value's deviation from its budget's mean
    (in fit space) is scaled by sqrt(k / (k − 1)), k = runs at that budget: a plain
    resample of k values has (k − 1) / k of their variance, which makes percentile intervals
    too narrow with 3–5 seeds (cf. Davison & Hinkley, "Bootstrap Methods and their
    Application", 1997, ch. 3).
    """
    if how == "seeds":  # cluster bootstrap over seeds
        ids = np.unique(groups)
        drawn = rng.choice(ids, size=ids.size, replace=True)
        idx = np.concatenate([np.flatnonzero(groups == g) for g in drawn])
    else:  # stratified by budget
        idx = np.concatenate(
            [rng.choice(np.flatnonzero(n == v), size=int(np.sum(n == v))) for v in np.unique(n)]
        )
    value = np.log(np.maximum(err, _FLOOR)) if space == "log" else err
    _, inverse, counts = np.unique(n, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=value) / counts
    scale = np.sqrt(counts / np.maximum(counts - 1, 1))
    b = inverse[idx]
    out = means[b] + scale[b] * (value[idx] - means[b])
    return n[idx], (np.exp(out) if space == "log" else out)


def bootstrap_power_law(
    n: np.ndarray,
    err: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    rng: np.random.Generator,
    n_boot: int = 500,
    level: float = 0.95,
    resample: Resample = "points",
    fraction: float = 1.0,
    space: Space = "log",
) -> PowerLawBootstrap:
    """Fit all points, then refit ``n_boot`` bootstrap replicates for percentile intervals.

    Args:
        n, err: (N,) budgets and errors, as for :func:`fit_power_law`.
        groups: (N,) seed of each point; needed for ``resample="seeds"``.
        rng: the generator every draw comes from.
        n_boot: number of replicates.
        level: two-sided confidence level of the intervals.
        resample: ``"points"`` redraws runs with replacement within each budget (every budget
            keeps its count); ``"seeds"`` redraws whole seeds, keeping all their runs.
        fraction: the transition definition (see :func:`transition_budget`).
        space: fit space, see :func:`fit_power_law`.

    Returns:
        The full-data fit with its bootstrap samples; replicates whose fit failed (too few
        distinct budgets drawn, no convergence) are counted in ``n_failed``.

    Note:
        Percentile intervals of a nonlinear fit from 3–5 seeds per budget undercover: in
        simulations (10 budgets, 5 % log-normal noise) nominal 95 % intervals covered the true
        α, β, γ and n* in about 85–93 % of datasets with ``"points"``, and only 65–85 % with
        ``"seeds"`` and 3 seeds (a cluster bootstrap over 3 clusters has 10 distinct draws).
    """
    n, err = np.asarray(n, float), np.asarray(err, float)
    if resample == "seeds" and groups is None:
        raise ValueError("resample='seeds' needs groups (the seed of every point)")
    groups = np.zeros(n.size) if groups is None else np.asarray(groups)
    fit = fit_power_law(n, err, space=space)
    rows, failed = [], 0
    for _ in range(n_boot):
        n_star, err_star = _replicate(n, err, groups, resample, rng, space)
        try:
            f = fit_power_law(n_star, err_star, space=space)
        except (ValueError, RuntimeError):
            failed += 1
            continue
        rows.append((f.alpha, f.beta, f.gamma))
    samples = np.array(rows, float).reshape(-1, 3)
    if failed:
        log.info("power-law bootstrap: %d of %d replicates failed", failed, n_boot)
    return PowerLawBootstrap(fit, samples, failed, level, fraction)


def error_values(results: pd.DataFrame, error: str) -> pd.Series:
    """The test error named ``error`` (a key of :data:`ERRORS`) for every row of ``results``."""
    column, one_minus = ERRORS[error]
    values = results[column].astype(float)
    return 1.0 - values if one_minus else values


def fit_pipelines(
    results: pd.DataFrame,
    error: str = "1 − mean IoU",
    *,
    rng: np.random.Generator,
    n_boot: int = 500,
    level: float = 0.95,
    resample: Resample = "points",
    fraction: float = 1.0,
    space: Space = "log",
) -> tuple[dict[str, PowerLawBootstrap], list[str]]:
    """Bootstrap power-law fit per pipeline on the main study's (labelled slices, error) points.

    Returns:
        ``{pipeline: PowerLawBootstrap}`` and notes on pipelines that were skipped and why.
    """
    df = results[results["study"] == "main"] if "study" in results else results
    if df.empty:
        return {}, []
    pipelines = sorted(df["pipeline"].unique())
    df = df.assign(_err=error_values(df, error))
    df = df[np.isfinite(df["_err"]) & (df["labelled_slices"] > 0)]
    fits: dict[str, PowerLawBootstrap] = {}
    notes: list[str] = []
    for pipeline, child in zip(pipelines, rng.spawn(len(pipelines)), strict=True):
        sub = df[df["pipeline"] == pipeline]
        budgets = sub["labelled_slices"].nunique()
        if budgets < 4:
            notes.append(
                f"{error}: power law not fitted for {pipeline} "
                f"({budgets} distinct budgets with results, need ≥ 4)"
            )
            continue
        single = sub.groupby("labelled_slices").size().max() == 1
        if single:
            notes.append(
                f"{error}: {pipeline} has one run per budget, so its fit has no bootstrap "
                "interval (resampling within budgets needs several seeds)"
            )
        try:
            fits[pipeline] = bootstrap_power_law(
                sub["labelled_slices"].to_numpy(),
                sub["_err"].to_numpy(),
                sub["seed"].to_numpy(),
                rng=child,
                n_boot=0 if single else n_boot,
                level=level,
                resample=resample,
                fraction=fraction,
                space=space,
            )
        except (ValueError, RuntimeError) as exc:
            notes.append(f"{error}: power-law fit failed for {pipeline}: {exc}")
    return fits, notes


def fits_table(fits: Mapping[str, PowerLawBootstrap]) -> pd.DataFrame:
    """One row per pipeline: α, β, γ and the transition with their ``_lo``/``_hi`` bounds."""
    rows = []
    for pipeline, boot in fits.items():
        row: dict[str, object] = {"pipeline": pipeline}
        for name in PARAMS:
            row[name] = getattr(boot.fit, name)
            row[f"{name}_lo"], row[f"{name}_hi"] = boot.param_ci(name)
        row["transition"] = boot.fit.transition(boot.fraction)
        row["transition_lo"], row["transition_hi"] = boot.ci(boot.transitions())
        row.update(
            n_points=boot.fit.n_points,
            rmse=boot.fit.rmse,
            n_boot_ok=int(boot.samples.shape[0]),
            n_boot_failed=boot.n_failed,
        )
        rows.append(row)
    return pd.DataFrame(rows)
