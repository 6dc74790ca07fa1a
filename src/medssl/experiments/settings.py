"""What a study ran, read from its saved plan: the settings of its jobs as tables.

Every job's resolved config is in the plan; a report shows, per job kind, the settings
all its jobs share (one table) and those that differ between them (named, with how many
values). Pretraining jobs also get one row per job of the settings that tell them apart
(the method and its recipe).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pandas as pd

#: config keys that name places on the machine that ran the study, not settings
_PLACES = ("out", "data")


def flatten(config: Mapping, prefix: str = "") -> dict[str, object]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists stay values."""
    flat: dict[str, object] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "))


def _settings(job: Mapping) -> dict[str, object]:
    """A job's flattened config without the paths."""
    return {k: v for k, v in flatten(job.get("config", {})).items() if k not in _PLACES}


def shared_and_varying(
    configs: list[dict[str, object]],
) -> tuple[dict[str, object], dict[str, int]]:
    """The settings every config has with one value, and the others with their number of
    distinct values (a key some configs lack counts its absence as a value)."""
    keys = sorted({k for c in configs for k in c})
    shared, varying = {}, {}
    for key in keys:
        values = {_text(c.get(key, "—")) for c in configs}
        if len(values) == 1:
            shared[key] = configs[0][key]
        else:
            varying[key] = len(values)
    return shared, varying


def settings_tables(plan: Mapping) -> list[tuple[str, pd.DataFrame]]:
    """``(caption, table)`` pairs describing the plan's fine-tuning and pretraining jobs;
    empty for a plan without jobs."""
    out: list[tuple[str, pd.DataFrame]] = []
    for kind, label in (("finetune", "fine-tunes"), ("pretrain", "pretraining runs")):
        jobs = [job for job in plan.get("jobs", []) if job.get("kind") == kind]
        if not jobs:
            continue
        configs = [_settings(job) for job in jobs]
        shared, varying = shared_and_varying(configs)
        rows = [{"setting": k, "value": _text(v)} for k, v in shared.items()]
        rows += [
            {"setting": k, "value": f"varies ({n} values)"} for k, n in sorted(varying.items())
        ]
        caption = (
            f"Settings of the {len(configs)} {label} (from the study plan; paths left out): "
            "the value all share, or how many values a setting takes."
        )
        out.append((caption, pd.DataFrame(rows, columns=["setting", "value"])))
        if kind == "pretrain" and varying and len(configs) > 1:
            names = [job.get("meta", {}).get("pipeline", "") for job in jobs]
            # a pipeline pretrained more than once (e.g. two lengths) is told apart by id
            columns = [
                n if n and names.count(n) == 1 else f"{n or 'run'} ({job.get('id', '')[:6]})"
                for n, job in zip(names, jobs, strict=True)
            ]
            per_job = pd.DataFrame(
                [
                    {
                        "setting": k,
                        **{p: _text(c.get(k, "—")) for p, c in zip(columns, configs, strict=True)},
                    }
                    for k in sorted(varying)
                ]
            )
            out.append(
                (
                    "The pretraining settings that differ, per run (one column per pipeline):",
                    per_job,
                )
            )
    return out
