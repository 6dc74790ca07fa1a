"""Choices that depend on the machine a run meets: ``precision=auto`` (bf16 where the
CPU or GPU does bf16 matmuls natively) and ``compile=auto`` (long GPU pretraining only),
each with the reason it gives (``medssl bench`` prints it)."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from medssl.configs import RuntimeConfig

#: CPU features medssl names: (name, torch's probe in ``torch.cpu``, /proc/cpuinfo flag)
CPU_FEATURES = (
    ("AVX-512", "_is_avx512_supported", "avx512f"),
    ("AVX-512 BF16", "_is_avx512_bf16_supported", "avx512_bf16"),
    ("AMX", "_is_amx_tile_supported", "amx_bf16"),
)


def cpu_features() -> tuple[str, ...]:
    """The :data:`CPU_FEATURES` this CPU has, as torch reports them (the /proc/cpuinfo
    flag where torch cannot tell)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    found = []
    for name, probe, flag in CPU_FEATURES:
        fn = getattr(torch.cpu, probe, None)
        try:
            reported = bool(fn()) if fn is not None else flag in flags
        except RuntimeError:
            reported = flag in flags
        if reported:
            found.append(name)
    return tuple(found)


@functools.cache
def cpu_bf16() -> tuple[bool, str]:
    """Whether bf16 autocast pays on this CPU, and why: the rule is *native bf16
    matmuls*, i.e. AMX tiles or AVX-512 BF16 (:func:`cpu_features`). Measured
    fine-tuning a ResNet-50 U-Net at 128 px on 2 vCPUs: 1.84× fp32 on an AMD EPYC with
    AVX-512 BF16, 1.6–1.7× on an Intel Xeon with AMX (benchmarks/RESULTS.md). Without
    either, bf16 is emulated and slower than fp32."""
    features = cpu_features()
    for name in ("AMX", "AVX-512 BF16"):
        if name in features:
            return True, f"the CPU has {name} (native bf16 matmuls): bf16 autocast"
    return False, "the CPU has neither AMX nor AVX-512 BF16 (bf16 would be emulated): fp32"


def resolve_precision(runtime: RuntimeConfig) -> str:
    """``auto`` → bf16 autocast on bf16-capable GPUs and on CPUs with native bf16
    matmuls (:func:`cpu_bf16`: AMX or AVX-512 BF16), fp16 on older GPUs, fp32
    otherwise; other values are passed to Lightning unchanged."""
    return precision_choice(runtime)[0]


def uses_gpu(accelerator: str) -> bool:
    """Whether a run with this Lightning ``accelerator`` runs on a CUDA GPU here."""
    return accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def precision_choice(runtime: RuntimeConfig) -> tuple[str, str]:
    """``(precision, why)``: :func:`resolve_precision`'s answer and the reason for it."""
    if runtime.precision != "auto":
        return runtime.precision, "set explicitly"
    if uses_gpu(runtime.accelerator):
        if torch.cuda.is_bf16_supported():
            return "bf16-mixed", "the GPU supports bf16"
        return "16-mixed", "the GPU has no bf16: fp16 mixed precision"
    fast, why = cpu_bf16()
    return ("bf16-mixed" if fast else "32-true"), why


#: the shortest pretraining that ``compile=auto`` compiles on a GPU. Measured on an H200
#: (benchmarks/RESULTS.md): BYOL, ResNet-50, 224 px, batch 256, bf16 ran 132 ms a step
#: compiled against 191 ms eager, 1,907 against 1,336 samples/s (the ≥ 1,700 target is
#: met only compiled), so a compilation of 1–2 minutes is paid back after
#: ≈ 1,000–2,000 steps.
COMPILE_MIN_STEPS = 1500


def compile_choice(runtime: RuntimeConfig, kind: str, steps: int) -> tuple[bool, str]:
    """``(compile, why)`` for a ``kind`` run (``pretrain``/``finetune``) of ``steps``
    optimiser steps.

    ``auto`` compiles a pretraining run of at least :data:`COMPILE_MIN_STEPS` steps that
    will run on a GPU. Fine-tuning stays eager under ``auto``: it meets its throughput
    target eager on the GPUs measured, and its whole-slice validation meets a new input
    shape per slice size, each a recompilation. On a CPU compilation does not pay
    (0.67 s vs 0.63 s a step eager, after 76 s of compiling: benchmarks/RESULTS.md).
    """
    if runtime.compile != "auto":
        return bool(runtime.compile), "set explicitly"
    if not uses_gpu(runtime.accelerator):
        return False, "auto: not on a GPU (compilation does not pay on a CPU)"
    if kind != "pretrain":
        return False, f"auto: {kind} runs eager (whole-slice validation would recompile)"
    if steps < COMPILE_MIN_STEPS:
        return False, f"auto: {steps} steps < {COMPILE_MIN_STEPS}, too short to repay compiling"
    return True, f"auto: a pretraining of {steps} steps on a GPU (≥ {COMPILE_MIN_STEPS})"
