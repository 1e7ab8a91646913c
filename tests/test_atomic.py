"""Atomic writes: the target is either the old file or the whole new one, never a part; no temp files left."""
from __future__ import annotations

import os
import stat

import pytest

from dpiqa_cli.atomic import write_json, write_stream, write_text, write_via


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.csv"
    write_text(target, "old\n")

    def half_then_fail(tmp):
        with open(tmp, "w") as f:
            f.write("new, partial")
        raise KeyboardInterrupt  # Ctrl-C in the middle of a write

    with pytest.raises(KeyboardInterrupt):
        write_via(target, half_then_fail)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_writers_create_folders_and_use_normal_permissions(tmp_path):
    write_json(tmp_path / "a" / "b.json", {"x": 1})
    write_stream(tmp_path / "c.csv", lambda f: f.write("p,s\n"))
    assert (tmp_path / "a" / "b.json").read_text() == '{\n  "x": 1\n}'
    assert (tmp_path / "c.csv").read_text() == "p,s\n"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "c.csv").stat().st_mode) == 0o666 & ~mask


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    import dpiqa_cli.atomic as atomic

    events, fsync, replace = [], os.fsync, os.replace

    def spy_fsync(fd):
        events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        fsync(fd)

    def spy_replace(src, dst):
        events.append(("replace", os.path.basename(dst)))
        replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", spy_fsync)
    monkeypatch.setattr(atomic.os, "replace", spy_replace)
    write_text(tmp_path / "out.txt", "x")
    if os.name == "nt":  # a folder cannot be opened there: the file alone is fsynced
        assert events == [("fsync", False), ("replace", "out.txt")]
    else:  # the file's data, the rename, then the folder that holds the new name
        assert events == [("fsync", False), ("replace", "out.txt"), ("fsync", True)]


def test_a_folder_that_cannot_be_fsynced_is_no_error(tmp_path, monkeypatch):
    import dpiqa_cli.atomic as atomic

    fsync = os.fsync

    def no_dir_fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")  # as some network file systems answer
        fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", no_dir_fsync)
    write_text(tmp_path / "out.txt", "x")
    assert (tmp_path / "out.txt").read_text() == "x"
