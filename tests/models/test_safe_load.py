"""Safe reading of weight files: harmless config objects load, code-running pickles do not."""

from __future__ import annotations

import argparse
import ast
import collections
import logging
import pathlib
import re
from pathlib import Path

import pytest
import torch
from lightning.fabric.utilities.data import AttributeDict
from omegaconf import OmegaConf
from safetensors.torch import save_file

from medssl.errors import WeightsError
from medssl.models.encoders import create_encoder
from medssl.models.safe_load import HARMLESS_GLOBALS, read_weights_file
from medssl.models.weights import convert_weights, inspect_weights, load_weights

SRC = Path(__file__).resolve().parents[2] / "src"


class _OpenForWriting:
    """Unpickles to ``open(path, "w")``: creates the file while loading."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class _Touch:
    """Unpickles to ``pathlib.Path.touch(path)`` (pickled as ``getattr(Path, 'touch')``)."""

    def __init__(self, path: Path) -> None:
        self.path = pathlib.Path(path)

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def _evil_file(tmp_path: Path, payload: type, zipped: bool) -> tuple[Path, Path]:
    marker = tmp_path / "pwned.txt"
    path = tmp_path / ("evil.pt" if zipped else "evil_legacy.pt")
    obj = {"state_dict": {"conv1.weight": torch.zeros(2, 3, 1, 1)}, "payload": payload(marker)}
    torch.save(obj, path, _use_new_zipfile_serialization=zipped)
    return path, marker


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize(
    ("payload", "culprit"), [(_OpenForWriting, "io.open"), (_Touch, "builtins.getattr")]
)
def test_code_running_pickle_is_refused_everywhere(
    tmp_path: Path, payload: type, culprit: str, zipped: bool
) -> None:
    path, marker = _evil_file(tmp_path, payload, zipped)
    out = tmp_path / "converted.safetensors"
    calls = [
        lambda: read_weights_file(path),
        lambda: load_weights(create_encoder("resnet18"), path, "resnet18"),
        lambda: inspect_weights(path),
        lambda: convert_weights(path, out, "resnet18"),
    ]
    for call in calls:
        with pytest.raises(WeightsError, match=re.escape(culprit)) as info:
            call()
        assert str(path) in str(info.value)
        assert "trust_pickle" in str(info.value)
    assert not marker.exists()
    assert not out.exists()


def test_trust_pickle_is_explicit_and_loud(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, marker = _evil_file(tmp_path, _OpenForWriting, zipped=True)
    with caplog.at_level(logging.WARNING, logger="medssl.models.safe_load"):
        raw = read_weights_file(path, trust_pickle=True)
    raw.obj["payload"].close()
    assert marker.exists()  # the opt-in really runs the file's code
    assert raw.trusted_globals == ("io.open",)
    assert any("trust_pickle" in r.message and r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_lightning_config_objects_load_without_trust(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, zipped: bool
) -> None:
    hparams = AttributeDict(
        args=argparse.Namespace(lr=0.1, root=pathlib.Path("/data/acdc"), crops=[224, 96]),
        cfg=OmegaConf.create({"backbone": {"name": "resnet18"}, "views": [1, 2], "x": None}),
        counts=collections.defaultdict(list, a=[1]),
        order=collections.OrderedDict(b=2),
    )
    weight = torch.randn(4, 3, 3, 3)
    ckpt = {"state_dict": {"backbone.conv1.weight": weight}, "hyper_parameters": hparams,
            "epoch": 3, "pytorch-lightning_version": "2.6.0"}  # fmt: skip
    path = tmp_path / "last.ckpt"
    torch.save(ckpt, path, _use_new_zipfile_serialization=zipped)
    allowed_before = set(map(str, torch.serialization.get_safe_globals()))
    with caplog.at_level(logging.WARNING):
        raw = read_weights_file(path)
    assert set(map(str, torch.serialization.get_safe_globals())) == allowed_before
    assert torch.equal(raw.obj["state_dict"]["backbone.conv1.weight"], weight)
    assert raw.obj["hyper_parameters"]["cfg"].backbone.name == "resnet18"
    assert raw.obj["hyper_parameters"]["args"].root == pathlib.Path("/data/acdc")
    assert raw.obj["hyper_parameters"]["counts"] == {"a": [1]}  # read as a plain dict
    assert raw.trusted_globals == ()
    assert "argparse.Namespace" in raw.allowed_globals
    assert "omegaconf.dictconfig.DictConfig" in raw.allowed_globals
    assert set(raw.allowed_globals) <= HARMLESS_GLOBALS
    assert not caplog.records


def test_safetensors_is_sniffed_not_guessed_from_suffix(tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    save_file({"a": torch.arange(3.0)}, str(path), metadata={"k": "v"})
    raw = read_weights_file(path)
    assert raw.fmt == "safetensors"
    assert raw.metadata == {"k": "v"}
    assert torch.equal(raw.obj["a"], torch.arange(3.0))


@pytest.mark.parametrize("content", [b"", b"not a weight file at all", b"PK\x03\x04broken"])
def test_unreadable_or_missing_files_raise_weights_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=r"bad\.pt"):
        read_weights_file(path)
    with pytest.raises(WeightsError, match="no such"):
        read_weights_file(tmp_path / "absent.pt")


def _unsafe_torch_loads(tree: ast.AST) -> list[int]:
    """Lines of ``torch.load(...)`` calls without a literal ``weights_only=True``."""
    lines = []
    for node in ast.walk(tree):
        func = getattr(node, "func", None)
        if not (isinstance(node, ast.Call) and isinstance(func, ast.Attribute)):
            continue
        if func.attr == "load" and isinstance(func.value, ast.Name) and func.value.id == "torch":
            safe = any(k.arg == "weights_only" and getattr(k.value, "value", None) is True
                       for k in node.keywords)  # fmt: skip
            lines += [] if safe else [node.lineno]
    return lines


def test_no_torch_load_without_weights_only_in_the_package() -> None:
    assert _unsafe_torch_loads(ast.parse("torch.load(p, map_location='cpu')")) == [1]
    assert _unsafe_torch_loads(ast.parse("torch.load(\n p,\n weights_only=True)")) == []
    offenders = {
        str(file): lines
        for file in SRC.rglob("*.py")
        if (lines := _unsafe_torch_loads(ast.parse(file.read_text())))
    }
    assert not offenders, offenders
