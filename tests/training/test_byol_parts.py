"""Properties of BYOL's pure parts: loss, schedules, EMA, LARS, heads."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
from torch import nn

from medssl.models.byol import BYOL, HeadConfig
from medssl.training.lars import LARS, lars_param_groups
from medssl.training.losses import byol_loss, representation_std, symmetric_byol_loss
from medssl.training.schedules import momentum_schedule


def test_byol_loss_range_and_extremes() -> None:
    x = torch.randn(8, 16)
    assert byol_loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert byol_loss(x, -x).item() == pytest.approx(4.0, abs=1e-5)
    assert byol_loss(x, 3 * x).item() == pytest.approx(0.0, abs=1e-6)  # scale invariant
    y = torch.randn(8, 16)
    assert 0.0 <= byol_loss(x, y).item() <= 4.0


def test_symmetric_loss_is_symmetric_in_views() -> None:
    p1, p2, z1, z2 = (torch.randn(5, 8) for _ in range(4))
    a = symmetric_byol_loss(p1, p2, z1, z2)
    b = symmetric_byol_loss(p2, p1, z2, z1)
    assert torch.allclose(a, b)


def test_loss_stops_gradient_through_target() -> None:
    p = torch.randn(4, 8, requires_grad=True)
    z = torch.randn(4, 8, requires_grad=True)
    byol_loss(p, z).backward()
    assert p.grad is not None and z.grad is None


def test_collapse_monitor() -> None:
    healthy = representation_std(torch.randn(4096, 256))
    assert healthy.item() == pytest.approx(1 / math.sqrt(256), rel=0.05)
    collapsed = representation_std(torch.ones(64, 256) + 1e-9 * torch.randn(64, 256))
    assert collapsed.item() < 1e-6


def test_tau_schedule_end_points_and_monotone() -> None:
    assert momentum_schedule(0, 100) == pytest.approx(0.99)
    assert momentum_schedule(100, 100) == pytest.approx(1.0)
    values = [momentum_schedule(k, 100) for k in range(101)]
    assert all(b >= a for a, b in itertools.pairwise(values))


def _tiny_byol() -> BYOL:
    torch.manual_seed(0)
    return BYOL.from_arch("resnet18", HeadConfig(32, 16, 32))


def test_heads_shapes() -> None:
    model = _tiny_byol()
    z, p = model.forward_online(torch.randn(3, 1, 64, 64))
    assert z.shape == p.shape == (3, 16)
    assert model.forward_target(torch.randn(3, 1, 64, 64)).shape == (3, 16)
    assert model.projector.layers[0].out_features == 32


def test_ema_m1_keeps_target_m0_copies_online() -> None:
    model = _tiny_byol()
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)
    before = copy.deepcopy(model.target_backbone.state_dict())
    model.update_target(1.0)
    for k, v in model.target_backbone.state_dict().items():
        assert torch.equal(v, before[k]), k
    model.update_target(0.0)
    online = dict(model.backbone.named_parameters())
    for name, p in model.target_backbone.named_parameters():
        assert torch.equal(p, online[name]), name
    assert not any(p.requires_grad for p in model.target_backbone.parameters())


def test_lars_excludes_biases_and_norms() -> None:
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    groups = lars_param_groups(net, 1e-5)
    decay, excl = groups
    assert {p.ndim for p in decay["params"]} == {4, 2}
    assert all(p.ndim == 1 for p in excl["params"])
    assert excl["weight_decay"] == 0 and excl["lars_exclude"]
    assert len(decay["params"]) + len(excl["params"]) == len(list(net.parameters()))


def test_lars_step_matches_formula_and_clipping() -> None:
    w = nn.Parameter(torch.full((4,), 2.0))  # ‖w‖ = 4
    w.grad = torch.full((4,), 0.5)  # ‖g‖ = 1
    opt = LARS(
        [{"params": [w], "weight_decay": 0.0, "lars_exclude": False}],
        lr=0.1,
        momentum=0.0,
        eta=0.02,
        clip_lr=False,
    )
    opt.step()
    ratio = 0.02 * 4 / 1
    assert torch.allclose(w, torch.full((4,), 2.0 - 0.1 * ratio * 0.5))
    # with clipping the effective rate lr·r is capped at lr: r = min(0.08/0.01, 1) = 1
    w2 = nn.Parameter(torch.full((4,), 2.0))
    w2.grad = torch.full((4,), 0.5)
    LARS(
        [{"params": [w2], "weight_decay": 0.0, "lars_exclude": False}],
        lr=0.01,
        momentum=0.0,
        eta=0.02,
        clip_lr=True,
    ).step()
    assert torch.allclose(w2, torch.full((4,), 2.0 - 0.01 * 0.5))
    # excluded parameters: plain SGD
    b = nn.Parameter(torch.ones(3))
    b.grad = torch.ones(3)
    LARS([{"params": [b], "weight_decay": 0.0, "lars_exclude": True}], lr=0.1, momentum=0.0).step()
    assert torch.allclose(b, torch.full((3,), 0.9))


def _reference_lars_step(params, state, lr, momentum, wd, eta, clip, exclude, eps=1e-8):
    """solo-learn's per-parameter LARS loop, written out."""
    for i, p in enumerate(params):
        g = p.grad
        if not exclude:
            w_norm, g_norm = p.norm(), g.norm()
            ratio = eta * w_norm / (g_norm + wd * w_norm + eps)
            if clip:
                ratio = min(ratio / lr, 1.0)
            if w_norm == 0 or g_norm == 0:
                ratio = 1.0
            g = (g + wd * p) * ratio
        state[i] = g.clone() if i not in state else state[i] * momentum + g
        p.data -= lr * state[i]


def test_vectorised_lars_matches_the_per_parameter_loop() -> None:
    torch.manual_seed(0)
    shapes = [(8, 4), (16,), (3, 3, 2, 2)]
    for clip, exclude in [(True, False), (False, False), (True, True)]:
        a = [torch.randn(s, requires_grad=True) for s in shapes]
        b = [t.detach().clone() for t in a]
        opt = LARS(
            [{"params": a, "weight_decay": 1e-3, "lars_exclude": exclude}],
            lr=0.3,
            momentum=0.9,
            eta=0.02,
            clip_lr=clip,
        )
        state: dict = {}
        for _ in range(4):
            grads = [torch.randn(s) for s in shapes]
            for p, q, g in zip(a, b, grads, strict=True):
                p.grad, q.grad = g.clone(), g.clone()
            opt.step()
            wd = 0.0 if exclude else 1e-3
            _reference_lars_step(b, state, 0.3, 0.9, wd, 0.02, clip, exclude)
            for p, q in zip(a, b, strict=True):
                assert torch.allclose(p.detach(), q, atol=1e-6)
