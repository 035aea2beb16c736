"""The scene browser's data (latentscenes/viewer/scenes.py) and the display images (latentscenes/viewer/images.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentscenes.viewer import images as vimg
from latentscenes.viewer.scenes import (
    MetricsError, SceneRow, discover_metrics, filter_rows, read_psnr, row_label, scene_rows,
)


def _eval(scenes: dict) -> dict:
    """The shape `latentscenes eval` writes (evaluate_model): scenes[id]["mean"]["psnr"]."""
    return {"model": {"kind": "latent", "name": "x"}, "split": "test", "groups": {}, "overall": {},
            "scenes": {s: {"group": "exploit", "n_views": 2, "mean": {"psnr": p, "ssim": 0.9}, "views": []}
                       for s, p in scenes.items()}}


def test_read_psnr_of_an_eval_file_and_a_benchmark(tmp_path):
    f = tmp_path / "m.json"
    f.write_text(json.dumps(_eval({"a": 20.5, "b": 18.0, "c": float("nan")}), allow_nan=True))
    assert read_psnr(f) == {"a": 20.5, "b": 18.0}  # non-finite values dropped
    bench = tmp_path / "bench" / "results.json"
    bench.parent.mkdir()
    bench.write_text(json.dumps({"evaluations": {"ours": _eval({"a": 21.0}), "rgb": _eval({"a": 25.0, "z": 1.0}),
                                                 "ours-micro": _eval({"a": 19.0})}}))
    run_dir = tmp_path / "bench" / "runs" / "rgb"
    assert read_psnr(bench, run_dir) == {"a": 25.0, "z": 1.0}  # the method named by the run's folder
    assert read_psnr(bench, tmp_path / "bench" / "runs" / "ours-micro" / "exploit") == {"a": 19.0}
    assert read_psnr(bench, tmp_path / "elsewhere", run_scenes=["z"]) == {"a": 25.0, "z": 1.0}  # the only one with z
    with pytest.raises(MetricsError, match="3 methods"):
        read_psnr(bench, tmp_path / "elsewhere", run_scenes=["a"])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(MetricsError, match="not a readable JSON"):
        read_psnr(bad)
    bad.write_text(json.dumps({"table1": {}}))
    with pytest.raises(MetricsError, match="not an evaluation file"):
        read_psnr(bad)
    with pytest.raises(MetricsError, match="no such metrics file"):
        read_psnr(tmp_path / "missing.json")


def test_discover_metrics_beside_demo_eval_and_bench_runs(tmp_path):
    demo = tmp_path / "demo"
    (demo / "runs" / "exploit").mkdir(parents=True)
    (demo / "runs" / "rgb").mkdir(parents=True)
    assert discover_metrics(demo / "runs" / "exploit", latent=True) is None
    (demo / "metrics_ours.json").write_text("{}")
    (demo / "metrics_rgb.json").write_text("{}")
    assert discover_metrics(demo / "runs" / "exploit", latent=True) == (demo / "metrics_ours.json").resolve()
    assert discover_metrics(demo / "runs" / "rgb", latent=False) == (demo / "metrics_rgb.json").resolve()
    (demo / "runs" / "rgb" / "metrics.json").write_text("{}")  # latentscenes eval --out RUN/metrics.json wins
    assert discover_metrics(demo / "runs" / "rgb", latent=False) == (demo / "runs" / "rgb" / "metrics.json").resolve()
    bench = tmp_path / "bench"
    (bench / "runs" / "ours" / "exploit").mkdir(parents=True)
    (bench / "results.json").write_text("{}")
    assert discover_metrics(bench / "runs" / "ours" / "exploit", latent=True) == (bench / "results.json").resolve()
    assert discover_metrics(tmp_path / "lonely", latent=True) is None


def test_rows_sorted_worst_first_filtered_and_labelled():
    ids = ["s0", "s1", "s2", "plane-a", "plane-b"]
    rows = scene_rows(ids, [{"s0": 25.0, "s1": 12.5, "plane-a": 30.0, "plane-b": 12.5}])
    assert [r.scene_id for r in rows] == ["s1", "plane-b", "s0", "plane-a", "s2"]  # ties in run order, no PSNR last
    assert [r.scene_id for r in filter_rows(rows, "PLANE")] == ["plane-b", "plane-a"]
    assert [r.scene_id for r in filter_rows(rows, "plane b")] == ["plane-b"]  # every word must match
    assert filter_rows(rows, "") == rows and filter_rows(rows, "zzz") == []
    assert row_label(rows[0]) == "s1 · 12.50 dB"
    assert row_label(rows[-1]) == "s2"
    assert row_label(SceneRow("x", (20.0, None))) == "x · 20.00 | - dB"
    assert [r.scene_id for r in scene_rows(["b", "a"], [{}])] == ["b", "a"]  # no evaluation: run order


def test_mode_images():
    out = {"rgb": np.full((16, 24, 3), 0.5, np.float32),
           "latent": np.stack([np.full((2, 3), v, np.float32) for v in (-1.0, 0.0, 1.0, 0.3)], axis=-1),
           "depth": np.array([[1.0, 2.0, 3.0]] * 2, np.float32), "opacity": np.array([[1.0, 1.0, 0.0]] * 2, np.float32)}
    rgb = vimg.mode_image(out, "rgb", (16, 24), 1.0, 3.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (16, 24, 3) and int(rgb[0, 0, 0]) == 128
    lat = vimg.mode_image(out, "latent", (16, 24), 1.0, 3.0)
    assert lat.shape == (16, 24, 3) and tuple(lat[5, 5]) == (0, 128, 255)  # (v + 1) / 2 of channels 0..2
    dep = vimg.mode_image(out, "depth", (16, 24), 1.0, 3.0)
    from matplotlib import colormaps

    assert tuple(dep[0, 0]) == tuple((np.asarray(colormaps["plasma"](0.0)[:3]) * 255 + 0.5).astype(np.uint8))
    assert tuple(dep[0, 23]) == (255, 255, 255)  # opacity 0: white
    op = vimg.mode_image(out, "opacity", (16, 24), 1.0, 3.0)
    assert tuple(op[0, 0]) == (255, 255, 255) and tuple(op[0, 23]) == (0, 0, 0)
    with pytest.raises(KeyError):
        vimg.mode_image({"rgb": out["rgb"]}, "latent", (16, 24), 1.0, 3.0)  # an RGB run has no latent
    with pytest.raises(ValueError, match="unknown display mode"):
        vimg.mode_image(out, "normals", (16, 24), 1.0, 3.0)


def test_error_letterbox_and_contact_sheet():
    a = np.zeros((4, 4, 3), np.float32)
    b = a.copy()
    b[0, 0] = 1.0
    err = vimg.error_image(a, b)
    assert tuple(err[1, 1]) == tuple(vimg.error_image(a, a)[0, 0])  # no error: the map's dark end
    assert err[0, 0].astype(int).sum() > err[1, 1].astype(int).sum() + 300  # error >= 0.25: bright
    with pytest.raises(ValueError, match="shapes differ"):
        vimg.error_image(a, np.zeros((4, 5, 3)))
    img = np.full((10, 20, 3), 7, np.uint8)
    lb = vimg.letterbox(img, 3.0)
    assert lb.shape == (10, 30, 3) and (lb[:, 5:25] == 7).all() and (lb[:, :5] == 48).all()
    assert vimg.letterbox(img, 1.0).shape == (20, 20, 3)
    sheet = vimg.contact_sheet([np.zeros((8, 8, 3), np.uint8), None], ["a", "b"], cols=3, size=16)
    assert sheet.shape == (16 + 14, 3 * 16 + 2 * 4, 3)
    assert (sheet[:16, :16] == 0).all() and (sheet[:16, 20:36] == 200).all()  # a thumbnail, a grey placeholder
