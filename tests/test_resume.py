"""Never lose work: SIGKILL mid-run, then --resume; Ctrl-C; torn sidecar lines."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scoring_fixtures import PY, cli_env
from scoring_fixtures import run_cli as run_sub
from usage_checks import usage_error

from dpiqa_cli.scoring import writer as O


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    rng = np.random.default_rng(0)
    for i in range(24):
        Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(d / f"img_{i:02d}.png")
    return d


def _data_rows(path) -> int:
    try:
        return max(0, len(path.read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def _ctrl_c_as_at_a_terminal():
    # A shell's background job (`cmd &`, as a CI runner may start) inherits SIGINT ignored, and Python then
    # keeps it ignored: the child must get the default back to see Ctrl-C as a user's terminal sends it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(folder, out, *extra):
    # a test-only delay after each batch makes "mid-run" deterministic; its own session so that
    # killpg takes down the process and any DataLoader workers together
    return subprocess.Popen([PY, "-m", "dpiqa_cli", "score", str(folder), "-m", "tiny-student", "--device", "cpu",
                             "-b", "2", "--flush-every", "1", "-o", str(out), *extra],
                            env=cli_env(DPIQA_TEST_BATCH_DELAY="0.25"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_ctrl_c_as_at_a_terminal if os.name == "posix" else None)


def _wait_rows(proc, side, n, timeout=120):
    t0 = time.time()
    while _data_rows(side) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout, "the run never got going"
        time.sleep(0.05)


def test_sigkill_then_resume_scores_every_file_once(folder, tmp_path, run_cli):
    # every scoring run is a subprocess with the same environment (threads included: a convolution's last
    # bits depend on the thread count), as a user's interrupted and resumed runs would be
    def score(*args):
        r = run_sub(*args)
        return r.returncode, r.stdout, r.stderr

    ref = tmp_path / "ref.csv"
    code, _, err = score("score", folder, "-m", "tiny-student", "--device", "cpu", "-b", "2", "-j", "0", "-o", ref)
    assert code == 0, err

    out = tmp_path / "out.csv"
    side = O.sidecar_path(out)
    proc = _start(folder, out, "-j", "2")
    _wait_rows(proc, side, 8)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    n_before = _data_rows(side)
    assert 8 <= n_before < 24

    code, _, err = run_cli("score", folder, "-m", "tiny-student", "--device", "cpu", "-o", out)  # refused before scoring
    usage_error(code, err, "--resume")  # an interrupted run is never silently overwritten

    code, _, err = score("score", folder, "-m", "tiny-student", "--device", "cpu", "-b", "2", "-j", "0", "-o", out,
                         "--resume")
    assert code == 0, err
    assert "from the earlier run" in err
    assert not side.exists() and not O.meta_path(out).exists()
    got = pd.read_csv(out)
    assert got["path"].is_unique and len(got) == 24
    assert out.read_text() == ref.read_text()  # same ranking, same scores, bit for bit


def test_ctrl_c_leaves_a_resumable_state(folder, tmp_path):
    out = tmp_path / "out.csv"
    proc = _start(folder, out, "-j", "0")
    _wait_rows(proc, O.sidecar_path(out), 4)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    assert _data_rows(O.sidecar_path(out)) >= 4 and not out.exists()


def test_resume_with_another_model_is_refused(folder, tmp_path, run_cli):
    out = tmp_path / "o.csv"
    O.write_meta(out, {"model": "tiny-student", "sha256": None, "input_size": 64, "view": "whole", "max_pixels": 1})
    O.sidecar_path(out).write_text(",".join(O.SIDE_COLS) + "\n")
    code, _, err = run_cli("score", folder, "-m", "tiny-student", "-o", out, "--resume")
    usage_error(code, err, "different max_pixels")


def test_torn_last_line_is_dropped_and_appends_stay_aligned(tmp_path):
    side = tmp_path / "s.partial.csv"
    side.write_text("path,score,width,height,error\n/a.png,0.5,10,20,\n/b.png,0.25,10,2")  # killed mid-write
    scored, failed = O.read_sidecars([side])
    assert scored == {"/a.png": (0.5, 10, 20)} and not failed
    s = O.Sidecar(side, append=True)
    s.add([("/b.png", 0.25, 10, 20, None), ("/c.png", None, 0, 0, "empty file (0 bytes)")])
    s.close()
    scored, failed = O.read_sidecars([side])
    assert scored["/b.png"] == (0.25, 10, 20) and failed == {"/c.png": "empty file (0 bytes)"}
