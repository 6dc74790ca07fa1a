"""Weight-file layouts: detect which one a file has, and map its tensor names to timm's.

==========================  ====================================================
``medssl``                  safetensors written by :func:`~medssl.models.safe_load.save_encoder`
``byol-pytorch``            BYOL-PyTorch release (``target_backbone``, ``module.``)
``byol-pytorch-online``     same file, ``online_backbone`` (``encoder.N`` names)
``solo-learn``              solo-learn ``.ckpt``, ``momentum_backbone.`` tensors
``solo-learn-online``       same file, ``backbone.`` tensors
``lightning``               any Lightning ``.ckpt`` (``state_dict`` + prefix)
``torchvision``             torchvision ResNet state dict (``conv1``..``fc``)
``timm``                    timm or generic state dict, safetensors or torch
==========================  ====================================================

Names are mapped by name, never by position. A leading prefix (``module.``,
``model.``, ``encoder.``, ``backbone.`` or any other) is found by trying every
leading path of up to three components and keeping the one that matches most of
the model's tensors (:func:`best_prefix`). ResNet files are also recognised by their
names alone (:func:`resnet_prefix`, :func:`guess_resnet`). The importer that uses all
this is :func:`medssl.models.weights.load_weights`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from medssl.errors import WeightsError
from medssl.models.safe_load import ENCODER_FORMAT, RawWeights

LAYOUTS = (
    "timm",
    "torchvision",
    "byol-pytorch",
    "byol-pytorch-online",
    "solo-learn",
    "solo-learn-online",
    "medssl",
    "lightning",
)
BYOL_SEQUENTIAL = {
    "0": "conv1",
    "1": "bn1",
    "4": "layer1",
    "5": "layer2",
    "6": "layer3",
    "7": "layer4",
    "9": "fc",
}
"""torchvision ResNet children as numbered by ``nn.Sequential(*resnet.children())``."""

_BRANCH_KEY = {
    "byol-pytorch": "target_backbone",
    "byol-pytorch-online": "online_backbone",
    "solo-learn": "momentum_backbone.",
    "solo-learn-online": "backbone.",
}
_WRAPPERS = ("state_dict", "model", "model_state_dict", "module")
_LIGHTNING_KEYS = ("hyper_parameters", "pytorch-lightning_version", "optimizer_states", "loops")
_RESNETS = {
    ((2, 2, 2, 2), False): "resnet18",
    ((3, 4, 6, 3), False): "resnet34",
    ((3, 4, 6, 3), True): "resnet50",
    ((3, 4, 23, 3), True): "resnet101",
    ((3, 8, 36, 3), True): "resnet152",
}


def detect_layout(raw: RawWeights) -> str:
    """The layout of a file read by :func:`~medssl.models.safe_load.read_weights_file`."""
    obj = raw.obj
    if raw.metadata.get("format") == ENCODER_FORMAT:
        return "medssl"
    if not isinstance(obj, Mapping):
        raise WeightsError(raw.path, f"holds a {type(obj).__name__}, not a dict of tensors")
    if "target_backbone" in obj:
        return "byol-pytorch"
    if "online_backbone" in obj:
        return "byol-pytorch-online"
    inner = obj.get("state_dict")
    if isinstance(inner, Mapping) and any(str(k).startswith("momentum_backbone.") for k in inner):
        return "solo-learn"
    if isinstance(inner, Mapping) and any(k in obj for k in _LIGHTNING_KEYS):
        return "lightning"
    flat = state_of(raw, "timm")
    prefix = resnet_prefix(flat)
    return "torchvision" if prefix is not None and f"{prefix}fc.weight" in flat else "timm"


def resolve_layout(raw: RawWeights, layout: str | None) -> str:
    """``layout`` checked against :data:`LAYOUTS`, or the detected one when ``None``."""
    if layout is None:
        return detect_layout(raw)
    if layout not in LAYOUTS:
        raise WeightsError(raw.path, f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    return layout


def state_of(raw: RawWeights, layout: str) -> Mapping[str, Any]:
    """The (unmapped) state dict a layout reads from the file."""
    obj = raw.obj
    key = _BRANCH_KEY.get(layout, "")
    if layout.startswith("byol"):
        if not isinstance(obj, Mapping) or not isinstance(obj.get(key), Mapping):
            keys = list(obj)[:10] if isinstance(obj, Mapping) else type(obj).__name__
            raise WeightsError(raw.path, f"layout {layout} needs a {key!r} dict; found {keys}")
        return obj[key]
    while isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        inner = next((obj[w] for w in _WRAPPERS if isinstance(obj.get(w), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        tried = ", ".join(_WRAPPERS)
        raise WeightsError(raw.path, f"found no dict of tensors (tried keys {tried})")
    return obj


def extract_tensors(
    raw: RawWeights, layout: str
) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Tensors the layout reads, with layout names mapped, and the names it leaves out."""
    if layout == "medssl" and raw.metadata.get("format") != ENCODER_FORMAT:
        raise WeightsError(raw.path, "layout medssl needs a file written by save_encoder")
    state = state_of(raw, layout)
    named = {str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if layout.startswith("byol"):
        other = [
            f"{k}.{n}"
            for k, v in raw.obj.items()
            if k != _BRANCH_KEY[layout] and isinstance(v, Mapping)
            for n, t in v.items()
            if isinstance(t, torch.Tensor)
        ]
        return {_byol_name(k): v for k, v in named.items()}, tuple(other)
    if layout.startswith("solo-learn"):
        head = _BRANCH_KEY[layout]
        taken = {k[len(head) :]: v for k, v in named.items() if k.startswith(head)}
        if not taken:
            raise WeightsError(raw.path, f"layout {layout} found no tensors named {head}*")
        return taken, tuple(k for k in named if not k.startswith(head))
    return named, ()


def _byol_name(name: str) -> str:
    """``module.encoder.4.0.conv1.weight`` -> ``layer1.0.conv1.weight`` (by name)."""
    name = name.removeprefix("module.")
    parts = name.split(".")
    if len(parts) > 2 and parts[0] == "encoder" and parts[1] in BYOL_SEQUENTIAL:
        return ".".join([BYOL_SEQUENTIAL[parts[1]], *parts[2:]])
    return name


def best_prefix(names: Iterable[str], target: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The leading path (up to three components) whose removal matches most model names.

    Returns:
        The prefix (the shortest among equals) and the other prefixes that match as many.
    """
    votes: Counter[str] = Counter()
    for name in names:
        parts = name.split(".")
        for depth in range(min(3, len(parts) - 1) + 1):
            if ".".join(parts[depth:]) in target:
                votes[".".join(parts[:depth]) + "." if depth else ""] += 1
    if not votes:
        return "", []
    best = max(votes, key=lambda p: (votes[p], -len(p)))
    return best, [p for p in votes if p != best and votes[p] == votes[best]]


def resnet_prefix(tensors: Mapping[str, Any]) -> str | None:
    """The prefix before torchvision-style ResNet names (``conv1``, ``layer1.0.conv1``)."""
    tail = "layer1.0.conv1.weight"
    for name in tensors:
        if str(name).endswith(tail) and f"{str(name)[: -len(tail)]}conv1.weight" in tensors:
            return str(name)[: -len(tail)]
    return None


def guess_resnet(tensors: Mapping[str, torch.Tensor], prefix: str | None) -> str | None:
    """resnet18..152 from blocks per stage, block type and width (None for other nets)."""
    if prefix is None or tensors[f"{prefix}layer1.0.conv1.weight"].shape[0] != 64:
        return None
    blocks = tuple(
        len({k[len(prefix) :].split(".")[1] for k in tensors if k.startswith(f"{prefix}layer{i}.")})
        for i in range(1, 5)
    )
    return _RESNETS.get((blocks, f"{prefix}layer1.0.conv3.weight" in tensors))


def first_conv_channels(tensors: Mapping[str, torch.Tensor], prefix: str | None) -> int | None:
    """Input channels of the first convolution (ResNet ``conv1``, else the first 4D tensor)."""
    if prefix is not None:
        return int(tensors[f"{prefix}conv1.weight"].shape[1])
    convs = [t for t in tensors.values() if t.ndim == 4]
    return int(convs[0].shape[1]) if convs else None
