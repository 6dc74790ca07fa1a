"""Weight import for every ``--init`` source, plus inspection, conversion and encoder files.

One importer, :func:`load_weights`, serves pretraining and fine-tuning. A source is
``"random"`` (nothing loaded), ``"imagenet"`` (timm's supervised weights through
timm's own hub download) or a file. A file's layout (``medssl``, ``byol-pytorch``,
``solo-learn``, ``lightning``, ``torchvision``, ``timm``...; see
:mod:`medssl.models.layouts`) is detected from its structure (or forced with
``layout=``).

Names are mapped by name, never by position. A leading prefix (``module.``,
``model.``, ``encoder.``, ``backbone.`` or any other) is found by trying every
leading path of up to three components and keeping the one that matches most of
the model's tensors. Classifier tensors are dropped, an RGB first convolution is
summed to the model's single channel (:func:`~medssl.models.encoders.adapt_first_conv`),
every shape is checked, and the result is logged and returned as a
:class:`LoadReport`. Too little matched, or any other shape mismatch, raises
:class:`~medssl.errors.WeightsError`.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import timm
import torch
from torch import nn

from medssl.errors import WeightsError
from medssl.models.encoders import adapt_first_conv, create_encoder, first_conv_name
from medssl.models.layouts import (
    BYOL_SEQUENTIAL,
    LAYOUTS,
    best_prefix,
    detect_layout,
    extract_tensors,
    first_conv_channels,
    guess_resnet,
    resnet_prefix,
    resolve_layout,
    state_of,
)
from medssl.models.safe_load import (
    load_decoder_file,
    load_encoder_file,
    read_weights_file,
    save_encoder,
)

log = logging.getLogger(__name__)

__all__ = [
    "BYOL_SEQUENTIAL",
    "LAYOUTS",
    "LoadReport",
    "WeightsInfo",
    "convert_weights",
    "detect_layout",
    "import_state",
    "inspect_weights",
    "load_decoder",
    "load_encoder_file",
    "load_weights",
    "save_encoder",
    "weights_fingerprint",
]

_OPTIONAL = ("num_batches_tracked",)
_SHOW = 5


@dataclass(frozen=True)
class LoadReport:
    """What one import matched, missed and left out.

    Attributes:
        source: the file, ``"imagenet"`` or ``"random"``.
        layout: the layout used (``"random"`` when nothing was loaded).
        arch: timm architecture of the receiving model.
        matched: model tensors filled from the source.
        expected: model tensors that count (no classifier, no ``num_batches_tracked``).
        missing: model tensors the source did not provide.
        unexpected: source tensors (after mapping) the model has no place for.
        ignored: source tensors left out on purpose (classifier, other branch, heads).
        adapted_first_conv: an RGB first convolution was summed to the model's channels.
        prefix: the leading name part that was stripped.
        trusted_globals: pickle globals let through by ``trust_pickle=True``.
        fingerprint: :func:`weights_fingerprint` of the tensors loaded (empty for random
            initialisation): two runs started from the same weights share it, whatever
            the file's name, format or machine.
    """

    source: str
    layout: str
    arch: str
    matched: int = 0
    expected: int = 0
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    adapted_first_conv: bool = False
    prefix: str = ""
    trusted_globals: tuple[str, ...] = ()
    fingerprint: str = ""

    @property
    def fraction(self) -> float:
        """Share of the expected model tensors that were matched."""
        return self.matched / self.expected if self.expected else 0.0

    def summary(self) -> str:
        """One line for logs and the CLI."""
        if self.layout == "random":
            return f"{self.arch}: random initialisation, no weights loaded"
        parts = [
            f"{self.arch} <- {self.source} [{self.layout}]",
            f"matched {self.matched}/{self.expected} ({self.fraction:.0%})",
            _names("missing", self.missing),
            _names("unexpected", self.unexpected),
            _names("ignored", self.ignored),
        ]
        if self.prefix:
            parts.append(f"stripped prefix {self.prefix!r}")
        if self.adapted_first_conv:
            parts.append("RGB first conv summed to the model's channels")
        return "; ".join(parts)


@dataclass(frozen=True)
class WeightsInfo:
    """What :func:`inspect_weights` finds in a file without loading it into a model.

    Attributes:
        path: the file.
        fmt: ``"safetensors"`` or ``"torch"``.
        layout: detected (or forced) layout.
        num_tensors: tensors in the branch the layout reads.
        num_parameters: their elements, BatchNorm running statistics excluded.
        prefixes: ``(first name component, tensor count)`` of that branch, before mapping.
        top_level_keys: keys of the file's outer dict that do not hold a tensor.
        arch_guess: the timm name when it can be told (metadata, or ResNet depth/width).
        first_conv_channels: input channels of the first convolution, when found.
        metadata: safetensors metadata, or scalar entries of a torch checkpoint.
    """

    path: Path
    fmt: str
    layout: str
    num_tensors: int
    num_parameters: int
    prefixes: tuple[tuple[str, int], ...]
    top_level_keys: tuple[str, ...]
    arch_guess: str | None
    first_conv_channels: int | None
    metadata: Mapping[str, str] = field(default_factory=dict)


def load_weights(
    model: nn.Module,
    source: str | Path,
    arch: str,
    layout: str | None = None,
    trust_pickle: bool = False,
    min_match: float = 0.9,
) -> LoadReport:
    """Fill ``model`` from a weight source, loudly.

    Args:
        model: a timm encoder, e.g. ``create_encoder(arch, in_chans=1)``.
        source: ``"random"``, ``"imagenet"`` or the path of a weight file.
        arch: the model's timm architecture (for messages and timm's ImageNet weights).
        layout: force one of :data:`LAYOUTS` instead of detecting it.
        trust_pickle: allow pickle globals that can run code (trusted files only).
        min_match: smallest share of the model's tensors that must be matched, and of
            the source's mapped tensors that must find a place in the model (so that
            a deeper network's file does not load silently into a shallower one).

    Raises:
        WeightsError: unreadable or refused file, unknown layout, shape mismatch, too
            little matched, or ImageNet weights that cannot be fetched.
    """
    if str(source) == "random":
        report = LoadReport("random", "random", arch)
        log.info("%s", report.summary())
        return report
    if str(source) == "imagenet":
        state = _imagenet_state(arch)
        return import_state(
            model, state, source="imagenet", layout="timm", arch=arch, min_match=min_match
        )
    raw = read_weights_file(source, trust_pickle)
    name = resolve_layout(raw, layout)
    if name == "medssl" and raw.metadata.get("arch") not in (None, arch):
        log.warning("%s was saved for %s, loading into %s", raw.path, raw.metadata["arch"], arch)
    tensors, ignored = extract_tensors(raw, name)
    return import_state(
        model,
        tensors,
        source=str(raw.path),
        layout=name,
        arch=arch,
        ignored=ignored,
        min_match=min_match,
        trusted_globals=raw.trusted_globals,
    )


def load_decoder(decoder: nn.Module, path: str | Path, arch: str, channels: tuple[int, ...]) -> int:
    """Fill a U-Net decoder from a medssl decoder file, every key matched; returns the
    number of tensors loaded.

    Raises:
        WeightsError: not a decoder file, another encoder or other decoder widths, or
            keys/shapes that do not match.
    """
    state, meta = load_decoder_file(path)
    if meta["arch"] != arch:
        raise WeightsError(path, f"decoder trained with encoder {meta['arch']}, not {arch}")
    widths = ",".join(str(c) for c in channels)
    if meta.get("decoder_channels", widths) != widths:
        raise WeightsError(
            path, f"decoder widths {meta['decoder_channels']} differ from the U-Net's {widths}"
        )
    try:
        result = decoder.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a shape mismatch
        first = (str(exc).splitlines() or [""])[-1].strip()
        raise WeightsError(path, f"decoder tensors do not fit ({first})") from exc
    if result.missing_keys or result.unexpected_keys:
        missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
        raise WeightsError(
            path, f"decoder keys do not match (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    log.info("decoder: %d tensors loaded from %s (all matched)", len(state), path)
    return len(state)


def weights_fingerprint(tensors: Mapping[str, torch.Tensor]) -> str:
    """A short content hash of named tensors (names, dtypes, shapes and values, in name
    order): the first 16 hex digits of a SHA-256. Independent of file format and order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()[:16]


def import_state(
    model: nn.Module,
    tensors: Mapping[str, torch.Tensor],
    *,
    source: str,
    layout: str,
    arch: str,
    ignored: Iterable[str] = (),
    min_match: float = 0.9,
    trusted_globals: tuple[str, ...] = (),
) -> LoadReport:
    """Match named tensors to ``model`` (prefix, classifier, first conv, shapes) and load them.

    Raises:
        WeightsError: a shape mismatch, or fewer than ``min_match`` of the tensors matched.
    """
    target = model.state_dict()
    prefix, rivals = best_prefix(tensors, target)
    if rivals:
        log.warning(
            "%s: tensors under %r and %s match the model equally; took %r (force a "
            "layout to choose a branch)",
            source,
            prefix,
            rivals,
            prefix,
        )
    heads = _classifier_prefixes(model)
    taken = {k for k in tensors if k.startswith(prefix) and not k[len(prefix) :].startswith(heads)}
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k in taken}
    skipped = [*ignored, *(k for k in tensors if k not in taken)]
    state, adapted = _adapt(state, model)
    _check_shapes(source, layout, state, target)
    loaded = {k: v for k, v in state.items() if k in target}
    required = [k for k in target if not k.startswith(heads) and not k.endswith(_OPTIONAL)]
    report = LoadReport(
        source=source,
        layout=layout,
        arch=arch,
        matched=sum(k in state for k in required),
        expected=len(required),
        missing=tuple(k for k in required if k not in state),
        unexpected=tuple(sorted(k for k in state if k not in target)),
        ignored=tuple(skipped),
        adapted_first_conv=adapted,
        prefix=prefix,
        trusted_globals=trusted_globals,
        fingerprint=weights_fingerprint(loaded),
    )
    used = report.matched / max(report.matched + len(report.unexpected), 1)
    if report.matched == 0 or min(report.fraction, used) < min_match:
        need = f"need {min_match:.0%} of the model's and of the source's tensors"
        raise WeightsError(
            source, f"too little matched ({need}): {report.summary()}; check arch and layout"
        )
    model.load_state_dict(loaded, strict=False)
    log.info("loaded weights: %s", report.summary())
    if report.missing or report.unexpected:
        log.warning(
            "%s: %s",
            source,
            _names("missing", report.missing) + ", " + _names("unexpected", report.unexpected),
        )
    return report


def inspect_weights(
    path: str | Path, layout: str | None = None, trust_pickle: bool = False
) -> WeightsInfo:
    """Describe a weight file (layout, sizes, prefixes, architecture guess) without a model.

    Raises:
        WeightsError: unreadable or refused file, or a forced layout that does not fit.
    """
    raw = read_weights_file(path, trust_pickle)
    name = resolve_layout(raw, layout)
    tensors, _ = extract_tensors(raw, name)
    counts = Counter(str(k).split(".")[0] for k in state_of(raw, name))
    prefix = resnet_prefix(tensors)
    stats = ("running_mean", "running_var", "num_batches_tracked")
    meta = raw.metadata or {
        str(k): str(v) for k, v in raw.obj.items() if isinstance(v, (int, float, str, bool))
    }
    return WeightsInfo(
        path=raw.path,
        fmt=raw.fmt,
        layout=name,
        num_tensors=len(tensors),
        num_parameters=sum(t.numel() for k, t in tensors.items() if not k.endswith(stats)),
        prefixes=tuple(sorted(counts.items())),
        top_level_keys=tuple(str(k) for k, v in raw.obj.items() if not torch.is_tensor(v)),
        arch_guess=raw.metadata.get("arch") or guess_resnet(tensors, prefix),
        first_conv_channels=first_conv_channels(tensors, prefix),
        metadata=meta,
    )


def convert_weights(
    path: str | Path,
    out: str | Path,
    arch: str,
    layout: str | None = None,
    in_chans: int = 1,
    trust_pickle: bool = False,
    min_match: float = 0.9,
) -> LoadReport:
    """Import a source into ``create_encoder(arch, in_chans)``; save a medssl encoder file.

    The output loads with ``strict=True`` into ``create_encoder(arch, in_chans)``.
    Tensors the source did not provide keep their random initialisation (see the report).
    """
    model = create_encoder(arch, in_chans=in_chans)
    report = load_weights(model, path, arch, layout, trust_pickle, min_match)
    save_encoder(model, out, arch)
    log.info("wrote medssl encoder %s (%s, %d channel(s))", out, arch, in_chans)
    return report


def _imagenet_state(arch: str) -> dict[str, torch.Tensor]:
    """timm's supervised ImageNet weights, fetched through timm's hub download path."""
    if not timm.is_model_pretrained(arch):
        raise WeightsError("imagenet", f"timm has no pretrained weights for {arch!r}")
    try:
        net = timm.create_model(arch, pretrained=True, num_classes=0)
    except Exception as exc:  # offline hub, blocked download, corrupt cache: one answer
        hub = timm.models.get_pretrained_cfg(arch).hf_hub_id
        where = f"https://huggingface.co/{hub}" if hub else "the timm model page"
        first = (str(exc).splitlines() or [""])[0]
        raise WeightsError(
            "imagenet",
            (
                f"timm could not download ImageNet weights for {arch} ({type(exc).__name__}: "
                f"{first}); they come from the Hugging Face hub and are unavailable offline. "
                f"Download model.safetensors from {where} on a connected machine and pass its "
                "path instead of 'imagenet' (set HF_HUB_OFFLINE=1 to fail fast without a network)"
            ),
        ) from exc
    return net.state_dict()


def _classifier_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Name prefixes of the classifier (``fc.`` and timm's ``pretrained_cfg['classifier']``)."""
    heads = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or ()
    heads = (heads,) if isinstance(heads, str) else tuple(heads)
    return tuple(sorted({f"{h}." for h in (*heads, "fc")}))


def _adapt(
    state: dict[str, torch.Tensor], model: nn.Module
) -> tuple[dict[str, torch.Tensor], bool]:
    """Sum an RGB first convolution to the model's input channels, when they differ."""
    key = first_conv_name(model) + ".weight"
    want = model.state_dict().get(key)
    have = state.get(key)
    if want is None or have is None or have.ndim != 4 or have.shape[1] != 3 or want.shape[1] == 3:
        return state, False
    return adapt_first_conv(state, model), True


def _check_shapes(
    source: str, layout: str, state: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]
) -> None:
    bad = [
        f"{k} {tuple(v.shape)} vs model {tuple(target[k].shape)}"
        for k, v in state.items()
        if k in target and v.shape != target[k].shape
    ]
    if bad:
        raise WeightsError(
            source,
            f"{len(bad)} shape mismatch(es) with layout {layout}: "
            f"{'; '.join(bad[:_SHOW])}; is the arch right?",
        )


def _names(label: str, names: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(names[:_SHOW]) + (", ..." if len(names) > _SHOW else "")
    return f"{len(names)} {label}" + (f" ({shown})" if names else "")
