"""The method registry: lightly's values through medssl's modules, the hand-written
objective against a hand computation, training lowers every method's loss, and every
method's run exports weights that load into the U-Net with every key matched."""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from lightly.loss import BarlowTwinsLoss, NTXentLoss, VICRegLoss
from lightly.models.utils import select_most_similar
from safetensors.torch import load_file

from medssl.configs import METHODS, ObjectiveConfig, PretrainConfig, pretrain_preset
from medssl.data.cache_read import SliceCache
from medssl.data.datasets import TwoViews
from medssl.data.splits import split_for_cache, unlabelled_pool
from medssl.models.unet import build_unet, encoder_of
from medssl.models.weights import load_decoder, load_weights
from medssl.overrides import ConfigError
from medssl.training.methods import IMPLEMENTATIONS, StepContext, build_method
from medssl.training.methods.dense import dense_forward
from medssl.training.methods.masked import masked_reconstruction_loss, patch_mask, patchify
from medssl.training.methods.redundancy import teacher_temperature
from medssl.training.pretrain import build_pretrain_module, pretrain
from tests.conftest import TINY_METHOD, TINY_PRETRAIN, tiny_method_config

CTX = StepContext(step=3, schedule_steps=100, steps_per_epoch=10)


def _cfg(method: str, *extra: str) -> PretrainConfig:
    return pretrain_preset("paper", method, [*TINY_PRETRAIN, *TINY_METHOD, *extra])


def _method(name: str, *extra: str):
    torch.manual_seed(0)
    method, _ = build_method(_cfg(name, *extra), lambda encoder: None)
    return method


def _views(batch: int = 8, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(batch, 1, size, size, generator=gen), torch.randn(
        batch, 1, size, size, generator=gen
    )


def test_registry_matches_catalogue_and_presets_carry_recipes() -> None:
    assert set(IMPLEMENTATIONS) == set(METHODS)
    assert {"byol", "simclr", "mocov2", "vicreg", "barlowtwins", "dino", "densecl", "mim"} <= set(
        METHODS
    )
    # BYOL's presets are the study's: the method adds nothing
    assert pretrain_preset("paper") == pretrain_preset("paper", "byol")
    simclr = pretrain_preset("paper", "simclr")
    assert (simclr.method, simclr.heads.proj_hidden, simclr.heads.proj_out) == ("simclr", 4096, 512)
    assert (simclr.base_lr, simclr.weight_decay, simclr.objective.temperature) == (0.3, 1e-4, 0.2)
    moco = pretrain_preset("paper", "mocov2")
    assert (moco.optimizer, moco.tau_end, moco.objective.queue_size) == ("sgd", 0.999, 65536)
    small = pretrain_preset("cpu-small", "mocov2")
    assert (small.arch, small.objective.queue_size) == ("resnet18", 4096)
    assert pretrain_preset("paper", "mim").optimizer == "adamw"
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        pretrain_preset("paper", "nope")
    with pytest.raises(ConfigError, match="unknown method"):
        dataclasses.replace(PretrainConfig(), method="swav")


# --- lightly's values through medssl's modules --------------------------------------
def test_simclr_is_lightlys_ntxent_on_its_projections() -> None:
    m = _method("simclr")
    v1, v2 = _views()
    z1, z2 = m.projector(m.backbone(v1)), m.projector(m.backbone(v2))
    expected = NTXentLoss(temperature=0.2)(z1, z2)
    assert torch.allclose(m.step(v1, v2, CTX).loss, expected, atol=1e-6)


def test_mocov2_is_lightlys_queue_loss_symmetrised() -> None:
    m = _method("mocov2")
    v1, v2 = _views()
    bank_before = m.criterion.memory_bank.bank.clone()
    crit = copy.deepcopy(m.criterion)
    q1, q2 = m.projector(m.backbone(v1)), m.projector(m.backbone(v2))
    k1 = m.target_projector(m.target_backbone(v1)).detach()
    k2 = m.target_projector(m.target_backbone(v2)).detach()
    expected = 0.5 * (crit(q1, k2) + crit(q2, k1))
    assert torch.allclose(m.step(v1, v2, CTX).loss, expected, atol=1e-6)
    # the keys went into the queue (16 slots, two batches of 8: all replaced)
    assert not torch.equal(m.criterion.memory_bank.bank, bank_before)


@pytest.mark.parametrize(
    ("name", "loss"),
    [
        ("vicreg", lambda: VICRegLoss(25.0, 25.0, 1.0)),
        ("barlowtwins", lambda: _scaled(0.048, BarlowTwinsLoss(0.0051))),
    ],
)
def test_redundancy_losses_are_lightlys(name: str, loss) -> None:
    m = _method(name)
    v1, v2 = _views()
    z1, z2 = m.projector(m.backbone(v1)), m.projector(m.backbone(v2))
    assert torch.allclose(m.step(v1, v2, CTX).loss, loss()(z1, z2), rtol=1e-5, atol=1e-5)


def _scaled(scale: float, loss):
    return lambda a, b: scale * loss(a, b)


def test_dino_is_lightlys_loss_at_the_scheduled_teacher_temperature() -> None:
    m = _method("dino")
    v1, v2 = _views()
    # the teacher starts as a copy of the student (the weight-normalised layer too)
    teacher, student = m.teacher_head.state_dict(), m.head.state_dict()
    assert teacher.keys() == student.keys()
    assert all(torch.equal(teacher[k], student[k]) for k in teacher)
    crit = copy.deepcopy(m.criterion)
    t1 = m.teacher_head(m.teacher_backbone(v1)).detach()
    t2 = m.teacher_head(m.teacher_backbone(v2)).detach()
    s1, s2 = m.head(m.backbone(v1)), m.head(m.backbone(v2))
    temp = teacher_temperature(m.obj, CTX.epoch)
    expected = crit([t1, t2], [s1, s2], teacher_temp=temp)
    out = m.step(v1, v2, CTX)
    assert torch.allclose(out.loss, expected, atol=1e-6)
    assert float(out.logs["teacher_temp"]) == pytest.approx(temp)


def test_teacher_temperature_schedule_is_linear_then_constant() -> None:
    obj = ObjectiveConfig(
        dino_warmup_teacher_temp=0.04, dino_teacher_temp=0.07, dino_warmup_teacher_temp_epochs=10
    )
    assert teacher_temperature(obj, 0.0) == pytest.approx(0.04)
    assert teacher_temperature(obj, 5.0) == pytest.approx(0.055)
    assert teacher_temperature(obj, 10.0) == teacher_temperature(obj, 99.0) == 0.07


def test_densecl_is_lightlys_global_and_dense_losses() -> None:
    m = _method("densecl", "crop=64")
    v1, v2 = _views(size=64)
    g_crit, l_crit = copy.deepcopy(m.global_loss), copy.deepcopy(m.local_loss)
    qf, qg, ql = dense_forward(m.backbone, m.global_head, m.local_head, v1)
    with torch.no_grad():
        kf, kg, kl = dense_forward(m.target_backbone, m.target_global_head, m.target_local_head, v2)
        kl = select_most_similar(qf, kf, kl)
    assert qf.shape[1] == 4  # a 2x2 feature map: four locations per view
    expected = 0.5 * g_crit(qg, kg) + 0.5 * l_crit(ql.flatten(end_dim=1), kl.flatten(end_dim=1))
    out = m.step(v1, v2, CTX)
    assert torch.allclose(out.loss, expected, atol=1e-6)
    assert set(out.logs) == {"loss_global", "loss_dense"}


# --- the hand-written objective -----------------------------------------------------
def test_patch_mask_masks_the_ratio_of_every_sample() -> None:
    mask = patch_mask(5, (4, 4), 0.6, torch.Generator().manual_seed(0))
    assert mask.shape == (5, 4, 4) and mask.dtype == torch.bool
    assert mask.flatten(1).sum(1).tolist() == [10] * 5  # round(0.6 · 16)
    assert not torch.equal(mask[0], mask[1])  # drawn per sample


def test_masked_reconstruction_loss_matches_a_hand_computation() -> None:
    rng = np.random.default_rng(0)
    target = rng.normal(size=(1, 1, 4, 4)).astype(np.float32)
    pred = rng.normal(size=(1, 1, 4, 4)).astype(np.float32)
    mask = np.array([[[True, False], [False, True]]])  # patches (0,0) and (1,1) masked
    for norm_pix in (False, True):
        errors = []
        for i, j in [(0, 0), (1, 1)]:
            t = target[0, 0, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].ravel()
            p = pred[0, 0, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].ravel()
            if norm_pix:
                t = (t - t.mean()) / np.sqrt(t.var(ddof=1) + 1e-6)
            errors.append(((p - t) ** 2).mean())
        got = masked_reconstruction_loss(
            torch.from_numpy(pred), torch.from_numpy(target), torch.from_numpy(mask), 2, norm_pix
        )
        assert float(got) == pytest.approx(float(np.mean(errors)), rel=1e-5)


def test_patchify_orders_patches_row_major() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    patches = patchify(x, 2)
    assert patches.shape == (1, 4, 4)
    assert patches[0, 1].tolist() == [2.0, 3.0, 6.0, 7.0]


def test_mim_masks_depend_on_seed_and_step_only() -> None:
    m = _method("mim")
    x = torch.zeros(4, 1, 32, 32)
    a, b = m.masks(x, CTX), m.masks(x, CTX)
    assert torch.equal(a, b)
    assert not torch.equal(a, m.masks(x, dataclasses.replace(CTX, step=4)))
    assert not torch.equal(a, m.masks(x, dataclasses.replace(CTX, rank=1)))


# --- training lowers every method's loss --------------------------------------------
@pytest.mark.parametrize("name", list(METHODS))
def test_training_on_phantom_views_lowers_the_loss(name: str, tiny_cache: Path) -> None:
    """30 Adam steps on one batch of 16 augmented phantom view pairs."""
    cache = SliceCache.open(tiny_cache)
    m = _method(name)
    views = TwoViews(
        cache,
        list(range(0, len(cache), 3))[:16],
        dataclasses.replace(_cfg(name).views, size=32),
        seed=0,
    )
    items = [views[i] for i in range(16)]
    v1 = torch.stack([torch.as_tensor(it["view1"]) for it in items])
    v2 = torch.stack([torch.as_tensor(it["view2"]) for it in items])
    opt = torch.optim.Adam(m.online_parameters().parameters(), lr=1e-3)
    losses = []
    for step in range(30):
        out = m.step(v1, v2, dataclasses.replace(CTX, step=step))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        m.update_target(0.99)
        losses.append(float(out.loss.detach()))
    assert all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses


# --- runs of every method export weights that load with every key matched -----------
@pytest.mark.parametrize("name", [m for m in METHODS if m != "byol"])
def test_each_method_runs_and_exports_loadable_weights(
    name: str, tiny_cache: Path, tmp_path: Path
) -> None:
    run = tmp_path / name
    result = pretrain(tiny_method_config(tiny_cache, run, name, "epochs=1"), progress=False)
    assert json.loads((run / "result.json").read_text())["method"] == name
    with (run / "logs" / "metrics.csv").open() as fh:
        losses = [float(r["loss"]) for r in csv.DictReader(fh) if r.get("loss")]
    assert losses and all(np.isfinite(losses))
    # the encoder: timm's strict load, and the U-Net encoder through the weight importer
    state = load_file(run / "encoder_last.safetensors")
    timm.create_model("resnet18", num_classes=0, in_chans=1).load_state_dict(state, strict=True)
    unet = build_unet("resnet18", 4, (32, 16, 16, 8, 8))
    report = load_weights(encoder_of(unet), str(run / "encoder_last.safetensors"), "resnet18")
    assert report.matched == report.expected and not report.missing and not report.unexpected
    assert [p.name for p in result.encoders] == [
        "encoder_epoch_000.safetensors",
        "encoder_epoch_001.safetensors",
    ]
    trained = load_file(run / "encoder_epoch_001.safetensors")
    first = load_file(run / "encoder_epoch_000.safetensors")
    assert not torch.equal(first["layer1.0.conv1.weight"], trained["layer1.0.conv1.weight"])
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    queues = ckpt["medssl"]["method_buffers"]
    assert bool(queues) == (name in ("mocov2", "densecl"))  # the queues travel with resume
    decoder = run / "decoder_last.safetensors"
    assert decoder.exists() == METHODS[name].trains_decoder
    if decoder.exists():
        n = load_decoder(unet.decoder, decoder, "resnet18", (32, 16, 16, 8, 8))
        assert n == len(unet.decoder.state_dict())
        saved, loaded = load_file(decoder), unet.decoder.state_dict()
        assert all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_checkpoints_from_before_the_registry_load(tiny_cache: Path) -> None:
    """A checkpoint written by the BYOL module names its networks ``byol.*``."""
    cfg = pretrain_preset("paper", "byol", [f"data={tiny_cache}", *TINY_PRETRAIN])
    cache = SliceCache.open(tiny_cache)
    pool = unlabelled_pool(cache, split_for_cache(cache, None).train)
    module, _ = build_pretrain_module(cfg, cache, pool)
    current = module.state_dict()
    legacy = {"state_dict": {k.replace("method.", "byol.", 1): v for k, v in current.items()}}
    assert all(k.startswith("byol.") for k in legacy["state_dict"])
    module.on_load_checkpoint(legacy)
    assert legacy["state_dict"].keys() == current.keys()
    module.load_state_dict(legacy["state_dict"], strict=True)
