"""The package's shape: layers point down, run files and label maps live in one place.

Parses every module of ``src/medssl`` with :mod:`ast` (nothing is imported), so the
checks see lazy imports inside functions too. See docs/architecture.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import medssl

SRC = Path(medssl.__file__).parent

#: Layers from the bottom: a module may import only from its own unit or a lower one.
LAYERS = (
    "medssl",  # the package root: version only
    "errors",
    "overrides",
    "artifacts",
    "data",
    "models",
    "configs",
    "hardware",
    "evaluation",
    "training",
    "analysis",
    "experiments",
    "cli",
    "__main__",
)
RANK = {name: i for i, name in enumerate(LAYERS)}

#: Files of run directories, caches and study folders: named only in medssl/artifacts/.
RUN_FILES = (
    "config.yaml",
    "prepare.json",
    "split.json",
    "budget.json",
    "init.json",
    "pool.json",
    "curve.csv",
    "best.safetensors",
    "best.json",
    "result.json",
    "metrics.json",
    "per_case.csv",
    "clinical.csv",
    "postprocessing.json",
    "last.ckpt",
    "previous.ckpt",
    "encoder_epoch_",
    "encoder_last",
    "manifest.json",
    "volumes.json",
    "slices.npz",
    "images.bin",
    "labels.bin",
    "plan.json",
    "ledger.jsonl",
    "failed.json",
    "results.parquet",
    "curves.parquet",
)
#: ACDC's structure names: only the label-set code may map values to them.
LABEL_NAMES = {"RV", "MYO", "LV"}


def _modules() -> list[tuple[str, Path, ast.Module]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, path, ast.parse(path.read_text(), filename=str(path))))
    return out


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "medssl"


def _imports(tree: ast.Module) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return [(line, m) for line, m in found if m == "medssl" or m.startswith("medssl.")]


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring constants (module, class and function docstrings)."""
    ids = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                ids.add(id(value))
    return ids


def _strings(tree: ast.Module) -> list[tuple[int, str]]:
    skip = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
    ]


MODULES = _modules()


def test_every_unit_has_a_layer():
    units = {_unit(name) for name, _, _ in MODULES}
    assert units <= set(RANK), f"units without a layer: {sorted(units - set(RANK))}"


def test_imports_point_down_the_layers():
    upward = []
    for name, path, tree in MODULES:
        src = _unit(name)
        for line, target in _imports(tree):
            dst = _unit(target)
            if dst != src and RANK[dst] > RANK[src]:
                upward.append(f"{path.relative_to(SRC)}:{line} {src} -> {dst} ({target})")
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_layer_check_catches_an_upward_import():
    tree = ast.parse("from medssl.training.finetune import finetune\n")
    ((_, target),) = _imports(tree)
    assert RANK[_unit(target)] > RANK["evaluation"]


def test_run_files_are_named_only_in_the_artifacts_layer():
    named = []
    for name, path, tree in MODULES:
        if name.startswith("medssl.artifacts"):
            continue
        for line, text in _strings(tree):
            hits = [f for f in RUN_FILES if f in text]
            if hits:
                named.append(f"{path.relative_to(SRC)}:{line} {hits}")
    assert not named, "run-file names outside medssl/artifacts:\n" + "\n".join(named)


def _label_literals(tree: ast.Module) -> list[tuple[int, list[str]]]:
    """Collection literals (dict, tuple, list, set) naming two or more ACDC structures:
    a label map or a structure list. (A lone ``"RV"`` may be the ACDC group.)"""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            items = [*node.keys, *node.values]
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            items = node.elts
        else:
            continue
        names = [i.value for i in items if isinstance(i, ast.Constant) and i.value in LABEL_NAMES]
        if len(set(names)) >= 2:
            found.append((node.lineno, names))
    return found


def test_the_label_map_is_defined_only_in_the_label_set_code():
    outside = [
        f"{path.relative_to(SRC)}:{line} {names}"
        for name, path, tree in MODULES
        if name != "medssl.artifacts.labels"
        for line, names in _label_literals(tree)
    ]
    assert not outside, "ACDC label maps outside artifacts/labels.py:\n" + "\n".join(outside)


@pytest.mark.parametrize(
    ("text", "hits"),
    [('m = {1: "RV", 2: "MYO"}', 1), ('s = ("RV", "MYO", "LV")', 1), ('g = ("NOR", "RV")', 0)],
)
def test_the_label_scan_sees_maps_not_group_names(text, hits):
    assert len(_label_literals(ast.parse(text))) == hits


def test_the_string_scan_skips_docstrings_only():
    tree = ast.parse('"""writes result.json"""\nopen("curve.csv")\n')
    assert [s for _, s in _strings(tree)] == ["curve.csv"]
