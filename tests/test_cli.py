"""The command line: the data commands end to end, and one-line errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from medssl.cli import main


def _summary(out: str) -> dict[str, str]:
    rows = {}
    for line in out.splitlines():
        if "  " in line and not line.startswith("PROBLEM"):
            key, value = line.split("  ", 1)
            rows[key.strip()] = value.strip()
    return rows


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_phantom_then_check(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "phantom", str(tmp_path / "a"), "--patients", "6", "--seed", "1"]) == 0
    capsys.readouterr()
    assert main(["data", "check", str(tmp_path / "a")]) == 0
    rows = _summary(capsys.readouterr().out)
    assert rows["patients"] == "6"
    assert rows["labelled volumes"] == "12"
    assert int(rows["4D frames"]) >= 6 * 2 and int(rows["4D frame slices"]) > 0
    assert rows["problems"] == "0"
    assert main(["data", "phantom", str(tmp_path / "b"), "--patients", "6", "--seed", "1"]) == 0
    assert _hashes(tmp_path / "a") == _hashes(tmp_path / "b")


def test_prepare_writes_cache_and_split(
    tmp_path: Path, acdc_source: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "cache"
    assert main(["data", "prepare", str(acdc_source), "--out", str(out)]) == 0
    assert "built" in capsys.readouterr().out
    assert (out / "split.json").exists() and (out / "manifest.json").exists()
    assert main(["data", "prepare", str(acdc_source), "--out", str(out)]) == 0
    assert "already current" in capsys.readouterr().out


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "check", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path / "nothing") in err[0]
    assert (
        main(
            [
                "finetune",
                "--data",
                str(tmp_path),
                "--out",
                str(tmp_path / "r"),
                "--set",
                "no_such_key=1",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_key" in err[0]


def test_pretrain_method_then_finetune_from_its_encoder_and_decoder(
    tiny_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from tests.conftest import TINY_FINETUNE, TINY_METHOD, TINY_PRETRAIN

    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    listing = capsys.readouterr().out
    for name in ("byol", "simclr", "mocov2", "vicreg", "barlowtwins", "dino", "densecl", "mim"):
        assert name in listing
    pre = tmp_path / "mim"
    sets = [a for s in [*TINY_PRETRAIN, *TINY_METHOD, "max_steps=3"] for a in ("--set", s)]
    args = ["pretrain", "--method", "mim", "--data", str(tiny_cache), "--out", str(pre)]
    assert main([*args, *sets]) == 0
    import yaml

    config = yaml.safe_load((pre / "config.yaml").read_text())
    assert (config["method"], config["optimizer"]) == ("mim", "adamw")  # the method's recipe
    run = tmp_path / "ft"
    fine = ["--set", "decoder_channels=32,16,16,8,8", "--set", "steps=2"]
    fine = [a for s in TINY_FINETUNE for a in ("--set", s)] + fine
    args = ["finetune", "--data", str(tiny_cache), "--out", str(run)]
    args += ["--init", str(pre / "encoder_last.safetensors")]
    args += ["--init-decoder", str(pre / "decoder_last.safetensors")]
    assert main([*args, *fine]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["init_decoder"].endswith(
        "decoder_last.safetensors"
    )
    # a decoder of other widths is refused in one line naming the file
    capsys.readouterr()
    other = [a for s in TINY_FINETUNE for a in ("--set", s)] + [
        "--set",
        "decoder_channels=16,16,8,8,8",
    ]
    bad = ["finetune", "--data", str(tiny_cache), "--out", str(tmp_path / "bad")]
    bad += ["--init-decoder", str(pre / "decoder_last.safetensors")]
    assert main([*bad, *other]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "decoder_last.safetensors" in err[0] and "widths" in err[0]


def test_finetune_with_nnunet_split_and_labelled_file(
    tiny_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import json

    from medssl.artifacts.split import Split
    from tests.conftest import TINY_FINETUNE

    folds = [
        {"train": ["patient003_frame01", "patient004_frame01"], "val": ["patient005_frame01"]},
        {"train": ["patient001_frame01", "patient002_frame01"], "val": ["patient003_frame01"]},
    ]
    (tmp_path / "splits_final.json").write_text(json.dumps(folds))
    (tmp_path / "labelled.json").write_text(json.dumps(["patient002"]))
    sets = [a for s in [*TINY_FINETUNE, "steps=2"] for a in ("--set", s)]
    args = ["finetune", "--data", str(tiny_cache), "--out", str(tmp_path / "run")]
    args += ["--split", str(tmp_path / "splits_final.json"), "--split-fold", "1"]
    assert main([*args, "--labelled", str(tmp_path / "labelled.json"), *sets]) == 0
    split = Split.load(tmp_path / "run" / "split.json")
    assert split.train == ("patient001", "patient002") and split.val == ("patient003",)
    assert split.scheme == "nnunet-fold-1"
    budget = json.loads((tmp_path / "run" / "budget.json").read_text())
    assert {s[0] for s in budget["slices"]} == {"patient002"}
    capsys.readouterr()
    # fold 0 trains on patients 3 and 4: patient002 is outside train -> one line, file named
    args[-1] = "0"
    args[4] = str(tmp_path / "run0")
    assert main([*args, "--labelled", str(tmp_path / "labelled.json"), *sets]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "labelled.json" in err[0] and "not train" in err[0]
    assert not (tmp_path / "run0" / "config.yaml").exists()
