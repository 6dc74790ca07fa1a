"""Typed configs of the run kinds, with their presets.

``paper`` reproduces the study's settings; ``cpu-small`` is a reduced recipe that
runs in minutes on a laptop-class CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from medssl.config import ConfigError, apply_overrides
from medssl.models.byol import HeadConfig


@dataclass(frozen=True)
class RuntimeConfig:
    """Hardware and engine settings shared by every run kind.

    Attributes:
        accelerator: Lightning accelerator (``auto``, ``cpu``, ``gpu``).
        devices: devices per node (DDP when more than one device in total).
        num_nodes: nodes (multi-node DDP, e.g. under SLURM).
        precision: ``auto`` (bf16 autocast on GPUs that support it and on CPUs with
            AMX, otherwise fp32), or any Lightning precision string.
        channels_last: use the channels-last memory format.
        num_workers: data-loading worker processes per device.
        augment: ``device``: the training slices are held in memory (on the GPU when
            they fit) and each batch is cropped, resized, flipped and jittered there
            in one batched call, the workers only draw the random parameters;
            ``workers``: every sample is augmented on the CPU in the DataLoader
            workers. Both use the same draws and give the same views (to float
            rounding).
        compile: compile the networks' forward passes with ``torch.compile``
            (``nn.Module.compile``: parameter names and checkpoints are unchanged);
            pays on GPUs for long runs, costs minutes of compilation first.
        cudnn_benchmark: let cuDNN time its convolution algorithms for each new input
            shape and keep the fastest (GPU only; training crops have one shape, but
            whole-slice validation meets many, each timed once).
        seed: global seed (model initialisation, sampling, augmentation).
    """

    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    precision: str = "auto"
    channels_last: bool = True
    num_workers: int = 4
    augment: Literal["device", "workers"] = "device"
    compile: bool = False
    cudnn_benchmark: bool = False
    seed: int = 0


@dataclass(frozen=True)
class PretrainConfig:
    """BYOL pretraining run (defaults: the study's ``paper`` preset).

    Attributes:
        data: prepared cache or source folder.
        out: run directory.
        init: weight source (``random``, ``imagenet`` or a file; see ``medssl weights``).
        init_layout: force the weight file's layout (``None`` detects it).
        trust_pickle: allow unpickling a trusted legacy weight file.
        arch: timm encoder name.
        epochs: passes over the unlabelled pool.
        max_steps: stop after this many steps (``None``: epochs decide).
        batch_size: per-device batch; the learning rate scales with the total batch.
        crop: view size in pixels.
        base_lr: LARS learning rate per 256 samples (solo-learn scaling).
        weight_decay, lars_eta, lars_clip, momentum: LARS settings.
        warmup_epochs: linear warmup length before the cosine decay.
        tau_base, tau_end: target EMA momentum schedule end points.
        heads: projector/predictor sizes.
        ckpt_every_steps: also write the resume checkpoint every N steps (0: epoch ends).
        log_every_steps: metric logging interval.
        max_bad_steps: abort after this many consecutive non-finite losses (each is
            skipped).
        collapse_fraction, collapse_patience: flag representation collapse when the
            online projections' spread stays below ``fraction/√D`` for ``patience`` steps.
        split_seed: seed of a random patient split (non-ACDC ids).
        runtime: hardware settings.
    """

    data: str = ""
    out: str = ""
    init: str = "random"
    init_layout: str | None = None
    trust_pickle: bool = False
    arch: str = "resnet50"
    epochs: int = 25
    max_steps: int | None = None
    batch_size: int = 128
    crop: int = 224
    base_lr: float = 0.5
    weight_decay: float = 1e-5
    lars_eta: float = 0.02
    lars_clip: bool = True
    momentum: float = 0.9
    warmup_epochs: float = 2.0
    tau_base: float = 0.99
    tau_end: float = 1.0
    heads: HeadConfig = field(default_factory=HeadConfig)
    ckpt_every_steps: int = 200
    log_every_steps: int = 10
    max_bad_steps: int = 10
    collapse_fraction: float = 0.1
    collapse_patience: int = 20
    split_seed: int = 0
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


PRETRAIN_PRESETS: dict[str, dict] = {
    "paper": {},
    "cpu-small": {
        "arch": "resnet18",
        "epochs": 2,
        "batch_size": 32,
        "crop": 96,
        "heads": {"proj_hidden": 1024, "proj_out": 128, "pred_hidden": 1024},
        "warmup_epochs": 0.2,
        "ckpt_every_steps": 50,
        "runtime": {"num_workers": 2},
    },
}

PresetName = Literal["paper", "cpu-small"]


def preset(cls: type, presets: dict[str, dict], name: str, overrides: list[str] | None = None):
    """A config of ``cls`` from a named preset, then ``key=value`` overrides."""
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r} (known: {sorted(presets)})")
    return apply_overrides(apply_overrides(cls(), presets[name]), overrides or [])


@dataclass(frozen=True)
class FinetuneConfig:
    """U-Net fine-tuning run (defaults: the study's ``paper`` preset).

    The number of optimisation steps is fixed whatever the label budget (the study:
    150 epochs of the full training set), so small budgets are oversampled.

    Attributes:
        data: prepared cache or source folder.
        out: run directory.
        init: encoder weight source (``random``, ``imagenet``, a file or a pretraining
            run's ``encoder_*.safetensors``).
        init_layout, trust_pickle: see :class:`PretrainConfig`.
        arch: timm encoder name.
        labelled_slices: slice budget (``None`` with ``labelled_patients=None``: all).
        labelled_patients: patient budget (ED and ES of N training patients).
        budget_seed: seed of the label budget (and of the run).
        steps: optimisation steps (same for every budget).
        batch_size: per-device batch.
        crop: training crop side.
        loss: ``jaccard`` (the study), ``dice`` or ``dice_ce``.
        lr: Adam learning rate.
        warmup_steps: linear warmup before the cosine decay.
        grad_clip: gradient-norm clipping.
        freeze_encoder: train the decoder only (linear-probe style).
        freeze_encoder_steps: keep the encoder frozen for the first K steps.
        val_every_steps: validation (learning-curve point) interval.
        ckpt_every_steps: resume checkpoint interval.
        decoder_channels: U-Net decoder widths (smp's default, ≈9M parameters with ResNet-50).
        max_bad_steps: abort after this many consecutive non-finite losses (each is
            skipped).
        split_seed: seed of a random patient split (non-ACDC ids).
        runtime: hardware settings.
    """

    data: str = ""
    out: str = ""
    init: str = "random"
    init_layout: str | None = None
    trust_pickle: bool = False
    arch: str = "resnet50"
    labelled_slices: int | None = None
    labelled_patients: int | None = None
    budget_seed: int = 0
    steps: int = 150 * 1498 // 192
    batch_size: int = 192
    crop: int = 224
    loss: Literal["jaccard", "dice", "dice_ce"] = "jaccard"
    lr: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 5.0
    freeze_encoder: bool = False
    freeze_encoder_steps: int = 0
    val_every_steps: int = 50
    ckpt_every_steps: int = 100
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    max_bad_steps: int = 10
    split_seed: int = 0
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


FINETUNE_PRESETS: dict[str, dict] = {
    "paper": {},
    "cpu-small": {
        "arch": "resnet18",
        "steps": 1500,
        "batch_size": 16,
        "crop": 128,
        "warmup_steps": 50,
        "lr": 1e-3,
        "val_every_steps": 100,
        "ckpt_every_steps": 100,
        "runtime": {"num_workers": 2},
    },
}
