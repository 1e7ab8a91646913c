"""Metrics against scipy and hand-computed values; the logistic mapping; degenerate inputs."""
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from dpiqa_cli.evaluate.metrics import MetricWarning, aggregate, compute_metrics, fit_logistic


def test_matches_scipy():
    rng = np.random.default_rng(0)
    mos = rng.uniform(0, 1, 200)
    pred = mos + rng.normal(0, 0.2, 200)
    m = compute_metrics(pred, mos)
    assert m["plcc"] == pytest.approx(stats.pearsonr(pred, mos)[0], abs=1e-12)
    assert m["srcc"] == pytest.approx(stats.spearmanr(pred, mos)[0], abs=1e-12)
    assert m["krcc"] == pytest.approx(stats.kendalltau(pred, mos)[0], abs=1e-12)
    fitted, sign = fit_logistic(pred, mos)
    assert sign == 1.0
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((fitted - mos) ** 2)), abs=1e-12)  # after the mapping
    assert m["rmse"] < np.sqrt(np.mean((pred - mos) ** 2))  # a least-squares fit can only lower it
    assert m["n"] == 200
    assert m["plcc_logistic"] >= m["plcc"] - 1e-6  # the mapping can only help a least-squares fit


def test_hand_values():
    # pred = [1,2,3,4], mos = [1,3,2,4]: one swapped pair of 6
    m = compute_metrics([1, 2, 3, 4], [1, 3, 2, 4])
    assert m["plcc"] == pytest.approx(0.8)  # cov 1.0 / var 1.25
    assert m["srcc"] == pytest.approx(0.8)  # 1 - 6*2/(4*15)
    assert m["krcc"] == pytest.approx(4 / 6)  # (5 concordant - 1 discordant) / 6


def test_rmse_is_after_the_mapping_so_the_scale_of_the_scores_does_not_matter():
    rng = np.random.default_rng(3)
    mos = rng.uniform(0, 1, 100)
    pred = mos + rng.normal(0, 0.1, 100)
    a, b = compute_metrics(pred, mos), compute_metrics(40 * pred + 7, mos)  # same scores on another scale
    assert a["rmse"] == pytest.approx(b["rmse"], rel=1e-5) and a["rmse"] < 0.15


def test_logistic_linearises_monotone_transform():
    mos = np.linspace(0.01, 0.99, 101)
    pred = 2.0 * np.log(mos / (1 - mos)) + 1.0  # logit: monotone, nonlinear; the logistic inverts it
    m = compute_metrics(pred, mos)
    assert m["plcc_logistic"] > 0.99
    assert m["plcc"] < m["plcc_logistic"] - 0.01
    assert m["srcc"] == pytest.approx(1.0)


def test_negative_direction_keeps_its_sign():
    mos = np.linspace(0, 1, 50)
    m = compute_metrics(np.exp(-3 * mos), mos)  # a lower-better score
    assert m["srcc"] == pytest.approx(-1.0)
    assert m["plcc"] < 0
    assert m["plcc_logistic"] < -0.99  # the fitted logistic falls: the relation is negative, and so is its PLCC


def test_weak_negative_relation_is_not_reported_as_positive():
    rng = np.random.default_rng(7)
    mos = rng.uniform(1, 5, 40)
    pred = -0.1 * mos + rng.normal(0, 0.25, 40)  # the newcomer's case: PLCC and SRCC about -0.3
    m = compute_metrics(pred, (mos - 1) / 4)
    assert m["plcc"] < 0 and m["srcc"] < 0
    assert m["plcc_logistic"] < 0 and abs(m["plcc_logistic"]) >= abs(m["plcc"]) - 1e-6


def test_permutation_srcc_exact():
    rng = np.random.default_rng(1)
    mos = rng.permutation(30).astype(float)
    pred = mos.copy()
    k = rng.choice(30, 2, replace=False)
    pred[k] = pred[k[::-1]]  # swap two items: SRCC = 1 - 6 d^2 sum / (n(n^2-1))
    d = pred - mos
    expect = 1 - 6 * np.sum(d ** 2) / (30 * (30 ** 2 - 1))
    assert compute_metrics(pred, mos)["srcc"] == pytest.approx(expect, abs=1e-12)
    assert compute_metrics(mos * 7 + 3, mos)["srcc"] == 1.0  # same order: exactly 1
    assert compute_metrics(-mos, mos)["srcc"] == -1.0


@pytest.mark.parametrize("pred,mos,why", [
    ([0.5] * 10, np.arange(10.0), "constant"),
    ([1.0, np.nan, 3.0, 4.0], [1, 2, 3, 4], "NaN"),
    ([1.0, 2.0], [1.0, 2.0], "sample"),
    ([], [], "sample"),
])
def test_degenerate_gives_nan_with_warning(pred, mos, why):
    with pytest.warns(MetricWarning, match=why):
        m = compute_metrics(pred, mos)
    assert all(math.isnan(m[k]) for k in ("plcc", "plcc_logistic", "srcc", "krcc", "rmse"))
    assert m["n"] == len(pred)


def test_length_mismatch_is_dpiqa_error():
    from dpiqa_cli.errors import DpiqaError

    with pytest.raises(DpiqaError):
        compute_metrics([1, 2, 3], [1, 2])


def test_aggregate_median_mean_std():
    rows = [{"srcc": v, "n": 10} for v in (0.1, 0.5, 0.9, 0.8, 0.7)]
    a = aggregate(rows)
    assert a["srcc"]["median"] == pytest.approx(0.7)
    assert a["srcc"]["mean"] == pytest.approx(0.6)
    assert a["srcc"]["std"] == pytest.approx(np.std([0.1, 0.5, 0.9, 0.8, 0.7]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = aggregate([{"srcc": float("nan")}, {"srcc": 0.5}])
    assert a["srcc"]["median"] == 0.5
