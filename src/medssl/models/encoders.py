"""timm CNN encoders with single-channel input.

The encoder is a plain timm model without classifier (``num_classes=0``), so an
encoder file loads with ``strict=True`` into
``timm.create_model(arch, num_classes=0, in_chans=1)``; its pooled output feeds the
BYOL heads and its ``features_only`` twin feeds the U-Net.

Single-channel input follows timm's ``adapt_input_conv``: an RGB first convolution
is turned into a 1-channel one by summing its weights over the input channels, so an
ImageNet model sees a grey image exactly as it would see that grey replicated to RGB.
The first convolution is found through the model's declared ``first_conv``, never by
a hard-coded name.
"""

from __future__ import annotations

import timm
import torch
from timm.models import adapt_input_conv
from torch import nn

DEFAULT_ARCH = "resnet50"


def create_encoder(arch: str = DEFAULT_ARCH, in_chans: int = 1) -> nn.Module:
    """A randomly initialised timm encoder without classifier.

    Args:
        arch: any timm CNN name that supports ``features_only`` (e.g. ``resnet18/34/50/101``).
        in_chans: input channels (1 for MRI).

    Raises:
        ValueError: for an unknown architecture.
    """
    if arch not in timm.list_models():
        raise ValueError(f"unknown timm architecture {arch!r}")
    return timm.create_model(arch, pretrained=False, num_classes=0, in_chans=in_chans)


def encoder_dim(model: nn.Module) -> int:
    """Width of the pooled feature vector (``num_features``)."""
    return int(model.num_features)


def first_conv_name(model_or_arch: nn.Module | str) -> str:
    """Name of the first convolution declared in the model's ``pretrained_cfg``."""
    model = create_encoder(model_or_arch) if isinstance(model_or_arch, str) else model_or_arch
    cfg = getattr(model, "pretrained_cfg", None) or {}
    name = cfg.get("first_conv")
    if isinstance(name, (list, tuple)):
        name = name[0]
    if not name:
        raise ValueError(f"{type(model).__name__} declares no first_conv")
    return str(name)


def adapt_first_conv(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Convert the first-conv weight in ``state`` to the model's input channels.

    Returns a new dict; other tensors are shared, not copied. A weight that already
    has the right number of channels is left as it is.
    """
    key = first_conv_name(model) + ".weight"
    target = model.state_dict().get(key)
    if key not in state or target is None or state[key].shape[1] == target.shape[1]:
        return dict(state)
    out = dict(state)
    out[key] = adapt_input_conv(int(target.shape[1]), state[key].float()).to(state[key].dtype)
    return out
