"""Load a fine-tuning run's best model and the preprocessing it was trained with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from medssl.artifacts.labels import LabelSet
from medssl.artifacts.rundir import RunDir
from medssl.configs import FinetuneConfig
from medssl.data.preprocess import PrepareConfig
from medssl.errors import MedsslError
from medssl.hardware import resolve_precision
from medssl.models.safe_load import read_safetensors
from medssl.models.unet import build_unet


@dataclass
class RunModel:
    """A trained segmentation network with what inference needs to know."""

    run_dir: Path
    model: nn.Module
    config: FinetuneConfig
    prepare: PrepareConfig
    label_set: LabelSet
    cache: Path
    precision: str

    @property
    def label_names(self) -> dict[int, str]:
        return dict(self.label_set.names)

    @property
    def num_classes(self) -> int:
        return self.label_set.num_classes


def load_run_model(run_dir: str | Path, device: str | None = None) -> RunModel:
    """Build the U-Net of ``run_dir`` and load ``best.safetensors`` strictly.

    Raises:
        MedsslError: when the run directory lacks its config or best weights.
    """
    run_dir = Path(run_dir)
    run = RunDir(run_dir)
    for path in (run.config_file, run.prepare_file, run.best_weights):
        if not path.is_file():
            raise MedsslError(f"{run_dir}: no {path.name}; is this a finished fine-tuning run?")
    cfg = run.load_config(FinetuneConfig)
    prep = run.load_prepare()
    # the label set recorded at training time (runs before it: their label names)
    labels = (
        LabelSet.from_dict(prep["label_set"])
        if "label_set" in prep
        else LabelSet.from_names(prep["label_names"])
    )
    model = build_unet(cfg.arch, labels.num_classes, cfg.decoder_channels)
    state, _ = read_safetensors(run.best_weights)
    model.load_state_dict(state, strict=True)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(dev).eval()
    if cfg.runtime.channels_last:  # as the run trained: the faster layout for bf16 convolutions
        model.to(memory_format=torch.channels_last)
    return RunModel(
        run_dir,
        model,
        cfg,
        PrepareConfig.from_dict(prep["config"]),
        labels,
        Path(prep["cache"]),
        resolve_precision(cfg.runtime),
    )
