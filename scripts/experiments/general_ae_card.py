"""Write the model card of the shipped general base autoencoder (`--ae shipped-general`, issue 15) from result files.

Every figure of the card's tables is read from `latentscenes ae eval` / `ae finetune` outputs and the pre-training
run's `summary.json`, so that the card cannot drift from the files it cites; the prose around them is this
script's. The three held-out sets (TORCS cars: a category no mix holds; Sweet Home 3D furniture: models held out
of the mix; FlightGear airliners: exploit airframes) are compared with the airliner-only `shipped` autoencoder and
with the weights the run started from, with 95 % paired bootstrap intervals over scenes.

Usage:
    python scripts/experiments/general_ae_card.py --folder latentscenes/autoencoder/weights/general \
        --summary runs/ae/NAME/summary.json --evals DIR/NAME_on-{D}.json --shipped docs/ae-runs/shipped_on-{D}.json \
        --start docs/ae-runs/s15_mixf-c16_on-{D}.json [--finetune FILE --finetune-shipped FILE] --body BODY.md

`{D}` stands for each dataset (fg128, torcs128, sh3d128). BODY.md holds the card's hand-written sections (how it
was made, when to use it), inserted after the generated tables.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from latentscenes.autoencoder.model import LatentAutoencoder
from latentscenes.evaluation.stats import format_interval, paired_bootstrap

DATASETS = [
    ("torcs128", "TORCS cars (a category in no pre-training set; 15 exploit cars x 8 test views)"),
    ("sh3d128", "Sweet Home 3D furniture (models held out of the mix; 40 scenes x 8 views)"),
    ("fg128", "FlightGear airliners (exploit airframes; 20 scenes x 8 test views)"),
]


def _per_scene(res: dict) -> dict[str, float]:
    return {sid: float(rec["psnr"]) for sid, rec in res["per_scene"].items()}


def _load(pattern: str, d: str) -> dict:
    return json.loads(Path(pattern.format(D=d)).read_text())


def eval_table(evals: str, shipped: str, start: str) -> str:
    """Markdown table of the general model against `shipped` and its start, per dataset and resolution."""
    rows = ["| held-out views | px | `shipped` (airliners only) | start (71 min on the mix) | **`shipped-general`** "
            "| minus `shipped` [95 %] | minus start [95 %] |", "|---|---:|---:|---:|---:|---|---|"]
    for d, label in DATASETS:
        g, s, st = _load(evals, d), _load(shipped, d), _load(start, d)
        for res in sorted(g["results"], key=int, reverse=True):
            gr, sr, str_ = g["results"][res], s["results"][res], st["results"][res]
            if not (set(gr["per_scene"]) == set(sr["per_scene"]) == set(str_["per_scene"])):
                raise SystemExit(f"{d} at {res} px: the files hold different scenes")
            vs_shipped = paired_bootstrap(_per_scene(gr), _per_scene(sr))
            vs_start = paired_bootstrap(_per_scene(gr), _per_scene(str_))
            rows.append(
                f"| {label} | {res} | {sr['psnr']:.2f} / {sr['chroma_err']:.3f} | {str_['psnr']:.2f} / "
                f"{str_['chroma_err']:.3f} | **{gr['psnr']:.2f}** / {gr['chroma_err']:.3f} (SSIM {gr['ssim']:.4f}) | "
                f"{format_interval(vs_shipped)} | {format_interval(vs_start)} |"
            )
    return "\n".join(rows)


def finetune_rows(general_ft: str | None, shipped_ft: str | None) -> str:
    if not general_ft:
        return ""
    rows = ["| start of `ae finetune` | px | before | after | change |", "|---|---:|---:|---:|---:|"]
    for label, path in (("`shipped-general`", general_ft), ("`shipped`", shipped_ft)):
        if not path:
            continue
        r = json.loads(Path(path).read_text())
        for res in sorted(r["after"], key=int, reverse=True):
            b, a = r["before"][res]["psnr"], r["after"][res]["psnr"]
            rows.append(f"| {label} ({r['steps']} steps, {r['wall_s'] / 60:.1f} min) | {res} | {b:.2f} | {a:.2f} | {a - b:+.2f} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", type=Path, required=True, help="holds base_ae.safetensors; MODEL_CARD.md is written there")
    ap.add_argument("--summary", type=Path, required=True, help="summary.json of the pre-training run")
    ap.add_argument("--evals", required=True, help="ae eval files of the general model, {D} = dataset")
    ap.add_argument("--shipped", required=True, help="ae eval files of `shipped`, {D} = dataset")
    ap.add_argument("--start", required=True, help="ae eval files of the start weights, {D} = dataset")
    ap.add_argument("--finetune", default=None, help="finetune.json of `ae finetune` from the general model")
    ap.add_argument("--finetune-shipped", default=None, help="the same from `shipped` (comparison)")
    ap.add_argument("--body", type=Path, required=True, help="hand-written sections (markdown)")
    a = ap.parse_args()

    weights = a.folder / "base_ae.safetensors"
    ae = LatentAutoencoder.load(weights)
    summary = json.loads(a.summary.read_text())
    table = eval_table(a.evals, a.shipped, a.start)
    bg = ", ".join(f"{v:.3f}" for v in ae.latent_background().tolist())
    arch = ae.vae_config
    card = [
        "# General base autoencoder `general/base_ae.safetensors` (`--ae shipped-general`)",
        "",
        "A base image autoencoder for objects other than airliners (issue 15): the airliner-only `shipped` one grown to",
        "16 latent channels and pre-trained on the pre-training mix (`latentscenes data build pretrain-mix`: FlightGear",
        "airliners of the train split, Sweet Home 3D furniture, pybullet's random URDF objects, procedural textured",
        "primitives; docs/autoencoder.md). TORCS cars were never in any of its training sets: they measure how it",
        "generalises to a category it has not seen. Use it with `--ae shipped-general` (`train`, `ae finetune`, `ae eval`,",
        "`bench`); the pre-trained 3Da-AE packages (`--run shipped`, `--run shipped-128`) hold its 71-minute start as",
        "their base autoencoder.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `AutoencoderKL`, block_out_channels {arch['block_out_channels']}, layers_per_block "
        f"{arch['layers_per_block']}, GroupNorm {arch['norm_num_groups']} groups, mid-block attention, "
        f"{ae.latent_channels} latent channels, 8x down-sampling |",
        f"| parameters | encoder + quant_conv {ae.num_parameters('encoder'):,}; post_quant_conv + decoder "
        f"{ae.num_parameters('decoder'):,} |",
        f"| file | {weights.stat().st_size / 2**20:.1f} MiB, fp32 safetensors |",
        f"| shapes | `[B,3,H,W]` in [-1,1] -> raw latent `[B,{ae.latent_channels},H/8,W/8]` (posterior mean) -> `[B,3,H,W]` |",
        f"| latent normalisation | `tanh(s z)` with s = {ae.tanh_scale:g} (from the trained latents: s * std = 0.35) |",
        f"| latent background | [{bg}] |",
        f"| last stage | {summary['steps']:,} steps in {summary['wall_s'] / 60:.1f} min |",
        "",
        "## Held-out reconstruction (PSNR dB / colour error; `latentscenes ae eval`, 95 % paired bootstrap over scenes)",
        "",
        table,
        "",
    ]
    ft = finetune_rows(a.finetune, a.finetune_shipped)
    if ft:
        card += ["## Adapted to TORCS cars with `latentscenes ae finetune` (held-out cars, before / after)", "", ft, ""]
    card += [a.body.read_text().rstrip(), ""]
    (a.folder / "MODEL_CARD.md").write_text("\n".join(card))
    print(f"wrote {a.folder / 'MODEL_CARD.md'}")


if __name__ == "__main__":
    main()
