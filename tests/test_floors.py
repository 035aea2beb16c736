"""The floors of docs/ARCHITECTURE.md hold: no module imports a floor above its own (function-local imports included).

Read from the source with ``ast`` (nothing is imported), so a new upward import fails here with its file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import latentscenes

ROOT = Path(latentscenes.__file__).resolve().parent

#: Bottom (0) to top, as drawn in docs/ARCHITECTURE.md "Floors" (``training/loop.py`` is drawn apart but shares the
#: training package's floor here: it imports training's losses and logger only).
FLOORS: dict[str, int] = {
    "metrics": 0, "config": 0, "methods": 0, "utils": 0,
    "autoencoder": 1, "scenes": 1, "rendering": 1, "data": 1, "pretrained": 1,
    "training": 2, "baselines": 2,
    "evaluation": 3,
    "bench": 4,
    "experiments": 5,
    "cli": 6, "viewer": 6, "api": 6, "__init__": 6, "__main__": 6,
}


#: Known exceptions, each with its reason (a new one needs a reason here and in docs/ARCHITECTURE.md).
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    # Folder ownership: a folder written before ownership markers existed is recognised by the files its owner
    # writes, read with the format owners' own identifiers (light run_format; fit_format imported on use).
    ("utils/folders.py", "latentscenes.training"): "legacy folders without a marker",
    ("utils/folders.py", "latentscenes.baselines.rgb"): "legacy folders without a marker",
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out += [(node.lineno, n) for n in names if n == "latentscenes" or n.startswith("latentscenes.")]
    return out


def _floor(parts: list[str]) -> int:
    return FLOORS[parts[0].removesuffix(".py")]


def test_every_package_has_a_floor():
    tops = {p.name.removesuffix(".py") for p in ROOT.iterdir() if p.name.endswith(".py") or (p / "__init__.py").exists()}
    assert tops <= set(FLOORS), f"no floor for {sorted(tops - set(FLOORS))}: add it to FLOORS and ARCHITECTURE.md"


def test_no_module_imports_a_floor_above_its_own():
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        own = _floor(list(rel.parts))
        for line, name in _imports(path):
            parts = name.split(".")[1:]
            if not parts:  # `import latentscenes`: the package's top (its __init__ is light)
                continue
            if _floor(parts) > own and (rel.as_posix(), name) not in ALLOWED_UPWARD:
                upward.append(f"{rel}:{line} imports {name} (floor {_floor(parts)} > {own})")
    assert not upward, "\n".join(upward)
