"""The IQA datasets dpiqa reads, as facts: names and aliases, MOS scale and direction, whether they are
synthetic (split by reference, scored as patches), and the paper's learning-rate milestones (Table 7).
Plain data, so the command line and the training config read it without pandas."""
from __future__ import annotations

from dpiqa_cli.errors import DpiqaError

ALIASES = {"koniq": "koniq", "koniq10k": "koniq", "koniq-10k": "koniq", "clive": "clive", "livec": "clive",
           "live-c": "clive", "spaq": "spaq", "livefb": "livefb", "flive": "livefb", "live": "live",
           "csiq": "csiq", "tid2013": "tid2013", "tid": "tid2013", "kadid": "kadid", "kadid10k": "kadid",
           "kadid-10k": "kadid", "csv": "csv"}
# nominal (min, max, lower_better); milestones from the paper's Table 7 (MultiStepLR, gamma 0.2)
INFO = {
    "koniq": dict(synthetic=False, scale=(0.0, 100.0, False), mt=[5], ms=[5]),
    "clive": dict(synthetic=False, scale=(0.0, 100.0, False), mt=[], ms=[10, 25]),
    "spaq": dict(synthetic=False, scale=(0.0, 100.0, False), mt=[], ms=[6]),
    "livefb": dict(synthetic=False, scale=(0.0, 100.0, False), mt=[2], ms=[4]),
    "live": dict(synthetic=True, scale=(0.0, 100.0, True), mt=[2], ms=[10, 25]),
    "csiq": dict(synthetic=True, scale=(0.0, 1.0, True), mt=[2, 4], ms=[10, 25]),
    "tid2013": dict(synthetic=True, scale=(0.0, 9.0, False), mt=[], ms=[3, 10]),
    "kadid": dict(synthetic=True, scale=(1.0, 5.0, False), mt=[5], ms=[5, 10]),
    "csv": dict(synthetic=False, scale=(None, None, False), mt=[], ms=[]),
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
    i = INFO[key]
    lo, hi, lb = i["scale"]
    return {"synthetic": i["synthetic"], "scale": {"name": key, "min": lo, "max": hi, "lower_better": lb},
            "milestones_teacher": list(i["mt"]), "milestones_student": list(i["ms"])}
