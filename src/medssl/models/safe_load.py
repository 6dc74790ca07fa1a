"""Safe reading of weight files, and medssl's own encoder file format.

A torch file is a pickle, and unpickling an untrusted pickle can run any code. Every
torch file is therefore read with ``torch.load(..., weights_only=True)``, whose
unpickler only builds tensors, plain containers and the globals it is told are safe.

Real checkpoints often hold harmless configuration objects next to the tensors
(Lightning's ``hyper_parameters`` as an ``AttributeDict`` of ``argparse.Namespace``,
omegaconf ``DictConfig``, ``pathlib`` paths, ``collections.defaultdict``). Those types
are listed in :data:`HARMLESS_GLOBALS` and allowed for the one load that needs them
through ``torch.serialization.safe_globals``; the dict subclasses the weights-only
unpickler cannot fill (``defaultdict``, ``AttributeDict``) are read as plain dicts.
Any other global (``builtins.open``, ``os.system``, a project class with its own
``__reduce__``) makes the file refused with a :class:`~medssl.errors.WeightsError`
that names the file and the global.

``trust_pickle=True`` is the explicit opt-in for trusted legacy files: the file's own
globals are imported and allowed (still through the weights-only unpickler), and the
load logs a WARNING naming them. It is never implied.

A medssl encoder file is a safetensors file holding a timm encoder's full state dict
and the metadata ``{"format": "medssl-encoder", "arch": ..., "in_chans": ...}``; it
loads with ``strict=True`` into ``create_encoder(arch, in_chans)``.
"""

from __future__ import annotations

import importlib
import logging
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from medssl.artifacts.atomic import atomic_write
from medssl.errors import WeightsError
from medssl.models.encoders import first_conv_name

log = logging.getLogger(__name__)

ENCODER_FORMAT = "medssl-encoder"
DECODER_FORMAT = "medssl-decoder"

HARMLESS_GLOBALS: frozenset[str] = frozenset(
    {
        "builtins.dict", "builtins.list", "builtins.tuple", "builtins.set",
        "builtins.frozenset", "builtins.int", "builtins.float", "builtins.complex",
        "builtins.str", "builtins.bytes", "builtins.bytearray", "builtins.bool",
        "collections.OrderedDict", "collections.defaultdict", "collections.Counter",
        "typing.Any",
        "argparse.Namespace",
        "pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePath",
        "pathlib.PurePosixPath", "pathlib.PureWindowsPath",
        "omegaconf.dictconfig.DictConfig", "omegaconf.listconfig.ListConfig",
        "omegaconf.base.ContainerMetadata", "omegaconf.base.Metadata",
        "omegaconf.nodes.AnyNode", "omegaconf.nodes.StringNode", "omegaconf.nodes.IntegerNode",
        "omegaconf.nodes.FloatNode", "omegaconf.nodes.BooleanNode",
        "omegaconf.nodes.BytesNode", "omegaconf.nodes.PathNode",
        "lightning.fabric.utilities.data.AttributeDict",
        "lightning_fabric.utilities.data.AttributeDict",
        "lightning.pytorch.utilities.parsing.AttributeDict",
        "pytorch_lightning.utilities.parsing.AttributeDict",
    }
)  # fmt: skip
"""Globals that only build configuration values; allowed when a checkpoint needs them."""


def _plain_dict(*_factory: Any) -> dict[Any, Any]:
    """Stands in for ``collections.defaultdict``: its items are kept, its factory dropped."""
    return {}


_READ_AS: dict[str, Any] = {
    "collections.defaultdict": _plain_dict,
    "lightning.fabric.utilities.data.AttributeDict": dict,
    "lightning_fabric.utilities.data.AttributeDict": dict,
    "lightning.pytorch.utilities.parsing.AttributeDict": dict,
    "pytorch_lightning.utilities.parsing.AttributeDict": dict,
}
"""Dict subclasses the weights-only unpickler cannot fill; they are read as plain dicts."""

_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")
_MAX_ROUNDS = 64


@dataclass(frozen=True)
class RawWeights:
    """What a weight file holds, read without running code from it.

    Attributes:
        path: the file.
        fmt: ``"safetensors"`` or ``"torch"``.
        obj: for safetensors the dict name -> tensor; for torch files the unpickled
            object (nested dicts/lists of tensors and harmless config values).
        metadata: the safetensors header metadata (empty for torch files).
        allowed_globals: harmless config types the file needed.
        trusted_globals: other globals let through because ``trust_pickle=True``.
    """

    path: Path
    fmt: str
    obj: Any
    metadata: dict[str, str] = field(default_factory=dict)
    allowed_globals: tuple[str, ...] = ()
    trusted_globals: tuple[str, ...] = ()


def read_weights_file(path: str | Path, trust_pickle: bool = False) -> RawWeights:
    """Read a safetensors or torch weight file without running code from it.

    Args:
        path: the file; its format is sniffed from its first bytes, not its suffix.
        trust_pickle: allow globals outside :data:`HARMLESS_GLOBALS` (trusted files only;
            logged as a WARNING).

    Raises:
        WeightsError: missing or unreadable file, or a pickle that needs a global that
            can run code while ``trust_pickle`` is False.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(path, "no such weight file")
    if is_safetensors(path):
        tensors, meta = read_safetensors(path)
        return RawWeights(path, "safetensors", tensors, meta)
    obj, names = _read_torch(path, trust_pickle)
    trusted = tuple(n for n in names if n not in HARMLESS_GLOBALS)
    if trusted:
        log.warning(
            "%s: trust_pickle=True let through %d global(s) that can run code: %s",
            path,
            len(trusted),
            ", ".join(trusted),
        )
    harmless = tuple(n for n in names if n in HARMLESS_GLOBALS)
    return RawWeights(path, "torch", obj, {}, harmless, trusted)


def is_safetensors(path: str | Path) -> bool:
    """True when the file starts like a safetensors file (header length, then ``{``)."""
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        return False
    size = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 0 < size <= path.stat().st_size - 8


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors of a safetensors file (on CPU) and its header metadata.

    Raises:
        WeightsError: the file is not a valid safetensors file.
    """
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = dict(fh.metadata() or {})
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error type, or OSError
        raise WeightsError(path, f"unreadable safetensors file ({exc})") from exc
    return tensors, meta


def save_encoder(model: nn.Module, path: str | Path, arch: str) -> Path:
    """Write the model's full state dict as a medssl encoder safetensors file (atomically).

    Args:
        model: a timm encoder, e.g. from ``create_encoder(arch, in_chans)``.
        path: the ``.safetensors`` file to write.
        arch: the timm architecture, stored in the metadata.
    """
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    in_chans = int(state[first_conv_name(model) + ".weight"].shape[1])
    meta = {"format": ENCODER_FORMAT, "arch": arch, "in_chans": str(in_chans)}
    with atomic_write(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return path


def save_decoder(
    decoder: nn.Module, path: str | Path, arch: str, channels: tuple[int, ...]
) -> Path:
    """Write a U-Net decoder's state dict as a medssl decoder safetensors file
    (atomically); the metadata names the encoder it was trained with and its widths."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in decoder.state_dict().items()}
    meta = {
        "format": DECODER_FORMAT,
        "arch": arch,
        "decoder_channels": ",".join(str(c) for c in channels),
    }
    with atomic_write(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return path


def load_decoder_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata (``format``, ``arch``, ``decoder_channels``) of a decoder file.

    Raises:
        WeightsError: the file is missing, unreadable or not a medssl decoder file.
    """
    return _medssl_file(path, DECODER_FORMAT, "decoder")


def load_encoder_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata (``format``, ``arch``, ``in_chans``) of a medssl encoder file.

    Raises:
        WeightsError: the file is missing, unreadable or not a medssl encoder file.
    """
    return _medssl_file(path, ENCODER_FORMAT, "encoder")


def _medssl_file(
    path: str | Path, fmt: str, what: str
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not Path(path).is_file():
        raise WeightsError(path, f"no such {what} file")
    state, meta = read_safetensors(path)
    if meta.get("format") != fmt or "arch" not in meta:
        raise WeightsError(path, f"not a medssl {what} file (metadata {meta})")
    return state, meta


def refusal_message(names: list[str]) -> str:
    """The one sentence that explains why a pickle was refused and how to opt in."""
    return (
        f"refused to unpickle: it needs {', '.join(names)}, which can run code while "
        "loading; if you trust where the file came from, pass trust_pickle=True "
        "(CLI: --trust-pickle), or convert it once to safetensors"
    )


def _read_torch(path: Path, trust_pickle: bool) -> tuple[Any, list[str]]:
    """Load with the weights-only unpickler, allowing globals one check at a time."""
    names = _static_globals(path)
    _check_allowed(path, names, trust_pickle)
    for _ in range(_MAX_ROUNDS):
        try:
            return _torch_load(path, names), names
        except pickle.UnpicklingError as exc:
            match = _UNSUPPORTED_GLOBAL.search(str(exc))
            name = match.group(1) if match else ""
            name = name if "." in name or not name else f"builtins.{name}"
            if not name or name in names:
                why = f"refused by the weights-only unpickler: {_why(exc)}"
                raise WeightsError(path, why) from exc
            _check_allowed(path, [name], trust_pickle)
            names.append(name)
    raise WeightsError(path, f"needs more than {_MAX_ROUNDS} globals to unpickle; refused")


def _static_globals(path: Path) -> list[str]:
    """Non-default globals a zip-format torch file names (legacy files: found while loading)."""
    if not zipfile.is_zipfile(path):
        return []
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception as exc:  # corrupt archive, not a torch.save file
        raise _unreadable(path, exc) from exc


def _check_allowed(path: Path, names: list[str], trust_pickle: bool) -> None:
    unsafe = [name for name in names if name not in HARMLESS_GLOBALS]
    if unsafe and not trust_pickle:
        raise WeightsError(path, refusal_message(unsafe))


def _torch_load(path: Path, names: list[str]) -> Any:
    """``torch.load`` with ``weights_only=True`` and ``names`` allowed for this call only."""
    allowed = [(_resolve(path, name), name) for name in names]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise
    except Exception as exc:  # torch raises RuntimeError/EOFError/ValueError on bad files
        raise _unreadable(path, exc) from exc


def _resolve(path: Path, name: str) -> Any:
    """The object a pickle global ``module.qualname`` names (importing its module)."""
    if name in _READ_AS:
        return _READ_AS[name]
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            continue
        return obj
    raise WeightsError(path, f"needs {name} to be read, but it cannot be imported here")


def _unreadable(path: Path, exc: Exception) -> WeightsError:
    return WeightsError(path, f"not a readable torch file ({type(exc).__name__}: {exc})")


def _why(exc: Exception) -> str:
    """The informative part of torch's long weights-only error message."""
    text = " ".join(str(exc).split())
    found = re.search(r"WeightsUnpickler error:(.*?)(Check the documentation|$)", text)
    return found.group(1).strip() if found and found.group(1).strip() else text[:300]
