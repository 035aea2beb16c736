"""No code path of the package unpickles (docs/reliability.md, "No pickle is ever loaded"): weights and
checkpoints are read with safetensors and JSON only. A pickle can run code when it is loaded, so a file named
like a checkpoint must never reach one of these calls."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "latentscenes"

#: Calls that unpickle (torch.load and diffusers' from_pretrained read pickled .bin/.pt/.ckpt files).
UNPICKLING = re.compile(r"\btorch\.load\(|\bpickle\.loads?\(|^\s*import (c?pickle|dill|joblib)\b|"
                        r"^\s*from (c?pickle|dill|joblib) import|allow_pickle\s*=\s*True|\.from_pretrained\(|"
                        r"\bweights_only\s*=\s*False", re.M)


def test_the_package_calls_no_unpickling_function():
    hits = [f"{p.relative_to(PACKAGE.parent)}:{src[:m.start()].count(chr(10)) + 1}: {m.group(0).strip()}"
            for p in sorted(PACKAGE.rglob("*.py")) for src in [p.read_text()] for m in UNPICKLING.finditer(src)]
    assert not hits, hits
