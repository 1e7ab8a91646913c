"""`dpiqa bench` keeps a checkpoint's test images held out: checkpoints record the images of their split, bench
defaults to the checkpoint's own test split on its dataset and refuses overlapping splits unless
--allow-overlap (said in the report's first line); cross-dataset benches keep every split; older checkpoints
warn; the authors' KonIQ release counts as trained on KonIQ's official training set."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dpiqa_cli.data.datasets import read_dataset
from dpiqa_cli.errors import DpiqaError

REPO = Path(__file__).resolve().parents[1]
BENCH = ("--device", "cpu", "-j", "0")


@pytest.fixture(scope="module")
def koniq(tmp_path_factory):
    root = tmp_path_factory.mktemp("fix") / "koniq"
    subprocess.run([sys.executable, str(REPO / "tools/make_koniq_fixture.py"), str(root)], check=True,
                   capture_output=True)
    return root


def _distill(*args) -> None:
    from dpiqa_cli.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["-q", "distill", "--no-teacher", "-m", "tiny-student", "--epochs", "1", "--max-steps", "1",
              "--batch-size", "8", *map(str, args)])
    assert exc.value.code == 0


@pytest.fixture(scope="module")
def trained(koniq, tmp_path_factory) -> Path:
    """A tiny student trained one step on seed 0 of the KonIQ-layout fixture (42 images: 30/4/8)."""
    run = tmp_path_factory.mktemp("run") / "seed0"
    _distill("--dataset", "koniq", "--root", koniq, "--split", "0", "--out", run)
    return run


def test_checkpoint_records_the_images_of_its_split(trained):
    split = json.loads((trained / "split.json").read_text())
    for name in ("best.json", "last.json"):
        rec = json.loads((trained / name).read_text())["split_images"]
        assert rec["dataset"] == "koniq" and rec["seed"] == 0 and rec["by"] == "image"
        assert rec["split_file"] == str((trained / "split.json").resolve())
        for part in ("train", "val", "test"):
            assert rec["ids"][part] == sorted(split[part]) and rec["n"][part] == len(split[part])
        assert len(set(rec["sha256"].values())) == 3


def test_default_bench_is_the_checkpoints_own_test_split(trained, koniq, run_cli, tmp_path):
    out = tmp_path / "b"
    code, _, err = run_cli("bench", "-w", trained / "best.safetensors", "--dataset", "koniq", "--root", koniq,
                           "--out", out, *BENCH)
    assert code == 0, err
    rep = json.loads((out / "report.json").read_text())
    own = json.loads((trained / "split.json").read_text())["test"]
    assert [s["name"] for s in rep["splits"]] == ["checkpoint"] and rep["splits"][0]["metrics"]["n"] == len(own)
    assert json.loads((out / "splits/split-checkpoint.json").read_text())["test"] == sorted(own)
    assert rep["meta"]["split"].startswith("checkpoint (its own test images: seed 0")
    assert "warning" not in err


@pytest.mark.parametrize("split", [["--seeds", "0-2"], ["--split", "all"], ["--split", "official"]])
def test_splits_overlapping_its_training_images_are_refused(trained, koniq, run_cli, tmp_path, split):
    out = tmp_path / "b"
    code, _, err = run_cli("bench", "-w", trained / "best.safetensors", "--dataset", "koniq", "--root", koniq,
                           *split, "--out", out, *BENCH)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: the test images of ") and "--allow-overlap" in err and "koniq seed 0" in err
    assert not (out / "report.md").exists()  # refused before anything was scored


def test_the_seed_it_was_trained_on_is_allowed(trained, koniq, run_cli, tmp_path):
    code, _, err = run_cli("bench", "-w", trained / "best.safetensors", "--dataset", "koniq", "--root", koniq,
                           "--seeds", "0", "--out", tmp_path / "b", *BENCH)
    assert code == 0, err  # seed 0's test part is the one training left out


def test_allow_overlap_is_said_in_the_reports_first_line(trained, koniq, run_cli, tmp_path):
    out = tmp_path / "b"
    code, _, err = run_cli("bench", "-w", trained / "best.safetensors", "--dataset", "koniq", "--root", koniq,
                           "--split", "all", "--allow-overlap", "--out", out, *BENCH)
    assert code == 0, err
    split = json.loads((trained / "split.json").read_text())
    seen = len(split["train"]) + len(split["val"])
    first = (out / "report.md").read_text().splitlines()[0]
    assert first.startswith(f"**--allow-overlap: {seen} of 42 test images were among the images") and \
        "not held-out" in first
    assert json.loads((out / "report.json").read_text())["meta"]["overlap"] == {"all": {"seen": seen, "test": 42}}
    assert "warning: --allow-overlap" in err


def test_cross_dataset_keeps_every_split(trained, run_cli, tmp_path):
    from scoring_fixtures import write_photos

    files = write_photos(tmp_path / "other")
    pd.DataFrame({"path": [p.name for p in files], "mos": range(len(files))}).to_csv(tmp_path / "other/l.csv",
                                                                                       index=False)
    for split, names in ((["--split", "all"], ["all"]), ([], [f"seed {s}" for s in range(5)])):
        out = tmp_path / ("b" + "".join(split))
        code, _, err = run_cli("bench", "-w", trained / "best.safetensors", "--dataset", "csv", "--root",
                               tmp_path / "other", *split, "--out", out, *BENCH)
        assert code == 0 and "warning" not in err, err
        assert [s["name"] for s in json.loads((out / "report.json").read_text())["splits"]] == names


def _checkpoint(path: Path, **info) -> Path:
    from dpiqa_cli.models.checkpoint import load_model, save_checkpoint

    return save_checkpoint(load_model("tiny-student").model, path, spec_name="tiny-student", info=info)


def test_an_older_checkpoint_gets_one_warning_line(koniq, run_cli, tmp_path):
    old = _checkpoint(tmp_path / "old.safetensors", dataset="koniq")  # no split_images: an older dpiqa
    code, _, err = run_cli("bench", "-w", old, "--dataset", "koniq", "--root", koniq, "--split", "official",
                           "--out", tmp_path / "b", *BENCH)
    assert code == 0, err
    warned = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "does not record which images it trained on" in warned[0], err
    assert "does not record" in (tmp_path / "b/report.md").read_text()
    other = _checkpoint(tmp_path / "clive.safetensors", dataset="clive")  # another dataset: nothing to check
    code, _, err = run_cli("bench", "-w", other, "--dataset", "koniq", "--root", koniq, "--split", "official",
                           "--out", tmp_path / "c", *BENCH)
    assert code == 0 and "warning" not in err, err


def test_the_authors_koniq_release_is_held_to_its_official_split(koniq, run_cli, tmp_path):
    from dpiqa_cli.models.import_weights import _dataset_facts

    ckpt = _checkpoint(tmp_path / "release.safetensors", dataset="koniq", **_dataset_facts("koniq"))
    out = tmp_path / "b"
    code, _, err = run_cli("bench", "-w", ckpt, "--dataset", "koniq", "--root", koniq, "--out", out, *BENCH)
    assert code == 0, err
    df = read_dataset("koniq", koniq)
    official_test = sorted(df.loc[df["split"] == "test", "id"])
    assert json.loads((out / "splits/split-checkpoint.json").read_text())["test"] == official_test
    assert "best epoch on the test split" in (out / "report.md").read_text()  # what the release's numbers mean
    code, _, err = run_cli("bench", "-w", ckpt, "--dataset", "koniq", "--root", koniq, "--seeds", "0-1",
                           "--out", tmp_path / "c", *BENCH)
    assert code == 2 and "koniq official train split" in err, err


def test_a_student_started_from_a_checkpoint_inherits_its_images(trained, koniq, run_cli, tmp_path):
    run = tmp_path / "seed1"
    _distill("--dataset", "koniq", "--root", koniq, "--split", "1", "--init", trained / "best.safetensors",
             "--out", run)
    inh = json.loads((run / "last.json").read_text())["split_images"]["inherited"]
    first = json.loads((trained / "split.json").read_text())
    assert inh[0]["from"] == "init" and inh[0]["record"]["ids"] == {p: sorted(first[p]) for p in ("train", "val")}
    code, _, err = run_cli("bench", "-w", run / "last.safetensors", "--dataset", "koniq", "--root", koniq,
                           "--out", tmp_path / "b", *BENCH)
    assert code == 2 and "the test images of checkpoint (" in err and "koniq seed 0" in err, err


def test_a_teachers_images_count_as_seen(koniq):
    from dpiqa_cli.bench.held_out import held_out
    from dpiqa_cli.data.splits import inherited_images, make_split, split_record

    df = read_dataset("koniq", koniq)
    teacher = {"dataset": "koniq", "split_images": split_record(make_split(df, 0, False), "koniq")}
    student = {"dataset": "koniq", "split_images": {**split_record(make_split(df, 0, False), "koniq"),
                                                    "inherited": [inherited_images("teacher", "t", teacher)]}}
    guard = held_out("s", student, "koniq", df)
    assert guard.check([{"name": "checkpoint", "split": guard.own}]) == {}  # same split: its test stays unseen
    student["split_images"]["inherited"][0]["record"] = inherited_images(
        "teacher", "t", {"split_images": split_record(make_split(df, 1, False), "koniq")})["record"]
    guard = held_out("s", student, "koniq", df)
    with pytest.raises(DpiqaError, match="the test images of checkpoint"):  # its teacher trained on some of them
        guard.check([{"name": "checkpoint", "split": guard.own}])
    student["split_images"]["inherited"][0]["record"] = None  # a teacher made by an older dpiqa
    assert "its teacher t does not record" in held_out("s", student, "koniq", df).warning()
