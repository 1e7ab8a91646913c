"""Splits: deterministic per seed, by reference for synthetic data, KonIQ's official split exact."""
import pandas as pd
import pytest

from dpiqa_cli.data.splits import load_split, make_split, official_split, save_split


def table(n=100, refs=10):
    return pd.DataFrame({"id": [f"d/{i:03d}.png" for i in range(n)], "ref": [f"r{i % refs}" for i in range(n)],
                         "mos": 0.5, "split": None})


def test_deterministic_per_seed_and_order_free():
    df = table()
    a, b = make_split(df, 3, False), make_split(df.sample(frac=1, random_state=1), 3, False)
    assert a == b  # same seed, any row order: same split
    assert make_split(df, 4, False)["test"] != a["test"]
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (70, 10, 20)
    assert set(a["train"]) | set(a["val"]) | set(a["test"]) == set(df["id"])
    assert make_split(df, 3, False, val_frac=0.0)["test"] == a["test"]  # test part does not depend on val


def test_no_reference_on_both_sides():
    df = table()
    for seed in range(5):
        s = make_split(df, seed, True)
        ref_of = dict(zip(df["id"], df["ref"]))
        sides = [{ref_of[i] for i in s[p]} for p in ("train", "val", "test")]
        assert not (sides[0] & sides[2]) and not (sides[1] & sides[2]) and not (sides[0] & sides[1])
        assert len(sides[2]) == 2 and s["by"] == "ref"


def test_koniq_official_exact(tmp_path):
    sets = ["training", "validation", "test", "training", "test", "training"]
    df = pd.DataFrame({"id": [f"1024x768/{i}.jpg" for i in range(6)], "ref": None, "mos": 0.5,
                       "split": [{"training": "train", "validation": "val"}.get(s, s) for s in sets]})
    s = official_split(df)
    assert s["train"] == ["1024x768/0.jpg", "1024x768/3.jpg", "1024x768/5.jpg"]
    assert s["val"] == ["1024x768/1.jpg"] and s["test"] == ["1024x768/2.jpg", "1024x768/4.jpg"]
    save_split(s, tmp_path / "s.json")
    assert load_split(tmp_path / "s.json") == s


def test_koniq_official_from_reader(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from dpiqa_cli.data.datasets import read_dataset

    script = Path(__file__).resolve().parents[1] / "tools/make_koniq_fixture.py"
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, capture_output=True)
    raw = pd.read_csv(tmp_path / "koniq10k_distributions_sets.csv")
    s = official_split(read_dataset("koniq", tmp_path))
    for part, name in (("train", "training"), ("val", "validation"), ("test", "test")):
        assert s[part] == ["1024x768/" + n for n in raw.loc[raw["set"] == name, "image_name"]]
    assert len(s["test"]) >= 12


def test_bad_split_inputs():
    from dpiqa_cli.errors import DpiqaError

    with pytest.raises(DpiqaError):
        make_split(table(2), 0, False)
    with pytest.raises(DpiqaError):
        official_split(table())


def test_official_split_without_test_rows_only_with_test_frac_0(tmp_path):
    """A table marked train/val only (the bundled model's fixed validation photos) trains with
    --split official --test-frac 0; without --test-frac 0 the missing test part is an error."""
    from dpiqa_cli.errors import DpiqaError
    from dpiqa_cli.train.data import resolve_split

    df = table(12, 4).assign(split=["val" if i % 4 == 0 else "train" for i in range(12)])
    with pytest.raises(DpiqaError, match="test split is empty"):
        resolve_split(df, None, True, None, tmp_path / "a")
    s = resolve_split(df, None, True, None, tmp_path / "b", test_frac=0)
    assert s["test"] == [] and s["test_frac"] == 0
    assert s["val"] == [f"d/{i:03d}.png" for i in (0, 4, 8)] and len(s["train"]) == 9
