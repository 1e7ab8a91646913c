"""The Ray path's store for `ResultWriter`: Parquet partitions in `<stem>.parts/`, kept as an output.

Each partition (`part-<run>-<n>.parquet`, columns `path,score,width,height,error`) is written atomically
when `flush_every` result batches have arrived, so a reader or a resumed run never sees half a file, and a
killed driver loses at most those batches. `_dpiqa.json` beside them records the run's identity (model,
weights hash, view, pixel limit) and whether the run completed; pyarrow and Ray skip files whose names
start with `_` or `.` when they read the folder as a dataset. A path can have several rows in the folder (a
failed file retried by `--resume`); the ranked file and `<stem>.errors.csv` hold each path exactly once.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from dpiqa_cli.atomic import write_json, write_via
from dpiqa_cli.errors import DpiqaError
from dpiqa_cli.scoring.writer import SIDE_COLS, merge_row


def parts_dir(out: Path) -> Path:
    return out.with_name(out.stem + ".parts")


class PartsStore:
    def __init__(self, out: Path, flush_every: int = 4):
        self.path = parts_dir(out)
        self.meta_file = self.path / "_dpiqa.json"
        self.flush_every, self.pending, self.buffer = max(1, int(flush_every)), 0, []
        # names sort in the order written: runs by start time, then partitions by number
        self.run, self.seq = f"{time.time_ns():020d}{uuid.uuid4().hex[:6]}", 0
        self.start_over = f"the folder {self.path}"

    def files(self) -> list[Path]:
        return sorted(self.path.glob("part-*.parquet")) if self.path.is_dir() else []

    def _meta(self) -> dict:
        try:
            return json.loads(self.meta_file.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def leftover(self) -> Path | None:
        """The folder, if a run stopped before it completed (a completed one is simply replaced)."""
        if self.path.exists() and not self.path.is_dir():
            raise DpiqaError(f"{self.path} is in the way of the Ray run's partitions: it is not a folder")
        return self.path if self.files() and not self._meta().get("complete") else None

    def read(self) -> tuple[dict, dict]:
        """(scored {path: (score, w, h)}, failed {path: reason}) over every partition, in the order written."""
        import pyarrow.parquet as pq

        scored, failed = {}, {}
        for f in self.files():
            t = pq.read_table(f, columns=SIDE_COLS).to_pydict()
            for p, s, w, h, e in zip(*(t[c] for c in SIDE_COLS)):
                merge_row(scored, failed, p, s, w, h, e)
        return scored, failed

    def start(self, meta: dict, append: bool) -> None:
        self.path.mkdir(exist_ok=True)
        for f in (self.files() if not append else []) + list(self.path.glob(".part-*.tmp")):
            f.unlink()  # a completed run's partitions (replaced) or a killed write's temporary file
        write_json(self.meta_file, dict(meta, complete=False))
        self.meta = meta

    def add(self, rows: list[tuple]) -> None:
        self.buffer += rows
        self.pending += 1
        if self.pending >= self.flush_every:
            self.close()

    def close(self) -> None:
        """Write the buffered rows as one partition."""
        if not self.buffer:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = list(zip(*self.buffer))
        table = pa.table({"path": pa.array(cols[0], pa.string()), "score": pa.array(cols[1], pa.float64()),
                          "width": pa.array(cols[2], pa.int64()), "height": pa.array(cols[3], pa.int64()),
                          "error": pa.array(cols[4], pa.string())})
        self.seq += 1
        write_via(self.path / f"part-{self.run}-{self.seq:06d}.parquet", lambda tmp: pq.write_table(table, tmp))
        self.buffer, self.pending = [], 0

    def finish(self) -> None:
        write_json(self.meta_file, dict(self.meta, complete=True))
