"""Compare `latentscenes ae eval` result files on the same views: PSNR / SSIM / colour error per resolution, and
the PSNR difference to a reference with its 95 % paired bootstrap interval over scenes (issue 15).

Usage:
    python scripts/experiments/ae_eval_compare.py --ref LABEL=FILE LABEL=FILE ... [--out table.md]

Every file must be an `ae eval` output of the same dataset, scenes and views (checked: the same scene ids per
resolution); the reference's row shows its own figures, the others' rows add "minus ref".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from latentscenes.evaluation.stats import format_interval, paired_bootstrap


def _load(spec: str) -> tuple[str, dict]:
    label, _, path = spec.partition("=")
    if not path:
        raise SystemExit(f"{spec}: give LABEL=FILE")
    return label, json.loads(Path(path).read_text())


def _per_scene(res: dict) -> dict[str, float]:
    return {sid: float(rec["psnr"]) for sid, rec in res["per_scene"].items()}


def compare(ref: tuple[str, dict], others: list[tuple[str, dict]]) -> str:
    ref_label, ref_data = ref
    lines = [f"data {ref_data['data']} ({ref_data['scenes']} scenes, {ref_data['views']} views)", "",
             "| autoencoder | resolution | PSNR | SSIM | colour error | PSNR minus " + ref_label + " |",
             "|---|---:|---:|---:|---:|---|"]
    for res_key in sorted(ref_data["results"], key=int):
        base = ref_data["results"][res_key]
        for label, data in [ref] + others:
            if data["data"] != ref_data["data"] or data["views"] != ref_data["views"]:
                raise SystemExit(f"{label}: another dataset or views than {ref_label}")
            r = data["results"][res_key]
            if set(r["per_scene"]) != set(base["per_scene"]):
                raise SystemExit(f"{label}: other scenes than {ref_label} at {res_key} px")
            diff = "-" if label == ref_label else format_interval(paired_bootstrap(_per_scene(r), _per_scene(base)))
            lines.append(f"| {label} | {res_key} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['chroma_err']:.4f} | {diff} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", required=True, help="LABEL=FILE of the reference")
    ap.add_argument("others", nargs="+", help="LABEL=FILE of each other autoencoder")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    text = compare(_load(a.ref), [_load(s) for s in a.others])
    print(text)
    if a.out:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
