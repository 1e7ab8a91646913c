"""The IQA datasets dpiqa reads, as facts: names and aliases, MOS scale and direction, whether they are
synthetic (split by reference, scored as patches), and the paper's learning-rate milestones (Table 7).
Plain data, so the command line and the training config read it without pandas."""
from __future__ import annotations

from typing import NamedTuple

from dpiqa_cli.errors import DpiqaError

ALIASES = {"koniq": "koniq", "koniq10k": "koniq", "koniq-10k": "koniq", "clive": "clive", "livec": "clive",
           "live-c": "clive", "spaq": "spaq", "livefb": "livefb", "flive": "livefb", "live": "live",
           "csiq": "csiq", "tid2013": "tid2013", "tid": "tid2013", "kadid": "kadid", "kadid10k": "kadid",
           "kadid-10k": "kadid", "csv": "csv"}


class Facts(NamedTuple):
    synthetic: bool  # made by distorting reference images: split by reference, scored as patches
    scale: tuple  # nominal (min, max, lower_better)
    teacher_milestones: list  # the paper's Table 7 (MultiStepLR, gamma 0.2), in epochs
    student_milestones: list


INFO = {
    "koniq": Facts(False, (0.0, 100.0, False), [5], [5]),
    "clive": Facts(False, (0.0, 100.0, False), [], [10, 25]),
    "spaq": Facts(False, (0.0, 100.0, False), [], [6]),
    "livefb": Facts(False, (0.0, 100.0, False), [2], [4]),
    "live": Facts(True, (0.0, 100.0, True), [2], [10, 25]),
    "csiq": Facts(True, (0.0, 1.0, True), [2, 4], [10, 25]),
    "tid2013": Facts(True, (0.0, 9.0, False), [], [3, 10]),
    "kadid": Facts(True, (1.0, 5.0, False), [5], [5, 10]),
    "csv": Facts(False, (None, None, False), [], []),
}
OFFICIAL = {"training": "train", "train": "train", "validation": "val", "val": "val", "valid": "val", "test": "test"}


def canonical(name: str) -> str:
    key = str(name).strip().lower()
    if key not in ALIASES:
        raise DpiqaError(f"unknown dataset {name!r}; choose from {', '.join(sorted(set(ALIASES.values())))}")
    return ALIASES[key]


def dataset_info(name: str) -> dict:
    """{synthetic, scale: {name, min, max, lower_better}, milestones_teacher, milestones_student}."""
    key = canonical(name)
    facts = INFO[key]
    lo, hi, lb = facts.scale
    return {"synthetic": facts.synthetic, "scale": {"name": key, "min": lo, "max": hi, "lower_better": lb},
            "milestones_teacher": list(facts.teacher_milestones), "milestones_student": list(facts.student_milestones)}
