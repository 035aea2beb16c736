"""Memory of the training views' table with its pixel codes in the heap vs memory-mapped from the run's codes
file (issue 12; docs/scale.md "Memory model"). Loads a dataset split the way `latentscenes exploit` does
(`pipeline.load_view_table`, one scene at a time), in a fresh process per mode, then reads every row once (an
epoch's batches touch every page) and reports the process's anonymous (heap) and file-backed resident memory.

Usage: python scripts/experiments/table_memory.py DATA SPLIT N OUT.json [--resolution 64]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _status() -> dict[str, int]:
    got = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            got[k] = int(v.split()[0]) * 1024
    return got


def one(data: str, split: str, n: int, resolution: int, on_disk: bool) -> dict:
    import torch

    from latentscenes.training.config import preset_tiny_cpu
    from latentscenes.training.pipeline import load_view_table
    from latentscenes.utils.memory import release_large_frees_to_os

    release_large_frees_to_os()  # as the `latentscenes` command does at start-up
    cfg = preset_tiny_cpu()
    cfg.data.resolution = resolution
    before = _status()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        table, _, _, _ = load_view_table(cfg, split, n, data,
                                         codes_path=Path(tmp) / "images.safetensors" if on_disk else None)
        load_s = time.perf_counter() - t0
        after_load = _status()
        for i in range(0, table.n_source_views, 512):  # every row once, as an epoch's batches do
            table.batch_images(torch.arange(i, min(i + 512, table.n_source_views)))
        after_epoch = _status()
        return {"on_disk": on_disk, "scenes": len(table.scene_ids), "source_views": table.n_source_views,
                "storage": table.storage(), "load_s": round(load_s, 1), "before": before,
                "after_load": after_load, "after_reading_every_row": after_epoch,
                "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data"), ap.add_argument("split"), ap.add_argument("n", type=int), ap.add_argument("out")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--one", choices=["heap", "disk"])
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.data, a.split, a.n, a.resolution, a.one == "disk")))
        return
    res = {}
    for mode in ("heap", "disk"):  # a fresh process each: peak RSS is per process
        out = subprocess.run([sys.executable, __file__, a.data, a.split, str(a.n), a.out, "--resolution",
                              str(a.resolution), "--one", mode], check=True, capture_output=True, text=True).stdout
        res[mode] = json.loads(out.strip().splitlines()[-1])
    res["command"] = " ".join(["python", "scripts/experiments/table_memory.py", *sys.argv[1:]])
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    for mode in ("heap", "disk"):
        r = res[mode]
        print(f"{mode}: {r['scenes']} scenes, load {r['load_s']} s, peak RSS {r['peak_rss'] / 2**20:.0f} MiB, "
              f"anon after an epoch {r['after_reading_every_row']['RssAnon'] / 2**20:.0f} MiB, "
              f"file {r['after_reading_every_row']['RssFile'] / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
