"""Study engine: expansion, content addressing, shared stages, resumable drivers, SLURM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from medssl.artifacts.rundir import RunDir
from medssl.experiments import store
from medssl.experiments.collect import collect, collect_pretraining
from medssl.experiments.drive import run_study
from medssl.experiments.plan import expand
from medssl.experiments.study import parse_study

TINY_PRETRAIN_SET = {
    "arch": "resnet18",
    "crop": 32,
    "batch_size": 8,
    "epochs": 1,
    "max_steps": 2,
    "heads.proj_hidden": 32,
    "heads.proj_out": 16,
    "heads.pred_hidden": 32,
    "runtime.num_workers": 0,
    "runtime.precision": "32-true",
    "runtime.accelerator": "cpu",
}
TINY_FINETUNE_SET = {
    "arch": "resnet18",
    "crop": 32,
    "batch_size": 4,
    "steps": 2,
    "val_every_steps": 2,
    "warmup_steps": 1,
    "decoder_channels": "16,16,8,8,8",
    "runtime.num_workers": 0,
    "runtime.precision": "32-true",
    "runtime.accelerator": "cpu",
}


def _study_dict(cache: Path, **extra) -> dict:
    return {
        "name": "tiny",
        "data": str(cache),
        "domain": "tiny",
        "pipelines": ["random", "byol-tiny"],
        "budgets": {"kind": "slices", "values": [2, 4]},
        "seeds": [0],
        "pretrain": {"preset": "paper", "set": TINY_PRETRAIN_SET},
        "finetune": {"preset": "paper", "set": TINY_FINETUNE_SET},
        **extra,
    }


def test_expansion_and_content_addressing(
    tiny_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    raw = _study_dict(
        tiny_cache,
        pipelines=["random", "byol-tiny", "supervised-imagenet", "byol-imagenet+byol-tiny"],
        seeds=[0, 13],
        pretraining_length={"pipeline": "byol-tiny", "budget": 2, "seeds": [0], "epochs": "all"},
    )
    study = parse_study(raw)
    a, b = expand(study, tmp_path / "a"), expand(study, tmp_path / "b")
    assert [j.id for j in a.jobs] == [j.id for j in b.jobs]  # location-independent ids
    assert len({j.id for j in a.jobs}) == len(a.jobs)
    pre = [j for j in a.jobs if j.kind == "pretrain"]
    assert len(pre) == 1  # one shared BYOL stage
    main = [j for j in a.jobs if j.kind == "finetune" and j.meta["study"] == "main"]
    assert len(main) == 2 * 2 * 2  # pipelines × budgets × seeds
    assert all(j.depends == (pre[0].id,) for j in main if j.meta["pipeline"] == "byol-tiny")
    cells = [(j, c) for j in a.jobs for c in [j.meta, *j.meta.get("also", [])]]
    length = [(j, c) for j, c in cells if c.get("study") == "length"]
    assert sorted(c["pretrain_epoch"] for _, c in length) == [0, 1]
    # epoch 0 = the initial (random) weights: the random pipeline's run at that cell
    zero = next(j for j, c in length if c["pretrain_epoch"] == 0)
    assert zero.depends == () and zero.meta["pipeline"] == "random"
    assert zero.meta["budget"] == 2 and zero.meta["seed"] == 0
    assert set(a.skipped) == {"supervised-imagenet", "byol-imagenet+byol-tiny"}
    assert "BYOL-ImageNet" in a.skipped["byol-imagenet+byol-tiny"]
    changed = expand(parse_study({**raw, "seeds": [0, 14]}), tmp_path / "a")
    # pretraining + seed-0 main fine-tunes (epoch 0 of the length study among them) + epoch 1
    assert len({j.id for j in changed.jobs} & {j.id for j in a.jobs}) == 1 + 4 + 1


def test_study_runs_shared_stage_once_and_collects(tiny_cache: Path, tmp_path: Path) -> None:
    root = tmp_path / "study"
    # one pipeline first (random init: no pretraining), the status counting the whole plan
    part = run_study(
        parse_study(_study_dict(tiny_cache)),
        root,
        progress=False,
        pipelines=["random"],
        keep_checkpoints=True,
    )
    assert (part.done, part.failed, part.remaining) == (2, 0, 3)
    assert part.per_pipeline == {"random": (2, 2), "byol-tiny": (0, 3)}  # BYOL: its stage too
    assert "by pipeline (done/total): " in part.lines()[1] and "byol-tiny 0/3" in part.lines()[1]
    assert {e["kind"] for e in store.read_ledger(root)} == {"finetune"}
    kept = {e["job"] for e in store.read_ledger(root)}
    assert all(RunDir(store.run_dir(root, j)).last_ckpt.is_file() for j in kept)
    status = run_study(parse_study(_study_dict(tiny_cache)), root, progress=False)
    assert (status.done, status.failed, status.remaining) == (5, 0, 0)
    assert status.per_pipeline == {"random": (2, 2), "byol-tiny": (3, 3)}
    ledger = store.read_ledger(root)
    # by default a finished job's resume checkpoints are deleted; weights and results stay
    for job in {e["job"] for e in ledger} - kept:
        run = RunDir(store.run_dir(root, job))
        assert not run.checkpoints.exists() and run.finished
        assert run.best_weights.is_file() or run.encoder_last.is_file()
    assert all(RunDir(store.run_dir(root, j)).last_ckpt.is_file() for j in kept)
    assert len(ledger) == 5 and len({e["job"] for e in ledger}) == 5
    assert sum(e["kind"] == "pretrain" for e in ledger) == 1
    results, curves = collect(root)
    assert len(results) == 4 and set(results["pipeline"]) == {"random", "byol-tiny"}
    assert (root / "results.parquet").exists() and (root / "results.csv").exists()
    assert set(curves["run_id"]) == set(results["run_id"])
    # every DONE marker names the machine; the tables carry it
    assert all("cores; torch " in store.done_info(root, e["job"])["device"] for e in ledger)
    assert results["device"].str.contains("cores; torch ").all()
    again = run_study(parse_study(_study_dict(tiny_cache)), root, progress=False)
    assert again.done == 5 and len(store.read_ledger(root)) == 5  # nothing recomputed


def _driver(study_file: Path, root: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "medssl", "study", "run", str(study_file), "--out", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_killed_driver_and_concurrent_drivers(tiny_cache: Path, tmp_path: Path) -> None:
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(_study_dict(tiny_cache, seeds=[0, 1])))
    root = tmp_path / "study"
    proc = _driver(study_file, root)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (root / "runs").exists() and any((root / "runs").glob("*/DONE")):
            break
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first_done = {p.parent.name: p.stat().st_mtime_ns for p in (root / "runs").glob("*/DONE")}
    assert first_done, "killed before anything finished"
    drivers = [_driver(study_file, root), _driver(study_file, root)]  # two at once
    assert all(d.wait(timeout=600) == 0 for d in drivers)
    plan = json.loads((root / "plan.json").read_text())
    assert all(store.is_done(root, j["id"]) for j in plan["jobs"])
    for jid, mtime in first_done.items():  # finished runs were not recomputed
        assert (root / "runs" / jid / "DONE").stat().st_mtime_ns == mtime
    starts = [e["job"] for e in store.read_ledger(root)]
    finished_twice = [j for j in first_done if starts.count(j) > 1]
    assert not finished_twice
    # a job started twice was the one interrupted by the kill; no other duplicate
    assert len(starts) - len(set(starts)) <= 1
    results, _ = collect(root)
    assert len(results) == 8 and not results["run_id"].duplicated().any()


def test_submitit_local_executor_runs_a_tiny_study(tiny_cache: Path, tmp_path: Path) -> None:
    import submitit

    from medssl.experiments import runner
    from medssl.experiments.status import study_status

    root = tmp_path / "study"
    study = parse_study(_study_dict(tiny_cache, pipelines=["random"], budgets={"values": [2]}))
    plan = expand(study, root)
    store.save_plan(plan, root)
    ex = submitit.LocalExecutor(folder=tmp_path / "submitit")
    jobs = runner.run_slurm(plan, root, workers=1, executor=ex)
    assert [j.result() for j in jobs] == [1]
    assert study_status(root).done == 1


def test_study_with_method_pipelines_runs_each_method(tiny_cache: Path, tmp_path: Path) -> None:
    """``simclr-tiny`` and ``mim-tiny`` from a study file: each pretrains with its method;
    mim's fine-tune starts from its pretrained decoder."""
    pretrain_set = {
        **TINY_PRETRAIN_SET,
        "objective.mask_patch": 8,
        "objective.decoder_channels": TINY_FINETUNE_SET["decoder_channels"],
    }
    raw = _study_dict(
        tiny_cache,
        pipelines=["simclr-tiny", "mim-tiny"],
        budgets={"kind": "slices", "values": [2]},
        pretrain={"preset": "paper", "set": pretrain_set},
    )
    root = tmp_path / "study"
    status = run_study(parse_study(raw), root, progress=False)
    assert (status.done, status.failed) == (4, 0)
    results, _ = collect(root)
    assert set(results["pipeline"]) == {"simclr-tiny", "mim-tiny"}
    methods, decoders = {}, []
    for run in (root / "runs").iterdir():
        config = yaml.safe_load((run / "config.yaml").read_text())
        if "method" in config:
            methods[config["method"]] = run
        elif config["init_decoder"]:
            decoders.append(Path(config["init_decoder"]))
    assert set(methods) == {"simclr", "mim"}
    assert (methods["mim"] / "decoder_last.safetensors").exists()
    assert not (methods["simclr"] / "decoder_last.safetensors").exists()
    assert decoders == [methods["mim"] / "decoder_last.safetensors"]  # one fine-tune: mim's


def _commit_and_clone(src: Path, dst: Path) -> None:
    """What a fresh clone holds of a study folder: the files git keeps under the folder's
    own ``.gitignore``."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "study"]):
        subprocess.run(["git", *args], cwd=src, env=env, check=True)
    subprocess.run(["git", "clone", "-q", str(src), str(dst)], env=env, check=True)


def test_study_resumes_from_a_committed_folder_without_weights(
    tiny_cache: Path, tmp_path: Path
) -> None:
    first = tmp_path / "machine-a"
    run_study(parse_study(_study_dict(tiny_cache)), first, progress=False)
    clone = tmp_path / "machine-b"
    _commit_and_clone(first, clone)
    assert not list(clone.rglob("*.safetensors")) and not list(clone.rglob("*.ckpt"))
    assert len(list(clone.glob("runs/*/DONE"))) == 5 and list(clone.glob("runs/*/metrics.json"))
    # the same study on the clone: every run is skipped, the table regenerates
    status = run_study(parse_study(_study_dict(tiny_cache)), clone, progress=False)
    assert status.done == 5 and len(store.read_ledger(clone)) == 5
    collect(first)
    collect(clone)  # the tables regenerate byte for byte from the committed files
    assert (clone / "results.csv").read_bytes() == (first / "results.csv").read_bytes()
    assert (clone / "curves.csv").read_bytes() == (first / "curves.csv").read_bytes()
    # a new seed needs the pretrained encoder, which was not committed: the pretraining
    # runs again; the finished fine-tunes are not touched
    bigger = parse_study(_study_dict(tiny_cache, seeds=[0, 1]))
    status = run_study(bigger, clone, progress=False)
    assert (status.done, status.failed) == (9, 0)
    ledger = store.read_ledger(clone)[5:]
    assert sorted(e["kind"] for e in ledger) == ["finetune"] * 4 + ["pretrain"]
    earlier = {e["job"]: e["kind"] for e in store.read_ledger(first)}
    for e in ledger:  # the same pretraining job again; only new fine-tunes
        assert (e["job"] in earlier) == (e["kind"] == "pretrain")
    # the first run of the pretraining is kept as a superseded record: its loss curve and
    # the weight fingerprint its two finished fine-tunes loaded, which is the fingerprint
    # the pretraining itself recorded for its exported encoder
    (pre_id,) = [e["job"] for e in ledger if e["kind"] == "pretrain"]
    record = json.loads((clone / "superseded" / f"{pre_id}.1" / "superseded.json").read_text())
    first_fp = json.loads((first / "runs" / pre_id / "result.json").read_text())[
        "encoder_fingerprint"
    ]
    assert len(first_fp) == 16
    assert {fp: len(ids) for fp, ids in record["fine_tune_fingerprints"].items()} == {first_fp: 2}
    assert record["missing"] == ["encoder_last.safetensors"] and record["done"]["seconds"] > 0
    pre = collect_pretraining(clone).drop_duplicates("run_id").set_index("run_id")
    assert list(pre.index) == [f"{pre_id}.1", pre_id]  # oldest first
    assert pre.loc[f"{pre_id}.1", "superseded"] and not pre.loc[pre_id, "superseded"]
    assert pre.loc[f"{pre_id}.1", "encoder_fingerprint"] == first_fp
    # the new run's fingerprint is the one its new fine-tunes loaded
    new_fp = pre.loc[pre_id, "encoder_fingerprint"]
    new_tunes = [e["job"] for e in ledger if e["kind"] == "finetune"]
    loaded = {
        json.loads((clone / "runs" / j / "init.json").read_text())["fingerprint"]
        for j in new_tunes
        if json.loads((clone / "runs" / j / "init.json").read_text())["source"] != "random"
    }
    assert loaded == {new_fp}
    # and the record is committed with the folder: a further clone still holds it
    third = tmp_path / "machine-c"
    _commit_and_clone(clone, third)
    assert (third / "superseded" / f"{pre_id}.1" / "result.json").is_file()
    assert not list(third.rglob("*.safetensors"))


def test_worker_threads_share_the_cores() -> None:
    from medssl.experiments.runner import worker_threads

    assert [worker_threads(w, 2) for w in (1, 2, 3)] == [2, 1, 1]
    assert worker_threads(4, 16) == 4 and worker_threads(2, None) == 1


def test_two_local_cpu_workers_split_the_cores(
    tiny_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two spawned workers run a study's jobs, each with its share of the cores as its
    thread count (the DONE markers name it)."""
    from medssl.experiments.runner import worker_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    root = tmp_path / "study"
    raw = _study_dict(tiny_cache, pipelines=["random"])
    status = run_study(parse_study(raw), root, workers=2, progress=False)
    assert (status.done, status.failed) == (2, 0)
    threads = worker_threads(2, os.cpu_count())
    devices = [store.done_info(root, e["job"])["device"] for e in store.read_ledger(root)]
    assert len(devices) == 2 and all(f"({threads} threads" in d for d in devices)


def test_eta_counts_timed_kinds_and_names_the_untimed_ones() -> None:
    from medssl.experiments.status import StudyStatus, estimate

    durations = {"finetune": [100.0, 300.0, 200.0]}
    eta, untimed = estimate(durations, ["finetune", "finetune", "pretrain"])
    assert eta == 400.0 and untimed == {"pretrain": 1}
    assert estimate(durations, []) == (0.0, {})
    assert estimate({}, ["pretrain"]) == (None, {"pretrain": 1})
    line = StudyStatus(5, 2, 0, 0, 3, eta, {}, untimed).lines()[0]
    assert "ETA 6.7 min of job time" in line and "1 pretrain job(s) not timed yet" in line
    assert "unknown" in StudyStatus(1, 0, 0, 0, 1, None, {}, {"pretrain": 1}).lines()[0]


def test_fine_tunes_wait_on_a_collapsed_pretraining(
    tiny_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pretraining whose collapse check fired: its fine-tunes wait (named by the status,
    non-zero exit) until the user allows them; the other pipelines run."""
    from medssl.cli import main

    # a threshold no spread reaches: the check fires at the first step
    collapsing = {**TINY_PRETRAIN_SET, "collapse_fraction": 1e6, "collapse_patience": 1}
    raw = _study_dict(
        tiny_cache,
        budgets={"kind": "slices", "values": [2]},
        pretrain={"preset": "paper", "set": collapsing},
    )
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(raw))
    root = tmp_path / "study"
    status = run_study(parse_study(raw), root, progress=False)
    (pre,) = [e["job"] for e in store.read_ledger(root) if e["kind"] == "pretrain"]
    assert store.collapse_flag(root, pre)["step"] == 0
    assert (status.done, status.failed, status.remaining, status.blocked) == (2, 0, 0, {pre: 1})
    assert {e["kind"] for e in store.read_ledger(root)} == {"pretrain", "finetune"}
    assert len(store.read_ledger(root)) == 2  # random's fine-tune ran, BYOL's waits
    assert main(["study", "status", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"blocked: 1 job(s) wait on pretraining {pre} (byol-tiny: collapse check fired" in out
    assert "--allow-collapsed" in out
    # the folder on another machine (no weights): the collapsed stage is not run again for
    # fine-tunes that would wait anyway
    for weights in store.run_dir(root, pre).glob("*.safetensors"):
        weights.unlink()
    again = run_study(parse_study(raw), root, progress=False)
    assert again.blocked == {pre: 1} and len(store.read_ledger(root)) == 2
    # the user's decision: fine-tune from it anyway (its weights are gone: it runs again)
    assert main(["study", "run", str(study_file), "--out", str(root), "--allow-collapsed"]) == 0
    ledger = store.read_ledger(root)
    assert [e["kind"] for e in ledger[2:]] == ["pretrain", "finetune"]
    # the decision is saved with the study: a plain status and run honour it
    assert (root / "allowed-collapse" / pre).is_file()
    assert main(["study", "status", str(root)]) == 0
    assert run_study(parse_study(raw), root, progress=False).blocked == {}
    assert len(store.read_ledger(root)) == 4


def test_a_job_finished_by_another_worker_after_the_scan_is_not_run_again(
    tiny_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between a worker's scan for ready jobs and its claim, another worker finishes the
    job and releases its claim: the claim succeeds, but the job must not run again."""
    from medssl.experiments import runner

    raw = _study_dict(tiny_cache, pipelines=["random"], budgets={"kind": "slices", "values": [2]})
    root = tmp_path / "study"
    plan = expand(parse_study(raw), root)
    store.save_plan(plan, root)
    real_claim = store.try_claim

    def claim_once_the_other_worker_is_done(r: Path, job_id: str, stale_after: float):
        store.mark_done(r, job_id, {"kind": "finetune", "seconds": 1.0})
        return real_claim(r, job_id, stale_after)

    monkeypatch.setattr(store, "try_claim", claim_once_the_other_worker_is_done)
    monkeypatch.setattr(runner, "run_job", lambda job: pytest.fail(f"ran done job {job.id}"))
    stats = runner.worker_loop(plan, root, poll=0.01)
    assert (stats.ran, stats.failed) == (0, 0) and store.read_ledger(root) == []
    assert not store.live_claims(root)  # the claim was released


def test_the_report_names_finished_jobs_that_started_more_than_once(tmp_path: Path) -> None:
    from medssl.experiments.report import _attempts_note

    plan = {"jobs": [{"id": i, "kind": "finetune", "depends": [], "meta": {}} for i in "abc"]}
    for job in ["a", "b", "b", "c", "c", "c"]:  # c started three times but is not done
        store.append_ledger(tmp_path, {"job": job, "kind": "finetune", "start": 0.0})
    assert _attempts_note(plan, tmp_path) is None  # nothing finished yet
    for job in ("a", "b"):
        store.mark_done(tmp_path, job, {"seconds": 1.0})
    note = _attempts_note(plan, tmp_path)
    assert note.startswith("1 finished job(s) started more than once") and note.endswith("b (2).")
    assert "lower bound" in note


def test_a_study_folder_made_by_an_older_medssl_gets_the_new_ignore_patterns(
    tiny_cache: Path, tmp_path: Path
) -> None:
    from medssl.artifacts.study import STUDY_GITIGNORE

    root = tmp_path / "study"
    root.mkdir()
    (root / ".gitignore").write_text("*.safetensors\nmy-notes/\n")  # old patterns + a user's
    plan = expand(parse_study(_study_dict(tiny_cache)), root)
    store.save_plan(plan, root)
    store.save_plan(plan, root)  # idempotent
    lines = (root / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["*.safetensors", "my-notes/"]
    assert len(lines) == len(set(lines)) and set(STUDY_GITIGNORE) <= set(lines)
    assert "superseded/*/checkpoints/" in lines
