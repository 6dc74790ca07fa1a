"""The "what was run" tables of a study report, from the plan's resolved configs."""

from __future__ import annotations

from pathlib import Path

from medssl.experiments import store
from medssl.experiments.plan import expand
from medssl.experiments.settings import flatten, settings_tables, shared_and_varying
from medssl.experiments.study import parse_study


def test_flatten_and_shared_versus_varying() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == {
        "a.b": 1,
        "a.c.d": [1, 2],
        "e": {},
    }
    configs = [{"lr": 0.1, "seed": 0, "x": [1]}, {"lr": 0.1, "seed": 1}, {"lr": 0.1, "seed": 1}]
    shared, varying = shared_and_varying(configs)
    # a key missing from some configs varies (its absence is a value)
    assert shared == {"lr": 0.1} and varying == {"seed": 2, "x": 2}


def test_settings_tables_of_a_planned_study(tmp_path: Path) -> None:
    raw = {
        "name": "t",
        "data": "/nonexistent/data",
        "domain": "acdc",
        "pipelines": ["random", "byol-acdc", "simclr-acdc"],
        "budgets": {"kind": "slices", "values": [3, 30]},
        "seeds": [0, 1, 2],
        "pretrain": {"preset": "cpu-small", "set": {"epochs": 7}},
        "finetune": {"preset": "cpu-small", "set": {"steps": 321}},
    }
    plan = expand(parse_study(raw), tmp_path)
    store.save_plan(plan, tmp_path)
    tables = settings_tables(store.load_plan_json(tmp_path))
    (ft_caption, ft), (pre_caption, pre), (_, per_run) = tables
    n_ft = sum(j.kind == "finetune" for j in plan.jobs)
    assert f"the {n_ft} fine-tunes" in ft_caption and "the 2 pretraining runs" in pre_caption
    values = dict(zip(ft["setting"], ft["value"], strict=True))
    assert values["steps"] == "321" and values["runtime.seed"] == "varies (3 values)"
    assert values["labelled_slices"] == "varies (2 values)"
    assert "out" not in values and "data" not in values  # places, not settings
    assert dict(zip(pre["setting"], pre["value"], strict=True))["epochs"] == "7"
    assert list(per_run.columns) == ["setting", "byol-acdc", "simclr-acdc"]
    method = per_run.set_index("setting").loc["method"]
    assert (method["byol-acdc"], method["simclr-acdc"]) == ("byol", "simclr")
    assert settings_tables({"jobs": []}) == []
