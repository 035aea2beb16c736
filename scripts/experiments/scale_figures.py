"""Collect the measured figures of one exploit batch into a small results JSON (docs/scale.md, docs/scale-runs/).

Usage:
    python scripts/experiments/scale_figures.py --batch runs/scale/n100 --time runs/scale/n100.time \
        --eval runs/scale/n100.eval.json --command "latentscenes exploit ..." --out docs/scale-runs/n100.json

Reads only what the runs wrote: the batch's manifest.json (stages, timings, bytes, image storage), the file written
by ``/usr/bin/time -f "%M KiB %e s %U user %S sys"`` around the command (peak RSS of the process, wall and CPU
seconds), the batch's latent cache file size, and optionally ``latentscenes eval`` output (held-out metrics).
Nothing here is typed in by hand.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path


def read_time(path: Path) -> dict:
    """``/usr/bin/time`` output: peak RSS (KiB), wall seconds, and user / sys CPU seconds when recorded."""
    text = path.read_text()
    out = {}
    m = re.search(r"(\d+) KiB", text)
    if m:
        out["peak_rss_kib"] = int(m.group(1))
    m = re.search(r"([\d.]+) s\b", text)
    if m:
        out["wall_s"] = float(m.group(1))
    for k in ("user", "sys"):
        m = re.search(rf"([\d.]+) {k}", text)
        if m:
            out[f"{k}_s"] = float(m.group(1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=Path, required=True)
    ap.add_argument("--time", type=Path, required=True)
    ap.add_argument("--eval", type=Path, default=None)
    ap.add_argument("--command", required=True, help="the command that produced the batch (recorded as given)")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()

    m = json.loads((a.batch / "manifest.json").read_text())
    n = len(m["scene_ids"])
    stages = {k: {f: v.get(f) for f in ("steps", "train_s", "step_ms_median", "step_ms_mean", "checkpoint_s",
                                         "peak_rss_mb", "resumed_from")}
              for k, v in m["stages"].items()}
    train_s = sum(v["train_s"] for v in m["stages"].values())
    cache = a.batch / "cache" / "latents-exploit.safetensors"
    b = m["bytes"]
    storage = m.get("image_storage", {})
    per_scene = {
        "images": storage["bytes"] / n if storage else None,
        "latent_cache_file": cache.stat().st_size / n if cache.is_file() else None,
        "scene_params": b["per_scene"],
        # LazySceneAdam: exp_avg and exp_avg_sq of each per-scene row (2 x its parameters) + an int64 step count per
        # parameter group (local planes, coefficients)
        "optimizer_state": 2 * b["per_scene"] + 2 * 8,
    }
    res = {
        "command": a.command,
        "note": a.note,
        "n_scenes": n,
        "n_views_per_scene": m["n_views"] / n,
        "view_copies": m.get("view_copies", 1),
        "image_size": m.get("image_size"),
        "image_storage": storage,
        "process": read_time(a.time),
        "latent_cache_s": m.get("latent_cache_s"),
        "train_s": train_s,
        "seconds_per_scene": {"train": train_s / n, "train_and_cache": (train_s + m.get("latent_cache_s", 0.0)) / n},
        "stages": stages,
        "bytes": b,
        "bytes_per_scene": per_scene,
    }
    proc = res["process"]
    if "wall_s" in proc:
        res["seconds_per_scene"]["wall"] = proc["wall_s"] / n
    if a.eval is not None:
        ev = json.loads(a.eval.read_text())
        o = ev["overall"]
        res["heldout"] = {"n_scenes": o["n_scenes"], "n_views": o["n_views"], "split": ev.get("split"),
                          **{k: o["mean"].get(k) for k in ("psnr", "ssim", "latent_psnr", "ae_psnr")}}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: res[k] for k in ("n_scenes", "process", "seconds_per_scene")}, indent=1))


if __name__ == "__main__":
    main()
