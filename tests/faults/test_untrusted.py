"""A pickle whose loading would create a file, fed to every entry point that reads
weights or checkpoints: refused everywhere, the file never appears."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from medssl.cli import main
from tests.conftest import TINY_FINETUNE

SRC = Path(__file__).resolve().parents[2] / "src" / "medssl"


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _evil(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "x": _Payload(marker)}, path)
    return path


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PWNED"


def test_payload_is_live(tmp_path: Path, marker: Path) -> None:
    """The test file really runs code when loaded without weights_only (else the other
    tests would prove nothing)."""
    path = _evil(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def _refused(capsys: pytest.CaptureFixture, argv: list[str], named: Path, marker: Path) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert not marker.exists(), "the pickle ran code"
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and str(named) in lines[0], err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("kind", ["pretrain", "finetune"])
def test_init_refuses(kind, tiny_cache: Path, tmp_path: Path, marker: Path, capsys) -> None:
    evil = _evil(tmp_path / "evil.pt", marker)
    argv = [kind, "--data", tiny_cache, "--out", tmp_path / "run", "--init", evil]
    _refused(capsys, argv, evil, marker)


@pytest.mark.parametrize("cmd", ["inspect", "convert"])
def test_weights_commands_refuse(cmd, tmp_path: Path, marker: Path, capsys) -> None:
    evil = _evil(tmp_path / "evil.pt", marker)
    argv = ["weights", cmd, evil] + (
        ["--out", tmp_path / "out.safetensors"] if cmd == "convert" else []
    )
    _refused(capsys, argv, evil, marker)
    assert not (tmp_path / "out.safetensors").exists()


def test_resume_refuses_a_pickle_checkpoint(
    tiny_cache: Path, tmp_path: Path, marker: Path, capsys
) -> None:
    run = tmp_path / "run"
    sets = [a for item in [*TINY_FINETUNE, "steps=4"] for a in ("--set", item)]
    argv = ["finetune", "--data", tiny_cache, "--out", run, *sets]
    assert main([str(a) for a in argv]) == 0
    capsys.readouterr()
    (run / "result.json").unlink()
    ckpt = _evil(run / "checkpoints" / "last.ckpt", marker)
    line = _refused(capsys, [*argv, "--resume"], ckpt, marker)
    assert "refused to resume" in line


@pytest.fixture
def evil_run(tiny_finetuned: Path, tmp_path: Path, marker: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(tiny_finetuned, run)
    _evil(run / "best.safetensors", marker)
    return run


def test_evaluate_refuses(evil_run: Path, marker: Path, capsys) -> None:
    _refused(capsys, ["evaluate", evil_run], evil_run / "best.safetensors", marker)


def test_predict_refuses(evil_run: Path, tiny_cache: Path, tmp_path: Path, marker, capsys):
    from medssl.data.nifti import write_nifti

    image = tmp_path / "in" / "case.nii.gz"
    image.parent.mkdir()
    write_nifti(image, np.random.default_rng(0).random((32, 32, 4), dtype=np.float32), np.eye(4))
    argv = ["predict", "--model", evil_run, "--input", image, "--out", tmp_path / "pred"]
    _refused(capsys, argv, evil_run / "best.safetensors", marker)


def test_no_torch_load_without_weights_only() -> None:
    """Every ``torch.load`` call in the package passes ``weights_only=True``."""
    calls = []
    for file in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch"
            ):
                kw = {k.arg: k.value for k in node.keywords}
                safe = isinstance(kw.get("weights_only"), ast.Constant) and (
                    kw["weights_only"].value is True
                )
                calls.append((f"{file.relative_to(SRC)}:{node.lineno}", safe))
    assert calls, "found no torch.load call at all: the scan is broken"
    unsafe = [where for where, safe in calls if not safe]
    assert not unsafe, unsafe
