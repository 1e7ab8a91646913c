"""Acceptance test of the bundled default model (issue #6) on photos it never saw.

scripts/heldout_eval.py distorts the held-out photos (`scripts/default_model_photos.py: HELD_OUT`) with its
own code and strengths, different from `dpiqa synth`'s, and scores them with the bundled checkpoint.
Criteria (issue #6): the mean per-photo SRCC between score and level is >= 0.85 for blur, noise and JPEG,
and the pristine photo outscores its level-3 copy in >= 90 % of the (photo, type) cases.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from default_model_photos import HELD_OUT, TRAINING, VALIDATION  # noqa: E402
from heldout_eval import TYPES, score_heldout, summarise  # noqa: E402

MIN_SRCC, MIN_PRISTINE_WINS = 0.85, 0.90


@pytest.fixture(scope="module")
def summary():
    return summarise(score_heldout())


def test_held_out_photos_are_not_training_photos():
    seen = {**TRAINING, **VALIDATION}
    assert len(HELD_OUT) >= 3 and not set(HELD_OUT) & set(seen) and not set(TRAINING) & set(VALIDATION)
    assert not {fn for fn, *_ in HELD_OUT.values()} & {fn for fn, *_ in seen.values()}


@pytest.mark.parametrize("dtype", TYPES)
def test_srcc_against_level(summary, dtype):
    r = summary["per_type"][dtype]
    assert r["srcc"] >= MIN_SRCC, f"{dtype}: mean SRCC {r['srcc']:.3f} < {MIN_SRCC} (per photo: {r['per_photo']})"


def test_pristine_beats_level_3(summary):
    w = summary["pristine_vs_level3"]
    assert w["rate"] >= MIN_PRISTINE_WINS, f"pristine lost to its level-3 copy in {w['lost']}"
