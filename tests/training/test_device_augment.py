"""Device-side batched augmentation trains like the per-sample worker path."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import medssl.training.device_augment as device_augment
from medssl.artifacts.rundir import RunDir
from medssl.data.batch_augment import augment_batch
from medssl.training.finetune import finetune
from medssl.training.pretrain import pretrain
from tests.conftest import TINY_FINETUNE, tiny_finetune_config, tiny_pretrain_config

CROP = int(next(s.split("=")[1] for s in TINY_FINETUNE if s.startswith("crop=")))
BATCH = int(next(s.split("=")[1] for s in TINY_FINETUNE if s.startswith("batch_size=")))
STEPS = int(next(s.split("=")[1] for s in TINY_FINETUNE if s.startswith("steps=")))


def _run(cache: Path, out: Path, augment: str) -> Path:
    finetune(tiny_finetune_config(cache, out, f"runtime.augment={augment}"), progress=False)
    return out


def test_device_and_worker_augmentation_give_the_same_run(tiny_cache: Path, tmp_path: Path) -> None:
    a = _run(tiny_cache, tmp_path / "device", "device")
    b = _run(tiny_cache, tmp_path / "workers", "workers")
    ca, cb = RunDir(a).read_curve(), RunDir(b).read_curve()
    assert torch.allclose(torch.tensor(ca["val_loss"]), torch.tensor(cb["val_loss"]), atol=1e-3), (
        ca["val_loss"],
        cb["val_loss"],
    )
    wa, wb = load_file(str(a / "best.safetensors")), load_file(str(b / "best.safetensors"))
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
    assert worst < 1e-2


def _spy_on_device_augment(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Record every batch the module resamples on the device: inputs and outputs."""
    calls: list[dict] = []

    def spy(bank, rows, views, size, with_labels=False):
        image, label = augment_batch(bank, rows, views, size, with_labels)
        calls.append(
            {
                "bank": bank,
                "rows": rows.detach().clone(),
                "views": views.detach().clone(),
                "size": size,
                "with_labels": with_labels,
                "image": image.detach().clone(),
                "label": None if label is None else label.detach().clone(),
            }
        )
        return image, label

    monkeypatch.setattr(device_augment, "augment_batch", spy)
    return calls


def _check_device_batches(calls: list[dict], device_type: str) -> None:
    """Every training batch was resampled from the slice bank on ``device_type``: right
    shapes/dtypes/values, really augmented, and labels under the images' transform."""
    assert len(calls) == STEPS, len(calls)  # one resampled batch per training step
    for call in calls:
        image, label, views = call["image"], call["label"], call["views"]
        assert call["bank"].device.type == device_type
        assert call["with_labels"] and call["size"] == CROP
        assert image.device.type == label.device.type == device_type
        assert image.shape == (BATCH, 1, CROP, CROP) and image.dtype == torch.float32
        assert label.shape == (BATCH, CROP, CROP) and label.dtype == torch.int64
        assert bool(torch.isfinite(image).all())
        assert int(label.min()) >= 0 and int(label.max()) <= 3
        assert views.shape == (BATCH, 8)
        # the same draws resampled on the CPU give the same pixels and labels
        cpu_image, cpu_label = augment_batch(
            call["bank"].to("cpu"), call["rows"].cpu(), views.cpu(), CROP, True
        )
        assert torch.equal(label.cpu(), cpu_label)
        assert torch.allclose(image.cpu(), cpu_image, atol=1e-3), (
            (image.cpu() - cpu_image).abs().max()
        )
        # labels sit on the image structures they name: the tiny volumes' LV (3) is the
        # brightest structure and brighter than the background (0) in every view
        for img, lab in zip(image[:, 0].cpu(), label.cpu(), strict=True):
            if (lab == 3).any() and (lab == 0).any():
                assert float(img[lab == 3].mean()) > float(img[lab == 0].mean())
            if (lab == 3).any() and (lab == 2).any():
                assert float(img[lab == 3].mean()) > float(img[lab == 2].mean())
    # the draws really augment: flips and intensity jitter both on and off, varied crops
    views = torch.cat([c["views"].cpu() for c in calls])
    assert set(views[:, 4].tolist()) == {0.0, 1.0}, "flip never / always drawn"
    jittered = views[:, 5] != 0  # column 5: 0 = no jitter, else the jitter style's code
    assert bool(jittered.any()) and not bool(jittered.all()), "jitter never / always applied"
    assert views[:, 2].unique().numel() > 1, "every crop has the same size"
    assert bool((views[jittered, 7] != 1.0).all()), "jitter drawn without a contrast change"
    # and the resampled batches differ between steps
    assert not torch.equal(calls[0]["image"].cpu(), calls[1]["image"].cpu())


def test_device_augmentation_resamples_every_training_batch(
    tiny_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _spy_on_device_augment(monkeypatch)
    result = finetune(tiny_finetune_config(tiny_cache, tmp_path / "ft"), progress=False)
    assert result.steps == STEPS
    _check_device_batches(calls, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["bf16-mixed", "32-true"])
def test_gpu_run_end_to_end(
    tiny_cache: Path, tmp_path: Path, precision: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GPU path end to end (slice bank placed on the GPU when it fits, fused Adam with
    medssl's clipping, validation, BYOL): runs finish with finite curves and weights."""
    calls = _spy_on_device_augment(monkeypatch)
    gpu = ["runtime.accelerator=gpu", f"runtime.precision={precision}"]
    ft = finetune(tiny_finetune_config(tiny_cache, tmp_path / "ft", *gpu), progress=False)
    curve = RunDir(tmp_path / "ft").read_curve()
    assert len(curve["val_loss"]) == 2 and all(map(math.isfinite, curve["val_loss"])), curve
    weights = load_file(str(tmp_path / "ft" / "best.safetensors"))
    assert all(bool(torch.isfinite(w.float()).all()) for w in weights.values())
    # the tiny bank fits: every batch was resampled on the GPU, augmented, labels aligned
    _check_device_batches(calls, "cuda")
    assert ft.steps == STEPS and curve["step"].tolist() == [STEPS / 2, STEPS]
    assert ft.final_val_iou == curve["slice_iou/mean"][-1]
    assert ft.best_val_iou == max(curve["slice_iou/mean"])
    pretrain(tiny_pretrain_config(tiny_cache, tmp_path / "pt", *gpu), progress=False)
    encoder = load_file(str(tmp_path / "pt" / "encoder_last.safetensors"))
    assert all(bool(torch.isfinite(w.float()).all()) for w in encoder.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_compiled_gpu_pretraining_keeps_the_eager_weight_names(
    tiny_cache: Path, tmp_path: Path
) -> None:
    """``runtime.compile`` in a real Lightning run on the GPU (what ``compile=auto`` picks
    for long pretrainings): it records that it compiled and what the first step cost, and
    its encoder files and resume checkpoint carry the eager run's parameter names (no
    ``_orig_mod.``), so fine-tunes and resumes read them either way."""
    gpu = ["runtime.accelerator=gpu", "runtime.precision=bf16-mixed", "max_steps=4"]
    names = {}
    for arm in ("false", "true"):
        run = tmp_path / arm
        pretrain(tiny_pretrain_config(tiny_cache, run, *gpu, f"runtime.compile={arm}"),
                 progress=False)  # fmt: skip
        record = json.loads((run / "result.json").read_text())["compile"]
        assert record["compiled"] is (arm == "true") and record["reason"] == "set explicitly"
        assert record["first_step_s"] > 0
        encoder = load_file(str(run / "encoder_last.safetensors"))
        assert all(bool(torch.isfinite(w.float()).all()) for w in encoder.values())
        state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        names[arm] = (set(encoder), set(state["state_dict"]))
    assert names["true"] == names["false"]
    assert not any("_orig_mod" in k for k in names["true"][1])
