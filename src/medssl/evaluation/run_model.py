"""Load a fine-tuning run's best model and the preprocessing it was trained with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from medssl.configs import FinetuneConfig, resolve_precision
from medssl.data.preprocess import PrepareConfig
from medssl.errors import MedsslError
from medssl.models.safe_load import read_safetensors
from medssl.models.unet import build_unet
from medssl.overrides import load_yaml


@dataclass
class RunModel:
    """A trained segmentation network with what inference needs to know."""

    run_dir: Path
    model: nn.Module
    config: FinetuneConfig
    prepare: PrepareConfig
    label_names: dict[int, str]
    cache: Path
    precision: str

    @property
    def num_classes(self) -> int:
        return max(self.label_names) + 1


def load_run_model(run_dir: str | Path, device: str | None = None) -> RunModel:
    """Build the U-Net of ``run_dir`` and load ``best.safetensors`` strictly.

    Raises:
        MedsslError: when the run directory lacks its config or best weights.
    """
    run_dir = Path(run_dir)
    for name in ("config.yaml", "prepare.json", "best.safetensors"):
        if not (run_dir / name).is_file():
            raise MedsslError(f"{run_dir}: no {name}; is this a finished fine-tuning run?")
    cfg = load_yaml(FinetuneConfig, run_dir / "config.yaml")
    prep = json.loads((run_dir / "prepare.json").read_text())
    labels = {int(k): v for k, v in prep["label_names"].items()}
    model = build_unet(cfg.arch, max(labels) + 1, cfg.decoder_channels)
    state, _ = read_safetensors(run_dir / "best.safetensors")
    model.load_state_dict(state, strict=True)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(dev).eval()
    return RunModel(
        run_dir,
        model,
        cfg,
        PrepareConfig.from_dict(prep["config"]),
        labels,
        Path(prep["cache"]),
        resolve_precision(cfg.runtime),
    )
