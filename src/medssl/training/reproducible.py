"""MKL's reproducibility settings, applied by the entry points that start runs.

Intel MKL (PyTorch's CPU BLAS, and its exp/log through MKL's vector maths) may return
different last bits from run to run for the same inputs: its conditional numerical
reproducibility mode is off by default, and with dynamic threading it picks how many
threads (hence how it splits the work) at each call. A CPU fine-tune then ended
differently in about one process in seven, so a resumed run could not match an
uninterrupted one. MKL reads both settings once, when it starts, so the entry points
(the ``medssl`` command, :func:`~medssl.training.pretrain.pretrain`,
:func:`~medssl.training.finetune.finetune`, the benchmark, a study worker) call
:func:`apply_blas_settings` before they compute anything. Importing medssl changes
nothing. In a notebook, call it (or export the variables) before the first tensor
operation; values the user exported win. See docs/reliability.md.
"""

from __future__ import annotations

import os

#: The settings and their values (``MKL_CBWR``: reproducible code paths; no dynamic threads).
BLAS_SETTINGS = {"MKL_CBWR": "AUTO,STRICT", "MKL_DYNAMIC": "FALSE"}


def apply_blas_settings() -> dict[str, str]:
    """Set :data:`BLAS_SETTINGS` in the environment where the user has not; returns the
    values in force.

    ``MKL_CBWR`` takes effect if MKL has not computed yet in this process. ``MKL_DYNAMIC``
    is read when MKL starts, which can be before any computation (``import torch`` and
    its first parallel operation): so when the setting in force is ``FALSE``, dynamic
    threading is also turned off through ``torch.set_num_threads`` with the current thread
    count, which calls MKL's ``mkl_set_dynamic(false)`` whenever MKL has started.
    """
    for key, value in BLAS_SETTINGS.items():
        os.environ.setdefault(key, value)
    if os.environ["MKL_DYNAMIC"].upper() in ("FALSE", "0", "NO"):
        import torch

        torch.set_num_threads(torch.get_num_threads())
    return {key: os.environ[key] for key in BLAS_SETTINGS}
