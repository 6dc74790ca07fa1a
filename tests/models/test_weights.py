"""Weight import: every layout lands exactly in a 1-channel timm encoder, loudly.

Every third-party file is built here from a real timm resnet18 state dict whose
tensors (BatchNorm statistics included) are filled with seeded random values, so an
import that took the wrong tensor, or none, cannot pass by accident.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import timm
import torch
from lightning.fabric.utilities.data import AttributeDict
from omegaconf import OmegaConf
from safetensors.torch import save_file

from medssl.errors import WeightsError
from medssl.models.encoders import create_encoder
from medssl.models.weights import (
    convert_weights,
    inspect_weights,
    load_encoder_file,
    load_weights,
    save_encoder,
    weights_fingerprint,
)

ARCH = "resnet18"
SEQUENTIAL = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}


def rgb_resnet18(seed: int) -> dict[str, torch.Tensor]:
    """A torchvision-named resnet18 state dict (with ``fc``), every tensor random."""
    gen = torch.Generator().manual_seed(seed)
    state = timm.create_model(ARCH, num_classes=1000, in_chans=3).state_dict()
    out = {}
    for key, value in state.items():
        if value.is_floating_point():
            out[key] = torch.rand(value.shape, generator=gen) + 0.5
        else:
            out[key] = torch.full_like(value, seed)
    return out


def encoder_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def assert_imported(model: torch.nn.Module, source: dict[str, torch.Tensor]) -> None:
    """Every model tensor equals the source; the first conv equals the RGB sum."""
    for key, value in model.state_dict().items():
        want = source[key]
        if key == "conv1.weight" and want.shape[1] == 3 and value.shape[1] == 1:
            want = want.sum(dim=1, keepdim=True)
        assert torch.equal(value, want), key


# --- file builders: (tmp_path, A, B) -> file; A is the tensor set that must be imported


def _timm(tmp: Path, a: dict, b: dict) -> Path:
    torch.save(encoder_only(a), tmp / "timm_resnet18.pth")
    return tmp / "timm_resnet18.pth"


def _torchvision(tmp: Path, a: dict, b: dict) -> Path:
    torch.save(a, tmp / "resnet18-f37072fd.pth")
    return tmp / "resnet18-f37072fd.pth"


def _wrapped(tmp: Path, a: dict, b: dict) -> Path:
    torch.save({"model": {f"module.{k}": v for k, v in a.items()}, "epoch": 90}, tmp / "w.pth")
    return tmp / "w.pth"


def _byol(tmp: Path, a: dict, b: dict, online: bool = False) -> Path:
    target, other = (b, a) if online else (a, b)
    online_branch = {
        f"module.encoder.{SEQUENTIAL[k.split('.')[0]]}.{k.split('.', 1)[1]}": v
        for k, v in encoder_only(other).items()
    }
    obj = {
        "online_backbone": online_branch,
        "target_backbone": {f"module.{k}": v for k, v in encoder_only(target).items()},
        "online_head": {"module.net.0.weight": torch.zeros(4, 512)},
        "epoch": 300,
    }
    torch.save(obj, tmp / "resnet18_byol_imagenet2012.pth.tar")
    return tmp / "resnet18_byol_imagenet2012.pth.tar"


def _byol_online(tmp: Path, a: dict, b: dict) -> Path:
    return _byol(tmp, a, b, online=True)


def _solo(tmp: Path, a: dict, b: dict, online: bool = False) -> Path:
    momentum, backbone = (b, a) if online else (a, b)
    state = {f"backbone.{k}": v for k, v in encoder_only(backbone).items()}
    state |= {f"momentum_backbone.{k}": v for k, v in encoder_only(momentum).items()}
    state |= {"projector.0.weight": torch.zeros(8, 512), "predictor.0.weight": torch.zeros(8, 8),
              "momentum_projector.0.weight": torch.zeros(8, 512),
              "classifier.weight": torch.zeros(10, 512)}  # fmt: skip
    cfg = OmegaConf.create({"backbone": {"name": ARCH}, "method": "byol", "data": {"root": None}})
    obj = {"state_dict": state, "hyper_parameters": {"cfg": cfg}, "epoch": 399,
           "global_step": 10, "pytorch-lightning_version": "2.6.0"}  # fmt: skip
    torch.save(obj, tmp / "byol-ep399.ckpt")
    return tmp / "byol-ep399.ckpt"


def _solo_online(tmp: Path, a: dict, b: dict) -> Path:
    return _solo(tmp, a, b, online=True)


def _lightning(tmp: Path, a: dict, b: dict) -> Path:
    state = {f"model.encoder.{k}": v for k, v in encoder_only(a).items()}
    state["model.decoder.head.weight"] = torch.zeros(4, 16, 1, 1)
    hparams = AttributeDict(
        args=argparse.Namespace(lr=0.01, root=Path("/data/acdc")),
        cfg=OmegaConf.create({"arch": ARCH, "crops": [224, 96], "extra": {"x": 1.5}}),
    )
    obj = {"state_dict": state, "hyper_parameters": hparams, "epoch": 5,
           "pytorch-lightning_version": "2.6.0", "optimizer_states": [{}]}  # fmt: skip
    torch.save(obj, tmp / "epoch=5.ckpt")
    return tmp / "epoch=5.ckpt"


def _medssl(tmp: Path, a: dict, b: dict) -> Path:
    model = create_encoder(ARCH, in_chans=3)
    model.load_state_dict(encoder_only(a))
    return save_encoder(model, tmp / "encoder.safetensors", ARCH)


def _safetensors(tmp: Path, a: dict, b: dict) -> Path:
    save_file({f"backbone.{k}": v for k, v in a.items()}, str(tmp / "model.safetensors"))
    return tmp / "model.safetensors"


CASES: dict[str, tuple[Callable[..., Path], str, str | None]] = {
    # name: (builder, detected layout, layout to force or None)
    "timm": (_timm, "timm", None),
    "torchvision": (_torchvision, "torchvision", None),
    "wrapped-module": (_wrapped, "torchvision", None),
    "byol-target": (_byol, "byol-pytorch", None),
    "byol-online": (_byol_online, "byol-pytorch", "byol-pytorch-online"),
    "solo-momentum": (_solo, "solo-learn", None),
    "solo-backbone": (_solo_online, "solo-learn", "solo-learn-online"),
    "lightning": (_lightning, "lightning", None),
    "medssl": (_medssl, "medssl", None),
    "safetensors": (_safetensors, "torchvision", None),
}


@pytest.fixture(scope="module")
def states() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    return rgb_resnet18(1), rgb_resnet18(2)


@pytest.mark.parametrize("case", list(CASES))
def test_every_layout_imports_exactly(
    case: str, states: tuple[dict, dict], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build, detected, forced = CASES[case]
    a, b = states
    path = build(tmp_path, a, b)
    assert inspect_weights(path).layout == detected
    model = create_encoder(ARCH)
    with caplog.at_level(logging.INFO, logger="medssl.models.weights"):
        report = load_weights(model, path, ARCH, layout=forced)
    assert report.layout == (forced or detected)
    assert (report.matched, report.missing, report.unexpected) == (report.expected, (), ())
    assert report.adapted_first_conv
    assert_imported(model, a)
    assert any(r.levelno == logging.INFO and "matched" in r.message for r in caplog.records)


def test_byol_online_names_map_by_name(states: tuple[dict, dict], tmp_path: Path) -> None:
    a, b = states
    path = _byol_online(tmp_path, a, b)
    model = create_encoder(ARCH)
    load_weights(model, path, ARCH, layout="byol-pytorch-online")
    online = torch.load(path, weights_only=True)["online_backbone"]
    assert torch.equal(model.layer1[0].conv1.weight, online["module.encoder.4.0.conv1.weight"])
    var = online["module.encoder.7.1.bn2.running_var"]
    assert torch.equal(model.layer4[1].bn2.running_var, var)


def test_solo_learn_report_counts_what_it_ignored(
    states: tuple[dict, dict], tmp_path: Path
) -> None:
    report = load_weights(create_encoder(ARCH), _solo(tmp_path, *states), ARCH)
    names = set(report.ignored)
    assert {"projector.0.weight", "predictor.0.weight", "classifier.weight"} <= names
    assert "backbone.conv1.weight" in names  # the other branch is reported, not used
    assert "momentum_backbone.conv1.weight" not in names
    assert f"{len(report.ignored)} ignored" in report.summary()


def test_classifier_is_dropped_and_reported(states: tuple[dict, dict], tmp_path: Path) -> None:
    report = load_weights(create_encoder(ARCH), _torchvision(tmp_path, *states), ARCH)
    assert set(report.ignored) == {"fc.weight", "fc.bias"}


def test_random_leaves_the_model_untouched() -> None:
    model = create_encoder(ARCH)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_weights(model, "random", ARCH)
    assert report.layout == "random" and report.matched == 0
    assert "random" in report.summary()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_too_little_matched_raises(states: tuple[dict, dict], tmp_path: Path) -> None:
    partial = {k: v for k, v in states[0].items() if k.startswith(("conv1", "bn1", "layer1"))}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match="too little matched"):
        load_weights(create_encoder(ARCH), tmp_path / "partial.pth", ARCH)
    torch.save({"unrelated.weight": torch.zeros(3)}, tmp_path / "none.pth")
    with pytest.raises(WeightsError, match="too little matched"):
        load_weights(create_encoder(ARCH), tmp_path / "none.pth", ARCH, min_match=0.0)


def test_bigger_source_is_not_silently_truncated(tmp_path: Path) -> None:
    torch.save(timm.create_model("resnet34", num_classes=0).state_dict(), tmp_path / "r34.pth")
    with pytest.raises(WeightsError, match="too little matched"):
        load_weights(create_encoder(ARCH), tmp_path / "r34.pth", ARCH)


@pytest.mark.parametrize(
    ("key", "shape"), [("layer2.0.conv1.weight", (128, 64, 1, 1)), ("conv1.weight", (64, 2, 7, 7))]
)
def test_shape_mismatch_raises(
    states: tuple[dict, dict], tmp_path: Path, key: str, shape: tuple[int, ...]
) -> None:
    bad = dict(states[0], **{key: torch.zeros(shape)})
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match=f"shape mismatch.*{key}"):
        load_weights(create_encoder(ARCH), tmp_path / "bad.pth", ARCH)


def test_forced_layout_must_fit(states: tuple[dict, dict], tmp_path: Path) -> None:
    path = _torchvision(tmp_path, *states)
    with pytest.raises(WeightsError, match="target_backbone"):
        load_weights(create_encoder(ARCH), path, ARCH, layout="byol-pytorch")
    with pytest.raises(WeightsError, match="unknown layout"):
        load_weights(create_encoder(ARCH), path, ARCH, layout="caffe")


def test_imagenet_offline_fails_fast_with_advice(tmp_path: Path) -> None:
    code = (
        "from medssl.models.encoders import create_encoder\n"
        "from medssl.models.weights import load_weights\n"
        "from medssl.errors import WeightsError\n"
        "try:\n"
        f"    load_weights(create_encoder('{ARCH}'), 'imagenet', '{ARCH}')\n"
        "except WeightsError as exc:\n"
        "    print('WeightsError:', exc)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path), TORCH_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    message = done.stdout
    assert message.startswith("WeightsError: imagenet:"), done.stdout + done.stderr
    assert "offline" in message and "path" in message and ARCH in message


def test_convert_round_trip_loads_strictly(states: tuple[dict, dict], tmp_path: Path) -> None:
    out = tmp_path / "out" / "r18.safetensors"
    report = convert_weights(_byol(tmp_path, *states), out, ARCH)
    assert report.layout == "byol-pytorch" and report.fraction == 1.0
    state, meta = load_encoder_file(out)
    assert meta == {"format": "medssl-encoder", "arch": ARCH, "in_chans": "1"}
    model = timm.create_model(ARCH, num_classes=0, in_chans=1)
    model.load_state_dict(state, strict=True)
    assert_imported(model, states[0])
    again = create_encoder(ARCH)
    assert load_weights(again, out, ARCH).layout == "medssl"
    assert_imported(again, states[0])


def test_convert_keeps_three_channels_when_asked(states: tuple[dict, dict], tmp_path: Path) -> None:
    out = tmp_path / "rgb.safetensors"
    report = convert_weights(_timm(tmp_path, *states), out, ARCH, in_chans=3)
    assert not report.adapted_first_conv
    state, meta = load_encoder_file(out)
    assert meta["in_chans"] == "3"
    assert torch.equal(state["conv1.weight"], states[0]["conv1.weight"])


def test_load_encoder_file_rejects_other_safetensors(tmp_path: Path) -> None:
    save_file({"a": torch.zeros(1)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(WeightsError, match="not a medssl encoder"):
        load_encoder_file(tmp_path / "x.safetensors")


@pytest.mark.parametrize("case", ["torchvision", "byol-target", "solo-momentum", "lightning"])
def test_inspect_describes_the_file(case: str, states: tuple[dict, dict], tmp_path: Path) -> None:
    build, detected, _ = CASES[case]
    info = inspect_weights(build(tmp_path, *states))
    assert info.layout == detected
    assert info.arch_guess == ARCH
    assert info.first_conv_channels == 3
    branch = encoder_only(states[0])
    assert info.num_tensors >= len(branch)
    assert info.num_parameters >= sum(p.numel() for p in create_encoder(ARCH, 3).parameters())
    assert info.prefixes


def test_inspect_medssl_file_reads_metadata(states: tuple[dict, dict], tmp_path: Path) -> None:
    info = inspect_weights(_medssl(tmp_path, *states))
    assert (info.layout, info.arch_guess, info.first_conv_channels) == ("medssl", ARCH, 3)
    assert info.metadata["format"] == "medssl-encoder"


def test_two_equal_branches_are_reported(
    states: tuple[dict, dict], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = states
    state = {f"net.online.{k}": v for k, v in encoder_only(a).items()}
    state |= {f"net.target.{k}": v for k, v in encoder_only(b).items()}
    torch.save({"state_dict": state, "pytorch-lightning_version": "2.6.0"}, tmp_path / "x.ckpt")
    with caplog.at_level(logging.WARNING, logger="medssl.models.weights"):
        report = load_weights(create_encoder(ARCH), tmp_path / "x.ckpt", ARCH)
    assert report.layout == "lightning"
    assert any("match the model equally" in r.message for r in caplog.records)
    assert len(report.ignored) == len(encoder_only(b))


def test_fingerprint_names_the_weights_not_the_file(
    states: tuple[dict, dict], tmp_path: Path
) -> None:
    """The same tensors in two layouts share a fingerprint, which is that of the loaded
    model; other tensors (or one changed value) give another; random init gives none."""
    a, b = states
    first = load_weights(create_encoder(ARCH), _timm(tmp_path, a, b), ARCH)
    (tmp_path / "other").mkdir()
    model = create_encoder(ARCH)
    second = load_weights(model, _torchvision(tmp_path / "other", a, b), ARCH)
    assert len(first.fingerprint) == 16 and first.fingerprint == second.fingerprint
    assert first.fingerprint == weights_fingerprint(model.state_dict())
    changed = {k: v.clone() for k, v in model.state_dict().items()}
    changed["layer4.1.bn2.bias"][0] += 1e-3
    assert weights_fingerprint(changed) != first.fingerprint
    swapped = load_weights(create_encoder(ARCH), _timm(tmp_path / "other", b, a), ARCH)
    assert swapped.fingerprint != first.fingerprint
    assert load_weights(create_encoder(ARCH), "random", ARCH).fingerprint == ""
