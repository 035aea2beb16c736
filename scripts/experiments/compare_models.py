"""Compare the model files of two run / exploit folders tensor by tensor (docs/scale.md, the resume check at N = 100).

Usage: python scripts/experiments/compare_models.py A B [--out result.json]

For every ``model/*.safetensors`` and ``model/scenes/*.safetensors`` of A: whether B has it with the same tensor
names, bit-identical tensors, the same metadata (as a mapping) and the same file bytes. (safetensors writes its
metadata map in an order that may differ between processes, so equal tensors and metadata can come with other
file bytes.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch
from safetensors import safe_open


def compare(a: Path, b: Path) -> dict:
    files = sorted(p.relative_to(a) for p in (a / "model").rglob("*.safetensors"))
    out = {}
    for rel in files:
        pa, pb = a / rel, b / rel
        if not pb.is_file():
            out[str(rel)] = {"missing_in_b": True}
            continue
        with safe_open(str(pa), framework="pt") as fa, safe_open(str(pb), framework="pt") as fb:
            keys = sorted(fa.keys())
            same_keys = keys == sorted(fb.keys())
            differ = [k for k in keys if same_keys and not torch.equal(fa.get_tensor(k), fb.get_tensor(k))]
            out[str(rel)] = {
                "tensors": len(keys), "same_names": same_keys, "tensors_differing": differ,
                "same_metadata": fa.metadata() == fb.metadata(),
                "same_bytes": hashlib.sha256(pa.read_bytes()).digest() == hashlib.sha256(pb.read_bytes()).digest(),
            }
    ok = all(v.get("same_names") and not v.get("tensors_differing") and v.get("same_metadata") for v in out.values())
    return {"a": str(a), "b": str(b), "files": out, "identical_tensors_and_metadata": bool(out) and ok}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    res = compare(args.a, args.b)
    text = json.dumps(res, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
