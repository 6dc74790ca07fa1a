"""Study files: per-pipeline pretraining, the length study (Fig. 8), the paper protocol,
validation errors and collecting shared cells — planning only, nothing is trained."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from medssl.artifacts.study import StudyDir
from medssl.experiments import store
from medssl.experiments.collect import collect
from medssl.experiments.plan import expand
from medssl.experiments.study import (
    PAPER_LENGTH_EPOCHS,
    PAPER_LENGTH_SEED,
    STUDY_SEEDS,
    STUDY_SLICE_BUDGETS,
    load_study,
    parse_study,
)
from medssl.overrides import ConfigError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "studies"
PAPER_PIPELINES = (
    "random",
    "supervised-imagenet",
    "byol-imagenet",
    "byol-acdc",
    "supervised-imagenet+byol-acdc",
    "byol-imagenet+byol-acdc",
)


def _raw(**extra) -> dict:
    return {
        "name": "t",
        "data": "/nonexistent/data",
        "domain": "acdc",
        "pipelines": ["random", "byol-acdc"],
        "budgets": {"kind": "slices", "values": [3, 30]},
        "seeds": [0, 1],
        "pretrain": {"preset": "cpu-small", "set": {"epochs": 25}},
        "finetune": {"preset": "cpu-small"},
        **extra,
    }


def _pretrain_jobs(plan) -> dict[str, object]:
    return {j.id: j for j in plan.jobs if j.kind == "pretrain"}


def _cells(plan, part: str) -> list[tuple[object, dict]]:
    return [
        (j, c)
        for j in plan.jobs
        for c in [j.meta, *j.meta.get("also", [])]
        if j.kind == "finetune" and c["study"] == part
    ]


def test_existing_study_files_still_load_and_plan(tmp_path: Path) -> None:
    study = load_study(DOCS / "acdc-reduced.yaml")
    assert study.pipelines == ("random", "byol-acdc", "supervised-imagenet")
    assert study.pipeline_pretrain == {} and study.length is None
    assert study.pretrain_for("byol-acdc") == study.pretrain
    plan = expand(study, tmp_path)
    assert len(_pretrain_jobs(plan)) == 1


def test_per_pipeline_pretraining_gets_its_own_job(tmp_path: Path, weights: dict) -> None:
    pipelines = {
        "random": None,
        "byol-acdc": {"pretrain": {"set": {"epochs": 400}}},
        "byol-imagenet+byol-acdc": None,
        "supervised-imagenet+byol-acdc": {"pretrain": {"set": {"epochs": 25}}},  # = default
    }
    study = parse_study(_raw(pipelines=pipelines, weights=weights))
    assert study.pipelines == tuple(pipelines)  # mapping order kept
    assert study.pretrain_for("byol-acdc").set == {"epochs": 400}
    assert study.pretrain_for("byol-imagenet+byol-acdc").set == {"epochs": 25}
    plan = expand(study, tmp_path)
    pre = _pretrain_jobs(plan)
    by_pipe = {j.meta["pipeline"]: j for j in pre.values()}
    assert {p: j.config.epochs for p, j in by_pipe.items()} == {
        "byol-acdc": 400,
        "byol-imagenet+byol-acdc": 25,
        "supervised-imagenet+byol-acdc": 25,
    }
    assert len(pre) == 3
    for j, c in _cells(plan, "main"):
        if c["pipeline"] in by_pipe:
            assert j.depends == (by_pipe[c["pipeline"]].id,)
            assert j.config.init.startswith(by_pipe[c["pipeline"]].config.out)
    # the specialist's spec differs from the list form's only by its epochs
    flat = expand(parse_study(_raw(weights=weights)), tmp_path)
    (flat_pre,) = _pretrain_jobs(flat).values()
    assert flat_pre.config.epochs == 25 and flat_pre.id not in pre
    same = expand(
        parse_study(_raw(pipelines={"random": None, "byol-acdc": None}, weights=weights)), tmp_path
    )
    assert [j.id for j in same.jobs] == [j.id for j in flat.jobs]  # mapping == list form


def test_identical_pretraining_specs_share_one_job(tmp_path: Path) -> None:
    pipelines = {"byol-acdc": {"pretrain": {"preset": "cpu-small", "set": {"epochs": 25}}}}
    a = expand(parse_study(_raw(pipelines=pipelines)), tmp_path)
    b = expand(parse_study(_raw(pipelines=["byol-acdc"])), tmp_path)
    assert [j.id for j in a.jobs] == [j.id for j in b.jobs]
    preset_change = {"byol-acdc": {"pretrain": {"preset": "paper"}}}
    c = expand(parse_study(_raw(pipelines=preset_change)), tmp_path)
    (pc,) = _pretrain_jobs(c).values()
    assert pc.config.epochs == 25 and pc.config.arch == "resnet50"  # paper preset + set
    assert pc.id not in _pretrain_jobs(a)


@pytest.fixture
def weights(tmp_path: Path) -> dict:
    folder = tmp_path / "weights"
    folder.mkdir()
    files = {"imagenet": folder / "in.safetensors", "byol-imagenet": folder / "byol.pth.tar"}
    for f in files.values():
        f.write_bytes(b"placeholder: planning only checks that the file exists")
    return {k: str(v) for k, v in files.items()}


def test_length_study_defaults_are_the_published_figure(tmp_path: Path, weights: dict) -> None:
    # pretraining_epochs=(...) of supervised_segmentation/sweeps/pretraining_epochs_byolbyol.sh
    sweep = "0 1 2 3 4 5 6 7 8 9 10 12 14 16 18 20 22 24 25 50 100 200 300 400"
    # the original saves ep=K after K + 1 epochs (WeightsSaver at the end of epoch index K)
    assert tuple(int(e) + 1 for e in sweep.split()) == PAPER_LENGTH_EPOCHS
    study = parse_study(_raw(pretraining_length={}, weights=weights))
    length = study.length
    assert length.pipeline == "byol-imagenet+byol-acdc"
    assert length.budget is None and length.seeds == (PAPER_LENGTH_SEED,) == (13,)
    assert length.epochs == PAPER_LENGTH_EPOCHS
    assert length.pretrain.set["epochs"] == 401  # one run long enough for every epoch
    plan = expand(study, tmp_path)
    pre = [j for j in _pretrain_jobs(plan).values() if j.meta["for"] == "length"]
    assert len(pre) == 1 and pre[0].config.epochs == 401
    assert pre[0].config.init == weights["byol-imagenet"]
    cells = _cells(plan, "length")
    assert sorted(c["pretrain_epoch"] for _, c in cells) == list(PAPER_LENGTH_EPOCHS)
    for j, c in cells:
        assert c["seed"] == 13 and c["budget"] is None
        assert j.config.labelled_slices is None and j.config.labelled_patients is None
        if c["pretrain_epoch"] == 0:  # the initial weights: BYOL-ImageNet itself
            assert j.config.init == weights["byol-imagenet"] and j.depends == ()
        else:
            name = f"encoder_epoch_{c['pretrain_epoch']:03d}.safetensors"
            assert j.config.init == str(Path(pre[0].config.out) / name)
            assert j.depends == (pre[0].id,)


def test_length_study_options(tmp_path: Path) -> None:
    every = parse_study(_raw(pretraining_length={"pipeline": "byol-acdc", "epochs": "all"}))
    assert every.length.epochs is None and every.length.pretrain.set["epochs"] == 25
    plan = expand(every, tmp_path)
    epochs = sorted(c["pretrain_epoch"] for _, c in _cells(plan, "length"))
    assert epochs == list(range(26))
    # the length study's run is the pipeline's own 25-epoch run here: one job
    assert len(_pretrain_jobs(plan)) == 1
    longer = parse_study(
        _raw(
            pretraining_length={
                "pipeline": "byol-acdc",
                "epochs": [0, 5, 50],
                "budget": 30,
                "seeds": [0, 1],
                "pretrain": {"set": {"epochs": 60}},
            }
        )
    )
    plan = expand(longer, tmp_path)
    pre = {j.meta["for"]: j for j in _pretrain_jobs(plan).values()}
    assert pre["length"].config.epochs == 60 and pre["main"].config.epochs == 25
    cells = _cells(plan, "length")
    assert len(cells) == 3 * 2 and {c["budget"] for _, c in cells} == {30}
    # epoch 0 of a random-init pipeline is the random pipeline's fine-tune of that cell
    zero = [j for j, c in cells if c["pretrain_epoch"] == 0]
    assert {j.meta["pipeline"] for j in zero} == {"random"} and all(j.depends == () for j in zero)
    with pytest.raises(ConfigError, match="below the largest"):
        parse_study(_raw(pretraining_length={"epochs": [400], "pretrain": {"set": {"epochs": 25}}}))


def test_paper_study_file_plans_the_full_protocol(tmp_path: Path) -> None:
    folder = tmp_path / "repo" / "docs" / "studies"
    folder.mkdir(parents=True)
    shutil.copy(DOCS / "paper.yaml", folder / "paper.yaml")
    raw = yaml.safe_load((folder / "paper.yaml").read_text())
    for rel in raw["weights"].values():  # the weight files the study expects, as stand-ins
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(b"placeholder")
    study = load_study(folder / "paper.yaml")
    assert study.pipelines == PAPER_PIPELINES
    assert study.budgets == STUDY_SLICE_BUDGETS == (1, 3, 7, 15, 30, 75, 150, 300, 749, 1498)
    assert study.seeds == STUDY_SEEDS and len(study.seeds) == 10
    assert study.pretrain.preset == study.finetune.preset == "paper"
    plan = expand(study, tmp_path / "study")
    assert plan.skipped == {}
    main = _cells(plan, "main")
    assert len(main) == 6 * 10 * 10
    assert len({j.id for j, _ in main}) == 600
    pre = _pretrain_jobs(plan)
    summary = sorted(
        (j.meta["for"], j.meta["pipeline"], j.config.epochs, j.config.stop_epoch, j.config.init)
        for j in pre.values()
    )
    byol_in = str(folder / raw["weights"]["byol-imagenet"])
    sup_in = str(folder / raw["weights"]["imagenet"])
    assert summary == sorted(
        [
            ("main", "byol-acdc", 401, None, "random"),
            ("main", "supervised-imagenet+byol-acdc", 401, 26, sup_in),
            ("main", "byol-imagenet+byol-acdc", 401, 26, byol_in),
            ("length", "byol-imagenet+byol-acdc", 401, None, byol_in),
        ]
    )
    assert all(j.config.arch == "resnet50" for j in pre.values())
    length = _cells(plan, "length")
    assert sorted(c["pretrain_epoch"] for _, c in length) == list(PAPER_LENGTH_EPOCHS)
    assert {c["seed"] for _, c in length} == {13} and {c["budget"] for _, c in length} == {None}
    assert len(plan.jobs) == 4 + 600 + 24


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"pipeline": ["random"]}, "'pipeline'"),
        ({"pipelines": {"byol-acdc": {"pretrian": {}}}}, "'pipelines.byol-acdc.pretrian'"),
        ({"pipelines": {"byol-acdc": {"pretrain": {"epochs": 400}}}}, "pretrain.epochs"),
        ({"pipelines": {"random": {"pretrain": {"set": {"epochs": 4}}}}}, "pipelines.random"),
        ({"pipelines": {"byol-acdc": {"pretrain": {"set": {"epoch": 4}}}}}, "'epoch'"),
        ({"pipelines": ["random", "byol-imagenet+random"]}, "'byol-imagenet+random'"),
        ({"pipelines": ["byol-mnms"]}, "'byol-mnms'"),
        ({"pretraining_length": {"epoch": [1]}}, "'pretraining_length.epoch'"),
        ({"pretraining_length": {"pipeline": "random"}}, "pretraining_length.pipeline"),
        ({"budgets": {"values": [1], "kinds": "slices"}}, "'budgets.kinds'"),
        ({"finetune": {"preset": "tiny"}}, "finetune.preset"),
    ],
)
def test_bad_study_files_fail_in_one_line_naming_file_and_key(
    tmp_path: Path, change: dict, key: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_raw(**change)))
    with pytest.raises(ConfigError) as info:
        load_study(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and key in message


def _fake_run(root: Path, job_id: str, labelled: int, iou: float, paper: bool) -> None:
    run = store.run_dir(root, job_id)
    run.mkdir(parents=True)
    (run / "result.json").write_text(
        json.dumps(
            {
                "steps": 10,
                "labelled_slices": labelled,
                "best_val_iou": iou,
                "final_val_iou": iou,
                "steps_to_95": 5.0,
                "curve_auc": iou / 2,
            }
        )
    )
    per_class = {"mean": iou, "RV": iou, "MYO": iou, "LV": iou}
    metrics = {
        "slice_iou": per_class,
        "jaccard_loss": 1 - iou,
        "dice_3d": per_class,
        "distance_units": "mm",
        "by_phase": {"ED": {s: {"hd95": 3.0} for s in ("RV", "MYO", "LV")}},
    }
    if paper:
        metrics.update(paper_iou=iou - 0.01, paper_jaccard_loss=1 - iou + 0.01)
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "curve.csv").write_text(f"step,val_loss,slice_iou/mean\n5,0.5,{iou / 2}\n10,0.4,{iou}\n")
    StudyDir(root).done_marker(job_id).write_text("{}")


def test_collect_carries_study_metrics_and_shared_cells(tmp_path: Path) -> None:
    raw = _raw(
        budgets={"values": [3]},
        seeds=[0],
        pretraining_length={"pipeline": "byol-acdc", "epochs": [0, 2], "budget": 3, "seeds": [0]},
    )
    plan = expand(parse_study(raw), tmp_path)
    store.save_plan(plan, tmp_path)
    finetunes = [j for j in plan.jobs if j.kind == "finetune"]
    assert len(finetunes) == 3  # random/3/0 (= length epoch 0), byol-acdc/3/0, epoch 2
    for i, j in enumerate(finetunes):
        _fake_run(tmp_path, j.id, 3, 0.5 + 0.1 * i, paper=i > 0)
    results, curves = collect(tmp_path)
    assert len(results) == 4  # the shared run is reported in both of its cells
    length = results[results["study"] == "length"].sort_values("pretrain_epoch")
    assert list(length["pretrain_epoch"]) == [0.0, 2.0]
    assert list(length["pipeline"]) == ["byol-acdc", "byol-acdc"]
    shared = finetunes[0].id
    assert set(results.loc[results["run_id"] == shared, "study"]) == {"main", "length"}
    assert {"paper_iou", "paper_jaccard_loss"} <= set(results.columns)
    old = results[results["run_id"] == shared]
    assert old["paper_iou"].isna().all()  # evaluated before the study metrics existed
    new = results[results["run_id"] == finetunes[1].id].iloc[0]
    assert math.isclose(new["paper_iou"], 0.59) and math.isclose(new["paper_jaccard_loss"], 0.41)
    assert len(curves) == 2 * 4
    # every fake curve doubles over its last 20 %: none converged
    assert results["converged"].tolist() == [False] * 4


def test_collect_labels_each_budget_family(tmp_path: Path) -> None:
    families = [{"kind": "slices", "values": [3]}, {"kind": "patients", "values": [1]}]
    plan = expand(parse_study(_raw(pipelines=["random"], budgets=families, seeds=[0])), tmp_path)
    store.save_plan(plan, tmp_path)
    for j in plan.jobs:
        _fake_run(tmp_path, j.id, 3 if j.meta["study"] == "main" else 19, 0.7, paper=True)
    results, _ = collect(tmp_path)
    got = results.set_index("study")[["budget_kind", "budget", "labelled_slices"]]
    assert got.loc["main"].tolist() == ["slices", 3, 3]
    assert got.loc["patients"].tolist() == ["patients", 1, 19]


def test_collect_reports_a_full_budget_as_its_slice_count(tmp_path: Path) -> None:
    raw = _raw(pipelines=["random"], budgets={"values": [3]}, seeds=[0])
    raw["pretraining_length"] = {"pipeline": "byol-acdc", "epochs": [0], "seeds": [0]}
    plan = expand(parse_study(raw), tmp_path)
    store.save_plan(plan, tmp_path)
    zero = next(j for j in plan.jobs if j.meta.get("study") == "length")
    assert zero.meta["budget"] is None and not _pretrain_jobs(plan)  # epoch 0 needs no run
    for j in plan.jobs:
        _fake_run(tmp_path, j.id, 1498 if j is zero else 3, 0.8, paper=True)
    results, _ = collect(tmp_path)
    assert "paper_iou" in results
    assert int(results.loc[results["study"] == "length", "budget"].iloc[0]) == 1498


def test_study_report_shows_every_pipeline_in_figure_7(tmp_path: Path) -> None:
    import matplotlib.image as mpimg
    import numpy as np

    from medssl.experiments.report import study_report

    raw = _raw(pipelines=["byol-acdc", "random"], budgets={"values": [3, 30]}, seeds=[0])
    plan = expand(parse_study(raw), tmp_path)
    store.save_plan(plan, tmp_path)
    for i, j in enumerate(x for x in plan.jobs if x.kind == "finetune"):
        _fake_run(tmp_path, j.id, j.meta["budget"], 0.6 + 0.01 * i, paper=True)
        for name in ("patient001_ED", "patient011_ES"):
            path = store.run_dir(tmp_path, j.id) / "overlays" / f"{name}.png"
            path.parent.mkdir(exist_ok=True)
            mpimg.imsave(path, np.eye(8))
    paths = study_report(tmp_path)
    assert tmp_path / "figures" / "fig7_overlays.png" in paths
    folders = sorted(p.name for p in (tmp_path / "figures" / "overlay_examples").iterdir())
    assert folders == ["byol-acdc_30-slices", "random_30-slices"]
    md = (tmp_path / "report.md").read_text()
    assert "one column per pipeline" in md and "IoU (study metric)" in md
    # a fresh clone has no run overlays (not committed), only figure 7's committed copies:
    # the report regenerates byte for byte
    for run in (tmp_path / "runs").glob("*/overlays"):
        shutil.rmtree(run)
    (tmp_path / "figures" / "fig7_overlays.png").unlink()
    assert tmp_path / "figures" / "fig7_overlays.png" in study_report(tmp_path)
    assert (tmp_path / "report.md").read_text() == md


def test_method_pipelines_plan_their_method_and_recipe(tmp_path: Path) -> None:
    pipelines = [
        "random",
        "byol-acdc",
        "simclr-acdc",
        "mim-acdc",
        "supervised-imagenet+densecl-acdc",
    ]
    weights = {"imagenet": str(tmp_path / "in.safetensors")}
    (tmp_path / "in.safetensors").write_bytes(b"x")  # only its presence is checked here
    plan = expand(parse_study(_raw(pipelines=pipelines, weights=weights)), tmp_path)
    pre = {j.meta["pipeline"]: j.config for j in _pretrain_jobs(plan).values()}
    assert {p: c.method for p, c in pre.items()} == {
        "byol-acdc": "byol",
        "simclr-acdc": "simclr",
        "mim-acdc": "mim",
        "supervised-imagenet+densecl-acdc": "densecl",
    }
    # the method's cpu-small recipe under the study's own set (epochs: 25)
    assert pre["supervised-imagenet+densecl-acdc"].optimizer == "sgd"
    assert pre["simclr-acdc"].epochs == 25 and pre["simclr-acdc"].heads.proj_out == 128
    assert pre["supervised-imagenet+densecl-acdc"].init.endswith("in.safetensors")
    # only mim's fine-tunes start from its pretrained decoder
    for job, _cell in _cells(plan, "main"):
        decoder = job.config.init_decoder
        if job.meta["pipeline"] == "mim-acdc":
            assert decoder is not None and decoder.endswith("decoder_last.safetensors")
            assert Path(decoder).parent == Path(pre["mim-acdc"].out)
        else:
            assert decoder is None
    # each method is its own pretraining job
    assert len({c.out for c in pre.values()}) == 4


def test_unknown_method_pipeline_lists_the_methods() -> None:
    with pytest.raises(ConfigError, match=r"unknown pipeline 'swav-acdc'.*simclr.*mim"):
        parse_study(_raw(pipelines=["swav-acdc"]))


def test_split_file_and_labelled_sets_reach_every_job(tmp_path: Path) -> None:
    """``split`` goes to the pretraining and fine-tuning jobs; ``budgets: {kind: labelled}``
    makes one cell per labelled-set file; ids hold the files' contents, not their paths."""
    for where in ("a", "b"):
        (tmp_path / where).mkdir()
        (tmp_path / where / "split.json").write_text('{"train": ["p1", "p2"], "val": ["p3"]}')
        (tmp_path / where / "one.json").write_text('["p1"]')
        (tmp_path / where / "two.json").write_text('["p1", "p2"]')
        (tmp_path / where / "study.yaml").write_text(
            yaml.safe_dump(
                _raw(
                    split="split.json",
                    split_fold=0,
                    budgets={"kind": "labelled", "values": ["one.json", "two.json"]},
                )
            )
        )
    plans = [expand(load_study(tmp_path / w / "study.yaml"), tmp_path / "s") for w in "ab"]
    assert [j.id for j in plans[0].jobs] == [j.id for j in plans[1].jobs]
    jobs = plans[0].jobs
    assert all(j.config.split == str(tmp_path / "a" / "split.json") for j in jobs)
    assert all(j.config.split_fold == 0 for j in jobs)
    fine = [j for j in jobs if j.kind == "finetune"]
    assert len(fine) == 2 * 2 * 2  # pipelines × labelled sets × seeds
    assert {j.meta["labelled"] for j in fine} == {"one.json", "two.json"}
    assert all(j.meta["budget"] is None and j.config.labelled_slices is None for j in fine)
    # another split file's contents: other ids
    (tmp_path / "a" / "split.json").write_text('{"train": ["p1"], "val": ["p3"]}')
    other = expand(load_study(tmp_path / "a" / "study.yaml"), tmp_path / "s")
    assert not {j.id for j in other.jobs} & {j.id for j in jobs}


def test_study_split_and_labelled_files_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(_raw(split="nope.json")))
    with pytest.raises(ConfigError, match=r"'split': file .*nope\.json not found"):
        load_study(path)
    path.write_text(yaml.safe_dump(_raw(budgets={"kind": "labelled", "values": []})))
    with pytest.raises(ConfigError, match=r"budgets\.values"):
        load_study(path)


def test_several_budget_families_make_sub_studies(tmp_path: Path) -> None:
    """``budgets`` as a list: the first family is the main study, each further one a
    sub-study named by its kind; ``all`` is every labelled slice; ids of the main study's
    cells are those of the same study with one family."""
    families = [
        {"kind": "slices", "values": [3, "all"]},
        {"kind": "patients", "values": [1, 3]},
    ]
    study = parse_study(_raw(budgets=families))
    assert study.budget_kind == "slices" and study.budgets == (3, None)
    assert [(f.kind, f.values) for f in study.extra_budgets] == [("patients", (1, 3))]
    plan = expand(study, tmp_path / "s")
    fine = [j for j in plan.jobs if j.kind == "finetune"]
    assert len(fine) == 2 * (2 + 2) * 2  # pipelines × (slice + patient budgets) × seeds
    main = [j for j in fine if j.meta["study"] == "main"]
    patients = [j for j in fine if j.meta["study"] == "patients"]
    assert len(main) == len(patients) == 8
    assert all(j.meta["budget_kind"] == "slices" for j in main)
    assert {j.config.labelled_slices for j in main} == {3, None}
    assert all(j.config.labelled_patients is None for j in main)
    assert all(j.meta["budget_kind"] == "patients" for j in patients)
    assert {j.config.labelled_patients for j in patients} == {1, 3}
    assert all(j.config.labelled_slices is None for j in patients)
    # the pretraining is shared by both families
    assert len(_pretrain_jobs(plan)) == 1
    single = expand(parse_study(_raw(budgets=families[0])), tmp_path / "s")
    assert {j.id for j in single.jobs} == {
        j.id for j in plan.jobs if j.meta.get("study") != "patients"
    }


@pytest.mark.parametrize(
    ("budgets", "match"),
    [
        (
            [{"kind": "slices", "values": [1]}, {"kind": "slices", "values": [3]}],
            "second budget family",
        ),
        (
            [{"kind": "slices", "values": [1]}, {"kind": "patients", "values": ["all"]}],
            "not a patients budget",
        ),
        ({"kind": "slices", "values": [0]}, "at least 1"),
        ({"kind": "slices", "values": [3, 3]}, "listed twice"),
        ([], "non-empty list"),
        ([{"kind": "slices", "values": [1]}, {"kinds": "patients"}], r"budgets\[1\]\.kinds"),
    ],
)
def test_bad_budget_families(budgets, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_study(_raw(budgets=budgets))


def test_collect_carries_postprocessed_distances_and_clinical_errors(tmp_path: Path) -> None:
    plan = expand(
        parse_study(_raw(pipelines=["random"], budgets={"values": [3]}, seeds=[0])), tmp_path
    )
    store.save_plan(plan, tmp_path)
    (job,) = plan.jobs
    _fake_run(tmp_path, job.id, 3, 0.7, paper=True)
    path = tmp_path / "runs" / job.id / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["by_phase"]["ES"] = {s: {"hd95": 5.0} for s in ("RV", "MYO", "LV")}
    metrics["postprocessed"] = {
        "dice_3d": {"RV": 0.8, "MYO": 0.7, "LV": 0.9, "mean": 0.8},
        "by_phase": {"ED": {"RV": {"hd95": 1.0}}, "ES": {"RV": {"hd95": 2.0}}},
    }
    metrics["clinical_mean_abs_error"] = {"LV_EF": 4.5, "MYO_mass": 12.0}
    path.write_text(json.dumps(metrics))
    (row,) = collect(tmp_path)[0].to_dict("records")
    assert row["test_hd95_RV"] == 4.0  # mean of ED 3.0 and ES 5.0
    assert row["test_pp_hd95_RV"] == 1.5 and math.isnan(row["test_pp_hd95_LV"])
    assert row["test_pp_dice_3d_MYO"] == 0.7
    assert row["clinical_mae_LV_EF"] == 4.5 and row["clinical_mae_MYO_mass"] == 12.0


def test_pretraining_curves_collected_from_results_or_step_logs(tmp_path: Path) -> None:
    """``pretraining.csv``: each finished pretraining's per-epoch loss, from result.json's
    ``loss_per_epoch`` or, for runs that predate it, the step log."""
    from medssl.analysis.report import write_report
    from medssl.experiments.collect import collect_pretraining

    raw = _raw(
        pipelines=["byol-acdc", "simclr-acdc", "vicreg-acdc"], budgets={"values": [3]}, seeds=[0]
    )
    plan = expand(parse_study(raw), tmp_path)
    store.save_plan(plan, tmp_path)
    byol, simclr, vicreg = (j for j in plan.jobs if j.kind == "pretrain")
    for job, result in (
        (
            byol,
            {
                "method": "byol",
                "collapse": None,
                "loss_per_epoch": [
                    {"epoch": 0.0, "steps": 9.0, "loss": 3.0, "online_std": 0.05},
                    {"epoch": 1.0, "steps": 19.0, "loss": 2.0, "online_std": 0.06},
                ],
            },
        ),
        (simclr, {"method": "simclr", "collapse": {"step": 5}}),
        (vicreg, {"method": "vicreg", "collapse": None}),  # no curve, no log
    ):
        run = tmp_path / "runs" / job.id
        run.mkdir(parents=True)
        (run / "result.json").write_text(json.dumps({"steps": 20, **result}))
        StudyDir(tmp_path).done_marker(job.id).write_text('{"seconds": 360.0}')
    (tmp_path / "runs" / simclr.id / "logs").mkdir()
    (tmp_path / "runs" / simclr.id / "logs" / "metrics.csv").write_text(
        "epoch,loss,online_std,step\n0,6.0,0.1,9\n0,5.0,0.1,19\n1,4.0,0.2,29\n"
    )
    df = collect_pretraining(tmp_path)
    assert (tmp_path / "pretraining.csv").is_file()
    got = {p: sub["loss"].tolist() for p, sub in df.dropna(subset=["loss"]).groupby("pipeline")}
    assert got == {"byol-acdc": [3.0, 2.0], "simclr-acdc": [5.5, 4.0]}
    assert df.groupby("pipeline")["collapsed"].first().to_dict() == {
        "byol-acdc": False,
        "simclr-acdc": True,
        "vicreg-acdc": False,
    }
    no_curve = df[df["pipeline"] == "vicreg-acdc"]
    assert len(no_curve) == 1 and no_curve["loss"].isna().all()
    # the report draws figure P and tabulates each run
    for j in plan.jobs:
        if j.kind == "finetune":
            _fake_run(tmp_path, j.id, 3, 0.6, paper=True)
    results, curves = collect(tmp_path)
    out = tmp_path / "report"
    paths = write_report(results, curves, out, "P", synthetic=True, n_boot=5, pretraining=df)
    assert out / "figures" / "figP_pretraining_loss.png" in paths
    md = (out / "report.md").read_text()
    assert "Figure P." in md and "| simclr-acdc | simclr | 2 | 29 |" in md
    assert "| vicreg-acdc |" not in md.split("## Pretraining")[1].split("## ")[0]
    assert "3 pretraining runs took 0.30 h" in md  # 3 × 360 s, the curve-less run too


def test_report_states_measured_compute_and_the_hand_written_notes(tmp_path: Path) -> None:
    """Each job's wall time comes from its DONE marker (a shared run counted once), and a
    study folder's study_notes.md is the report's first section, in both files."""
    from medssl.experiments.report import study_report

    raw = _raw(
        pipelines=["random"],
        budgets={"values": [3]},
        seeds=[0, 1],
        pretraining_length={"pipeline": "byol-acdc", "epochs": [0], "budget": 3, "seeds": [0]},
    )
    plan = expand(parse_study(raw), tmp_path)
    store.save_plan(plan, tmp_path)
    for i, j in enumerate(plan.jobs):
        _fake_run(tmp_path, j.id, 3, 0.6 + 0.05 * i, paper=True)
        done = {"seconds": 100.0 * (i + 1)} | ({"device": "CPU X; 2 cores"} if i == 0 else {})
        StudyDir(tmp_path).done_marker(j.id).write_text(json.dumps(done))
    (tmp_path / "study_notes.md").write_text(
        "Ran on **two cores**.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    first = next(j for j in plan.jobs if j.kind == "finetune")
    (store.run_dir(tmp_path, first.id) / "init.json").write_text('{"fingerprint": "0123abcd"}')
    study_report(tmp_path)
    results = pd.read_csv(tmp_path / "results.csv", keep_default_na=False)
    assert len(results) == 3 and sorted(results["wall_s"].unique()) == [100.0, 200.0]
    # the weights' fingerprint from init.json; empty where a run has none recorded
    by_run = dict(zip(results["run_id"], results["init_fingerprint"], strict=True))
    assert by_run.pop(first.id) == "0123abcd" and set(by_run.values()) == {""}
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# medssl study report: t\n")  # the study file's name
    assert md.index("## About this study") < md.index("## Summary")
    assert "Ran on **two cores**." in md
    assert "2 fine-tunes (training and evaluation) took 0.08 h (median 150 s" in md
    assert "Ran on: CPU X; 2 cores (1 job); not recorded (1 job)." in md
    # what was run, from plan.json: after the summary, the fine-tunes' shared settings
    settings = md.split("## Settings")[1].split("\n## ")[0]
    assert md.index("## Summary") < md.index("## Settings")
    assert (
        "Settings of the 2 fine-tunes" in settings
        and "| runtime.seed | varies (2 values) |" in settings
    )
    page = (tmp_path / "report.html").read_text()
    assert "<strong>two cores</strong>" in page and "<td>2</td>" in page
    # a marker without JSON is still a finished job, with no wall time
    assert store.done_info(tmp_path, "nope") == {}


def test_jobs_run_pretraining_first_then_seed_by_seed(tmp_path: Path) -> None:
    plan = expand(parse_study(_raw(seeds=[5, 1])), tmp_path)
    kinds = [j.kind for j in plan.jobs]
    assert kinds == ["pretrain"] + ["finetune"] * 8
    order = [(j.meta["seed"], j.meta["budget"], j.meta["pipeline"]) for j in plan.jobs[1:]]
    assert order == [(s, b, p) for s in (5, 1) for b in (3, 30) for p in ("random", "byol-acdc")]


def test_select_pipelines_keeps_their_jobs_and_the_pretrainings_they_need(
    tmp_path: Path,
) -> None:
    """One pipeline's part of a plan: its fine-tunes, its pretraining, nothing else, in
    the plan's order; a job shared with another pipeline's cell belongs to both."""
    from medssl.experiments.plan import select_pipelines

    raw = _raw(
        pipelines=["random", "byol-acdc", "simclr-acdc"],
        pretraining_length={"pipeline": "byol-acdc", "epochs": [0, 2], "budget": 3, "seeds": [0]},
    )
    plan = expand(parse_study(raw), tmp_path)
    byol = select_pipelines(plan, ["byol-acdc"])
    kinds = [j.kind for j in byol.jobs]
    assert kinds.count("pretrain") >= 1 and set(kinds) == {"pretrain", "finetune"}
    for job in byol.jobs:
        cells = [job.meta, *job.meta.get("also", [])]
        if job.kind == "finetune":
            assert any(c["pipeline"] == "byol-acdc" for c in cells)
            assert set(job.depends) <= {j.id for j in byol.jobs}
    assert [j.id for j in plan.jobs if j.id in {b.id for b in byol.jobs}] == [
        j.id for j in byol.jobs
    ]
    random = select_pipelines(plan, ["random"])
    assert {j.kind for j in random.jobs} == {"finetune"}
    # the length study's epoch-0 fine-tune is random init's fine-tune too: in both parts
    shared = [j for j in random.jobs if j.meta.get("also")]
    assert shared and {j.id for j in shared} <= {j.id for j in byol.jobs}
    both = select_pipelines(plan, ["random", "byol-acdc"])
    assert {j.id for j in both.jobs} == {j.id for j in byol.jobs} | {j.id for j in random.jobs}
    assert not {j.id for j in both.jobs} & {
        j.id for j in plan.jobs if j.meta.get("pipeline") == "simclr-acdc"
    }
    with pytest.raises(ConfigError, match=r"byol-imagenet.*its pipelines: byol-acdc, random"):
        select_pipelines(plan, ["byol-imagenet"])


def _finished_pretraining(root: Path, job_id: str, fingerprint: str | None) -> None:
    """A finished pretraining run's small files (no weights), as on a fresh clone."""
    run = root / "runs" / job_id
    run.mkdir(parents=True)
    result = {"steps": 20, "method": "byol", "collapse": None}
    result["loss_per_epoch"] = [{"epoch": 0.0, "steps": 19.0, "loss": 1.0, "online_std": 0.1}]
    if fingerprint is not None:
        result["encoder_fingerprint"] = fingerprint
    (run / "result.json").write_text(json.dumps(result))
    StudyDir(root).done_marker(job_id).write_text('{"seconds": 100.0}')


def _finished_fine_tune(root: Path, job_id: str, fingerprint: str) -> None:
    run = root / "runs" / job_id
    run.mkdir(parents=True)
    (run / "init.json").write_text(json.dumps({"source": "x", "fingerprint": fingerprint}))
    StudyDir(root).done_marker(job_id).write_text('{"seconds": 10.0}')


def test_superseded_records_keep_each_run_and_the_weights_its_fine_tunes_loaded(
    tmp_path: Path,
) -> None:
    """A finished pretraining whose weights are gone is moved to superseded/<id>.<n> each
    time it must run again; each record lists only the fine-tunes that loaded that run,
    and the pretraining table holds every run in order with its fingerprint."""
    from medssl.experiments.collect import collect_pretraining

    plan = expand(parse_study(_raw(seeds=[0, 1, 2])), tmp_path)
    store.save_plan(plan, tmp_path)
    (pre,) = _pretrain_jobs(plan)
    tunes = [j.id for j in plan.jobs if pre in j.depends]
    assert len(tunes) == 6
    _finished_pretraining(tmp_path, pre, None)  # predates encoder_fingerprint
    for ft in tunes[:2]:
        _finished_fine_tune(tmp_path, ft, "aaaa")
    assert collect_pretraining(tmp_path)["encoder_fingerprint"].unique().tolist() == ["aaaa"]
    assert store.reopen_missing_inputs(plan, tmp_path) == [pre]
    assert not (tmp_path / "runs" / pre).exists()
    first = store.read_superseded(StudyDir(tmp_path).superseded(pre)[0])
    assert first["fine_tune_fingerprints"] == {"aaaa": sorted(tunes[:2])}
    assert first["missing"] == ["encoder_last.safetensors"] and first["done"]["seconds"] == 100
    # the job ran again (weights "bbbb"), one more fine-tune loaded them; a later machine
    # supersedes this run too: its record lists that fine-tune only
    _finished_pretraining(tmp_path, pre, "bbbb")
    _finished_fine_tune(tmp_path, tunes[2], "bbbb")
    assert store.reopen_missing_inputs(plan, tmp_path) == [pre]
    second = store.read_superseded(StudyDir(tmp_path).superseded(pre)[1])
    assert second["fine_tune_fingerprints"] == {"bbbb": [tunes[2]]}
    _finished_pretraining(tmp_path, pre, "cccc")
    df = collect_pretraining(tmp_path).drop_duplicates("run_id")
    assert df["run_id"].tolist() == [f"{pre}.1", f"{pre}.2", pre]
    assert df["encoder_fingerprint"].tolist() == ["aaaa", "bbbb", "cccc"]
    assert df["superseded"].tolist() == [True, True, False]
    assert df["wall_s"].tolist() == [100.0] * 3
    # a finished job whose weights are there is not superseded
    (tmp_path / "runs" / pre / "encoder_last.safetensors").write_bytes(b"")
    assert store.reopen_missing_inputs(plan, tmp_path) == []


def test_superseded_records_are_numbered_in_order_and_a_bad_one_is_a_one_line_error(
    tmp_path: Path,
) -> None:
    from medssl.errors import DataError
    from medssl.experiments.collect import collect_pretraining

    study = StudyDir(tmp_path)
    for n in (1, 2, 10):
        (tmp_path / "superseded" / f"abc.{n}").mkdir(parents=True)
    (tmp_path / "superseded" / "abc.notes").mkdir()  # not a record
    assert [r.path.name for r in study.superseded("abc")] == ["abc.1", "abc.2", "abc.10"]
    assert study.next_superseded("abc").path.name == "abc.11"
    assert study.superseded("other") == []
    plan = expand(parse_study(_raw()), tmp_path / "s")
    store.save_plan(plan, tmp_path / "s")
    (pre,) = _pretrain_jobs(plan)
    bad = tmp_path / "s" / "superseded" / f"{pre}.1"
    bad.mkdir(parents=True)
    (bad / "superseded.json").write_text("{not json")
    with pytest.raises(DataError, match=r"superseded\.json: \[superseded-record\] unreadable"):
        collect_pretraining(tmp_path / "s")
    for text, why in (
        ("[1, 2]", r"not a superseded\.json object"),
        ('{"fine_tune_fingerprints": {"aaaa": "xyz"}}', "must map fingerprints to job ids"),
        ('{"fine_tune_fingerprints": {"aaaa": 3}}', "must map fingerprints to job ids"),
        ('{"done": [1]}', "numeric seconds"),
        ('{"done": {"seconds": "x"}}', "numeric seconds"),
    ):
        (bad / "superseded.json").write_text(text)
        with pytest.raises(DataError, match=why):
            collect_pretraining(tmp_path / "s")


def test_superseding_skips_a_taken_name_and_leaves_length_study_fine_tunes_out(
    tmp_path: Path,
) -> None:
    """A stray file at the next number is skipped (no endless retry), and the fine-tunes
    of a pretraining-length study, which load per-epoch encoders, are not counted as
    users of the run's last encoder."""
    raw = _raw(
        pipelines=["byol-acdc"],
        seeds=[0, 1],
        pretraining_length={"pipeline": "byol-acdc", "epochs": [0], "budget": 3, "seeds": [0]},
    )
    plan = expand(parse_study(raw), tmp_path)
    store.save_plan(plan, tmp_path)
    (pre,) = _pretrain_jobs(plan)
    main = [j.id for j in plan.jobs if pre in j.depends and j.meta["pretrain_epoch"] is None]
    length = [j.id for j in plan.jobs if j.meta.get("pretrain_epoch") is not None]
    assert main and length
    _finished_pretraining(tmp_path, pre, None)
    _finished_fine_tune(tmp_path, main[0], "aaaa")
    _finished_fine_tune(tmp_path, length[0], "eeee")
    assert store.last_encoder_users(tmp_path, pre) == {main[0]: "aaaa"}
    (tmp_path / "superseded").mkdir()
    (tmp_path / "superseded" / f"{pre}.1").write_text("not a run")  # a stray file
    assert store.reopen_missing_inputs(plan, tmp_path) == [pre]
    record = store.read_superseded(StudyDir(tmp_path).superseded(pre)[0])
    assert StudyDir(tmp_path).superseded(pre)[0].path.name == f"{pre}.2"
    assert record["fine_tune_fingerprints"] == {"aaaa": [main[0]]}
    assert (tmp_path / "superseded" / f"{pre}.2" / "result.json").is_file()
