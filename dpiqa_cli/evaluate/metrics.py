"""Correlation metrics for IQA: PLCC (raw and after the VQEG 4-parameter logistic), SRCC, KRCC, RMSE.

Convention (stated in every report): PLCC_logistic is the Pearson correlation between MOS and
f(pred) = (b1 - b2) / (1 + exp(-(pred - b3) / |b4|)) + b2, fitted by least squares (VQEG FR-TV
Phase I). RMSE compares pred and mos as given: `bench` passes both on the normalised [0, 1] scale.
Degenerate input (constant, NaN, n < 3) gives NaN with a warning, never an exception.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import optimize, stats

from dpiqa_cli.errors import DpiqaError

KEYS = ("plcc", "plcc_logistic", "srcc", "krcc", "rmse")
LOGISTIC = "PLCC_logistic: Pearson r after the VQEG 4-parameter logistic f(x)=(b1-b2)/(1+exp(-(x-b3)/|b4|))+b2"


class MetricWarning(UserWarning):
    pass


def logistic4(x, b1, b2, b3, b4):
    z = np.clip(-(x - b3) / (np.abs(b4) + 1e-12), -50, 50)  # clip: exp overflow during the fit
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


def fit_logistic(pred: np.ndarray, mos: np.ndarray) -> np.ndarray | None:
    """Fitted f(pred), or None when the fit fails. Init: MOS range and the predictions' centre/spread,
    the usual VQEG start; the sign of the slope goes into b1 > b2 or b1 < b2, so |b4| stays positive."""
    sign = 1.0 if stats.pearsonr(pred, mos)[0] >= 0 else -1.0
    hi, lo = (mos.max(), mos.min()) if sign > 0 else (mos.min(), mos.max())
    p0 = [hi, lo, float(np.mean(pred)), float(np.std(pred)) or 1.0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # OptimizeWarning on covariance: we only need the fit
            beta, _ = optimize.curve_fit(logistic4, pred, mos, p0=p0, maxfev=20000)
        fitted = logistic4(pred, *beta)
    except (RuntimeError, ValueError, optimize.OptimizeWarning):
        return None
    return fitted if np.all(np.isfinite(fitted)) else None


def _nan_result(n: int, why: str) -> dict:
    warnings.warn(f"metrics undefined: {why}; returning NaN", MetricWarning, stacklevel=3)
    return {**{k: float("nan") for k in KEYS}, "n": int(n)}


def compute_metrics(pred, mos) -> dict:
    """-> {plcc, plcc_logistic, srcc, krcc, rmse, n} (floats; NaN where undefined)."""
    pred = np.asarray(pred, dtype=float).ravel()
    mos = np.asarray(mos, dtype=float).ravel()
    if pred.shape != mos.shape:
        raise DpiqaError(f"metrics: {pred.size} predictions but {mos.size} MOS values")
    n = int(pred.size)
    if n < 3:
        return _nan_result(n, f"only {n} sample(s), need at least 3")
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(mos))):
        bad = int(np.sum(~np.isfinite(pred) | ~np.isfinite(mos)))
        return _nan_result(n, f"{bad} NaN/inf value(s) among {n}")
    if np.ptp(pred) == 0 or np.ptp(mos) == 0:
        return _nan_result(n, "constant " + ("predictions" if np.ptp(pred) == 0 else "MOS"))
    plcc = float(stats.pearsonr(pred, mos)[0])
    fitted = fit_logistic(pred, mos)
    if fitted is None or np.ptp(fitted) == 0:
        warnings.warn("4-parameter logistic fit failed; plcc_logistic falls back to raw PLCC", MetricWarning,
                      stacklevel=2)
        plcc_log = plcc
    else:
        plcc_log = float(stats.pearsonr(fitted, mos)[0])
    return {"plcc": plcc, "plcc_logistic": plcc_log, "srcc": float(stats.spearmanr(pred, mos)[0]),
            "krcc": float(stats.kendalltau(pred, mos)[0]), "rmse": float(np.sqrt(np.mean((pred - mos) ** 2))),
            "n": n}


def aggregate(rows: list[dict]) -> dict:
    """-> {metric: {median, mean, std}} over splits; median is the paper's headline number.
    NaN splits are ignored (nanmedian); std is the population std (ddof=0), as numpy's default."""
    if not rows:
        return {}
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float, np.number)) and not isinstance(rows[0][k], bool)]
    out = {}
    for k in keys:
        v = np.array([float(r.get(k, np.nan)) for r in rows], dtype=float)
        if np.all(np.isnan(v)):
            out[k] = {"median": float("nan"), "mean": float("nan"), "std": float("nan")}
        else:
            out[k] = {"median": float(np.nanmedian(v)), "mean": float(np.nanmean(v)), "std": float(np.nanstd(v))}
    return out
