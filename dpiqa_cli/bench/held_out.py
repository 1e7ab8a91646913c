"""Which of a dataset's images a checkpoint has seen (its split's training and validation images, and those
of the checkpoints it inherits from), so that `dpiqa bench` tests it only on unseen ones: a seen test
image inflates the correlations. A checkpoint trained on another dataset keeps every split.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from dpiqa_cli.data.catalog import canonical
from dpiqa_cli.data.splits import record_parts
from dpiqa_cli.errors import DpiqaError


def _dataset_of(name) -> str | None:
    try:
        return canonical(str(name))
    except DpiqaError:  # a free-text description (the bundled model's) or None
        return None


def _describe(record: dict) -> str:
    if record.get("by") == "official":
        return f"{record['dataset']} official {'+'.join(record['official'].get('train') or [])} split"
    return f"{record['dataset']} seed {record.get('seed')}, by {record.get('by')}"


@dataclass
class HeldOut:
    """What bench knows of the images the checkpoint `name` has seen, for one dataset table."""

    name: str
    seen: set[str] = field(default_factory=set)  # training and validation ids, over the record and its inherited
    own: dict | None = None  # the checkpoint's own split on this dataset ({train, val, test}), if made on it
    what: list[str] = field(default_factory=list)  # which recorded splits cover this dataset
    unknown: list[str] = field(default_factory=list)  # why some images seen may not be known
    notes: list[str] = field(default_factory=list)
    allow_overlap: bool = False

    @property
    def applies(self) -> bool:
        return bool(self.what)

    def warning(self) -> str | None:
        return "; ".join(self.unknown) if self.unknown else None

    def default_split(self) -> str:
        """'checkpoint' (its own test images) when it was made on this dataset, else 'seeds'."""
        if self.own is None:
            return "seeds"
        if self.own["test"]:
            return "checkpoint"
        if self.allow_overlap:
            return "seeds"
        raise DpiqaError(f"{self.name} was made on {self.what[0]} with no test part: every image it lists was "
                         "trained or validated on; bench it on another dataset, or pass --allow-overlap")

    def overlap(self, splits: list[dict]) -> dict[str, tuple[int, int]]:
        """{split name: (test images seen, test images)} for the splits whose test part overlaps."""
        out = {}
        for s in splits:
            test = s["split"]["test"]
            k = sum(1 for i in test if i in self.seen)
            if k:
                out[s["name"]] = (k, len(test))
        return out

    def check(self, splits: list[dict]) -> dict[str, tuple[int, int]]:
        """The overlap; a one-line error when there is some and it was not allowed."""
        found = self.overlap(splits)
        if found and not self.allow_overlap:
            parts = ", ".join(f"{n} ({k} of {t})" for n, (k, t) in found.items())
            if self.own and self.own["test"] and "checkpoint" not in found:
                own = "its own test split (the default, --split checkpoint)"
            else:
                own = "a dataset none of them was trained on"
            raise DpiqaError(f"the test images of {parts} were among the images {self.name} trained or validated on "
                             f"({'; '.join(self.what)}); bench {own}, or pass --allow-overlap to report them anyway")
        return found


def _walk(record: dict | None, source: str, trained_on, dataset: str, df: pd.DataFrame, ids: set[str],
          out: HeldOut, top: bool) -> None:
    """Add what `record` (and what it inherited) says about `dataset` to `out`; `trained_on` is the dataset
    its checkpoint names, which settles a missing record when it is another catalog dataset."""
    if record is None or record.get("unknown"):
        if _dataset_of((record or {}).get("dataset") or trained_on) not in (None, dataset):
            return  # made on another catalog dataset: cross-dataset, nothing to check
        why = (record or {}).get("unknown") or "made by an older dpiqa"
        out.unknown.append(f"{source} does not record which images it trained on ({why}); bench cannot check "
                           f"that {dataset}'s test images were unseen")
        return
    if record.get("dataset") == dataset:
        parts = record_parts(record, df)
        listed = set(parts["train"]) | set(parts["val"]) | set(parts["test"])
        present = listed & ids
        if present or dataset != "csv":  # another csv dataset shares the name, not the images
            if not present:
                msg = (f"{source} was made on {_describe(record)}, but none of its {len(listed)} images is in this "
                       f"{dataset} table (another copy or folder layout?)")
                if not out.allow_overlap:
                    raise DpiqaError(msg + "; pass --allow-overlap to bench without the check")
                out.unknown.append(msg)
                return
            out.seen |= (set(parts["train"]) | set(parts["val"])) & ids
            out.what.append(_describe(record))
            if top:
                out.own = {**{p: [i for i in parts[p] if i in ids] for p in ("train", "val", "test")},
                           "seed": record.get("seed"), "by": record.get("by")}
                if len(out.own["test"]) < len(parts["test"]):
                    out.notes.append(f"{len(parts['test']) - len(out.own['test'])} of the checkpoint's "
                                     f"{len(parts['test'])} test images are not in this table")
            if record.get("note"):
                out.notes.append(f"{source}: {record['note']}")
    for inh in record.get("inherited") or []:
        _walk(inh.get("record"), f"its {inh.get('from')} {inh.get('checkpoint')}", inh.get("dataset"), dataset, df,
              ids, out, top=False)


def held_out(name: str | None, config: dict | None, dataset: str, df: pd.DataFrame,
             allow_overlap: bool = False) -> HeldOut | None:
    """What `config` (a checkpoint's) says about `df`'s images; None without a checkpoint (random weights, a
    scores file). An older checkpoint without a record warns unless it names another catalog dataset."""
    if config is None:
        return None
    out = HeldOut(name or "the checkpoint", allow_overlap=allow_overlap)
    _walk(config.get("split_images"), out.name, config.get("dataset"), dataset, df, set(df["id"].astype(str)), out,
          top=True)
    return out
