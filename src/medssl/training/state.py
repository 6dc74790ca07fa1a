"""The checkpoint state of a module's owned helpers: one key each under ``"medssl"``.

A LightningModule of medssl owns small helpers with state of their own (the data
position, the non-finite-loss guard, the collapse monitor, the best-score tracker),
each a plain object with ``state_dict()`` and ``load_state_dict(state)`` (the
composition solo-learn uses for its momentum and queue helpers, not mixins). The
module's ``on_save_checkpoint`` stores them with :func:`save_states` as::

    checkpoint["medssl"] = {"position": [...], "finite_loss": {...}, ...}

and ``on_load_checkpoint`` restores them with :func:`load_states`, which also reads
the flat keys of checkpoints written before (``medssl_position``,
``medssl_skipped_steps``, ``medssl_best_iou``, ``medssl_collapse``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

#: The checkpoint entry holding every helper's state.
MEDSSL_KEY = "medssl"


class Stateful(Protocol):
    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> None: ...


def save_states(checkpoint: dict, helpers: Mapping[str, Stateful]) -> None:
    """Put each helper's ``state_dict()`` under ``checkpoint["medssl"][name]``."""
    checkpoint[MEDSSL_KEY] = {name: h.state_dict() for name, h in helpers.items()}


def _legacy(checkpoint: Mapping[str, Any], name: str) -> Any:
    """The state of helper ``name`` in a checkpoint written before the ``medssl`` key."""
    collapse = checkpoint.get("medssl_collapse") or {}
    if name == "position":
        return checkpoint.get("medssl_position")
    if name == "finite_loss":
        skipped = checkpoint.get("medssl_skipped_steps", collapse.get("skipped_steps"))
        return None if skipped is None else {"skipped_steps": skipped}
    if name == "best":
        best = checkpoint.get("medssl_best_iou")
        return None if best is None else {"value": best}
    if name == "collapse":
        return collapse or None
    return None


def load_states(checkpoint: Mapping[str, Any], helpers: Mapping[str, Stateful]) -> None:
    """Restore each helper present in ``checkpoint`` (new layout, else the old keys);
    a helper without saved state keeps its fresh state."""
    saved = checkpoint.get(MEDSSL_KEY) or {}
    for name, helper in helpers.items():
        state = saved[name] if name in saved else _legacy(checkpoint, name)
        if state is not None:
            helper.load_state_dict(state)
