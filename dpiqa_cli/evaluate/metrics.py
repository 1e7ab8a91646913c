"""Correlation metrics for IQA: PLCC (raw and after the VQEG 4-parameter logistic), SRCC, KRCC, RMSE.

`mos` is normalised to [0, 1], higher is better (`data.labels`). PLCC_logistic keeps the sign of the fitted
relation; RMSE is taken after the logistic mapping (VQEG), so it does not depend on the predictions' scale.
A failed logistic fit falls back to a straight line (with a warning); degenerate input gives NaN and a
warning, never an exception.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import optimize, stats

from dpiqa_cli.errors import DpiqaError

KEYS = ("plcc", "plcc_logistic", "srcc", "krcc", "rmse")
LOGISTIC = ("PLCC_logistic: Pearson r after the VQEG 4-parameter logistic f(x)=(b1-b2)/(1+exp(-(x-b3)/|b4|))+b2, "
            "signed as the fitted relation (negative when the score falls as MOS rises)")
RMSE = "RMSE: between f(pred) and the MOS normalised to [0, 1] (after the logistic mapping, VQEG)"


class MetricWarning(UserWarning):
    pass


def logistic4(x, b1, b2, b3, b4):
    z = np.clip(-(x - b3) / (np.abs(b4) + 1e-12), -50, 50)  # clip: exp overflow during the fit
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


def fit_logistic(pred: np.ndarray, mos: np.ndarray) -> tuple[np.ndarray, float] | None:
    """(fitted f(pred), +1 or -1: whether f rises or falls), or None when the fit fails. Init: MOS range and
    the predictions' centre/spread, the usual VQEG start; the sign of the slope goes into b1 > b2 or b1 < b2,
    so |b4| stays positive."""
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
    if not np.all(np.isfinite(fitted)) or np.ptp(fitted) == 0:
        return None
    return fitted, (1.0 if beta[0] > beta[1] else -1.0)


def _nan_result(n: int, why: str) -> dict:
    warnings.warn(f"metrics undefined: {why}", MetricWarning, stacklevel=3)
    return {**{k: float("nan") for k in KEYS}, "n": int(n)}


def compute_metrics(pred, mos) -> dict:
    """-> {plcc, plcc_logistic, srcc, krcc, rmse, n} (floats; NaN where undefined)."""
    pred = np.asarray(pred, dtype=float).ravel()
    mos = np.asarray(mos, dtype=float).ravel()
    if pred.shape != mos.shape:
        raise DpiqaError(f"metrics: {pred.size} predictions but {mos.size} MOS values")
    n = int(pred.size)
    if n < 3:
        return _nan_result(n, f"only {n} sample{'' if n == 1 else 's'}, need at least 3")
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(mos))):
        bad = int(np.sum(~np.isfinite(pred) | ~np.isfinite(mos)))
        return _nan_result(n, f"{bad} NaN/inf value(s) among {n}")
    if np.ptp(pred) == 0 or np.ptp(mos) == 0:
        return _nan_result(n, "constant " + ("predictions" if np.ptp(pred) == 0 else "MOS"))
    plcc = float(stats.pearsonr(pred, mos)[0])
    fit = fit_logistic(pred, mos)
    if fit is None:
        warnings.warn("4-parameter logistic fit failed; PLCC_logistic and RMSE use a straight-line fit",
                      MetricWarning, stacklevel=2)
        fitted, plcc_log = np.polyval(np.polyfit(pred, mos, 1), pred), plcc
    else:
        fitted, sign = fit
        plcc_log = sign * float(stats.pearsonr(fitted, mos)[0])
    return {"plcc": plcc, "plcc_logistic": plcc_log, "srcc": float(stats.spearmanr(pred, mos)[0]),
            "krcc": float(stats.kendalltau(pred, mos)[0]), "rmse": float(np.sqrt(np.mean((fitted - mos) ** 2))),
            "n": n}


def evaluate_split(name: str, pred, mos, ids=None) -> dict:
    """One split of a report: {name, metrics, pred, mos, ids, notes, undefined}. `notes` are compute_metrics'
    warnings; `undefined` is why the split has no metrics (None when it has them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = compute_metrics(pred, mos)
    notes = [str(w.message) for w in caught if issubclass(w.category, MetricWarning)]
    undefined = None
    if not np.isfinite(m["srcc"]):
        undefined = next((n.removeprefix("metrics undefined: ") for n in notes if n.startswith("metrics undefined")),
                         "SRCC is undefined")
    return {"name": name, "metrics": m, "pred": np.asarray(pred, float).tolist(),
            "mos": np.asarray(mos, float).tolist(), "ids": None if ids is None else list(ids), "notes": notes,
            "undefined": undefined}


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
