"""Smoke test of ``latentscenes demo --preset test`` on a tiny generated dataset (sphere scenes, SRN layout)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from latentscenes.config import ConfigError


def write_sphere_dataset(root: Path, n_train: int = 2, n_exploit: int = 2, views: int = 6, test_views: int = 2,
                         resolution: int = 32) -> Path:
    """A dataset folder like the FlightGear builder's: SRN scenes + manifest.json with train/exploit splits."""
    from latentscenes.data.flightgear import write_srn_scene
    from latentscenes.scenes.synthetic import make_sphere_scene

    rng = np.random.default_rng(0)
    ids = {"train": [f"tr{i}" for i in range(n_train)], "exploit": [f"ex{i}" for i in range(n_exploit)]}
    scenes = {}
    for k, sid in enumerate(ids["train"] + ids["exploit"]):
        spheres = [((float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.2, 0.2))),
                    float(rng.uniform(0.2, 0.4)), tuple(float(c) for c in rng.uniform(0.1, 0.9, 3))) for _ in range(2)]
        sv = make_sphere_scene(sid, n_views=views + test_views, n_test=test_views, resolution=resolution,
                               spheres=spheres, seed=k)
        write_srn_scene(root / sid, [im.permute(1, 2, 0).numpy() for im in sv.images],
                        [m[0].numpy() for m in sv.masks], sv.c2w.numpy(), sv.K[0].numpy(), sv.split, {"kind": "spheres"})
        scenes[sid] = {"split": "train" if sid.startswith("tr") else "exploit"}
    manifest = {"format": "srn", "name": "spheres", "scenes": scenes, "splits": ids,
                "render": {"near": 0.5, "far": 2.1, "box_size": 2.0},
                "camera": {"distance": 1.3, "elevation_deg": [10, 30]}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    """One ``demo --preset test`` run shared by the tests below (it trains every stage for a few steps)."""
    from latentscenes.cli.main import app

    tmp = tmp_path_factory.mktemp("demo")
    data = write_sphere_dataset(tmp / "data")
    out = tmp / "report"
    # fewer steps than the test preset: every stage still runs (and is checkpointed, reloaded, evaluated)
    few = ["pipeline.warmup.steps=3", "pipeline.joint.steps=2", "pipeline.exploit.fit.steps=3",
           "pipeline.exploit.finetune.steps=2", "rgb.steps=3"]
    res = CliRunner().invoke(app, ["demo", "--preset", "test", "--data", str(data), "--out", str(out),
                                   *[a for kv in few for a in ("--set", kv)]])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return data, out


def test_demo_test_preset_end_to_end(demo_out):
    data, out = demo_out
    text = (out / "report.md").read_text()
    for phase in ("data", "train", "exploit", "rgb_baseline", "evaluate", "render", "report"):
        assert f"| {phase} |" in text, phase
    assert "| 3Da-AE (ours) | 2 |" in text and "| Tri-Planes (RGB) | 1 |" in text
    assert "rendered at 2 x 2 sub-latent-pixel offsets" in text  # the test preset's render.offset_ensemble
    # how to open the viewer on these runs (latentscenes view finds metrics_ours/rgb.json beside them)
    assert f"`latentscenes view --run {out / 'runs' / 'exploit'} --run {out / 'runs' / 'rgb'}`" in text
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links and all((out / l).is_file() for l in links), links
    m = json.loads((out / "metrics_ours.json").read_text())
    assert set(m["groups"]) == {"train", "exploit"}
    assert m["groups"]["exploit"]["n_scenes"] == 2 and m["groups"]["train"]["n_scenes"] == 2
    assert m["overall"]["n_views"] == 4 * 2  # 2 held-out views per scene
    r = json.loads((out / "metrics_rgb.json").read_text())
    from latentscenes.data import MultiSceneDataset
    from latentscenes.experiments.demo import most_visible

    ds = MultiSceneDataset(data, resolution=32)
    top = most_visible([ds.load(i) for i in ("ex0", "ex1")])[0]
    assert list(r["scenes"]) == [top]  # the baseline fits the exploit scene showing the most object pixels
    t = json.loads((out / "timings.json").read_text())
    assert t["train"] > 0 and t["exploit"] > 0
    assert (out / "grid.png").is_file() and (out / "turntables" / top / "turntable.gif").is_file()
    cfg = json.loads((out / "demo_config.json").read_text())
    assert cfg["pipeline"]["data"]["n_train_scenes"] == 2 and cfg["rgb"]["resolution"] == 32
    assert cfg["pipeline"]["joint"]["steps"] == 2 and cfg["rgb"]["steps"] == 3  # --set routed to each config
    man = json.loads((out / "runs" / "train" / "manifest.json").read_text())
    assert man["stages"]["joint"]["steps"] == 2


def test_eval_command_on_the_demo_runs(demo_out, tmp_path):
    from latentscenes.cli.main import app

    data, out = demo_out
    runner = CliRunner()
    # an exploit batch with --scenes all: its own scenes plus its training run's, each with its own decoder
    res = runner.invoke(app, ["eval", "--run", str(out / "runs" / "exploit"), "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "m.json").read_text())
    demo_m = json.loads((out / "metrics_ours.json").read_text())
    for sid in ("tr0", "tr1", "ex0", "ex1"):  # deterministic: the same numbers as the demo's own evaluation
        assert m["scenes"][sid]["mean"]["psnr"] == pytest.approx(demo_m["scenes"][sid]["mean"]["psnr"], abs=1e-4)
        assert m["scenes"][sid]["mean"]["latent_psnr"] == pytest.approx(demo_m["scenes"][sid]["mean"]["latent_psnr"], abs=1e-4)
    res = runner.invoke(app, ["eval", "--run", str(out / "runs" / "exploit"), "--scenes", "exploit",
                              "--out", str(tmp_path / "e.json")])
    assert res.exit_code == 0 and set(json.loads((tmp_path / "e.json").read_text())["groups"]) == {"exploit"}
    res = runner.invoke(app, ["eval", "--run", str(out / "runs" / "train"), "--scenes", "exploit", "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "training run" in res.output
    # the RGB baseline folder does not record its dataset: --data is needed, and then the numbers match
    res = runner.invoke(app, ["eval", "--run", str(out / "runs" / "rgb"), "--out", str(tmp_path / "r.json")])
    assert res.exit_code == 2 and "--data" in res.output
    res = runner.invoke(app, ["eval", "--run", str(out / "runs" / "rgb"), "--data", str(data), "--out", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "r.json").read_text())
    demo_r = json.loads((out / "metrics_rgb.json").read_text())
    (sid,) = demo_r["scenes"]
    assert r["scenes"][sid]["mean"]["psnr"] == pytest.approx(demo_r["scenes"][sid]["mean"]["psnr"], abs=1e-4)
    res = runner.invoke(app, ["eval", "--run", str(tmp_path / "missing"), "--out", str(tmp_path / "y.json")])
    assert res.exit_code == 2 and "not found" in res.output


def test_eval_offset_ensemble_override(demo_out, tmp_path):
    """The test preset decodes at 2 x 2 offsets (as tiny-cpu); --offset-ensemble 1 is one render and one decode."""
    from latentscenes.cli.main import app
    from latentscenes.training.pipeline import load_run_config

    data, out = demo_out
    run = out / "runs" / "exploit"
    assert load_run_config(run).render.offset_ensemble == 2
    runner = CliRunner()
    res = runner.invoke(app, ["eval", "--run", str(run), "--scenes", "exploit", "--offset-ensemble", "1",
                              "--out", str(tmp_path / "one.json")])
    assert res.exit_code == 0, res.output
    one = json.loads((tmp_path / "one.json").read_text())["scenes"]
    demo_m = json.loads((out / "metrics_ours.json").read_text())["scenes"]
    for sid in ("ex0", "ex1"):
        assert one[sid]["mean"]["psnr"] != pytest.approx(demo_m[sid]["mean"]["psnr"], abs=1e-4)
        assert one[sid]["mean"]["latent_psnr"] == pytest.approx(demo_m[sid]["mean"]["latent_psnr"], abs=1e-4)
    res = runner.invoke(app, ["eval", "--run", str(run), "--offset-ensemble", "3", "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "--offset-ensemble" in res.output


def test_render_command_on_the_demo_runs(demo_out, tmp_path):
    import imageio.v3 as iio

    from latentscenes.cli.main import app

    data, out = demo_out
    runner = CliRunner()
    res = runner.invoke(app, ["render", "--run", str(out / "runs" / "exploit"), "--scene", "ex1", "--out", str(tmp_path / "t"),
                              "--frames", "5", "--views", "2", "--size", "64"])
    assert res.exit_code == 0, res.output
    frames = iio.imread(tmp_path / "t" / "turntable.gif", index=None)
    assert frames.shape[1:3] == (64, 64)
    assert (tmp_path / "t" / "view_1_panel.png").is_file()
    assert "radius 1.30" in res.output  # the dataset manifest's camera distance
    res = runner.invoke(app, ["render", "--run", str(out / "runs" / "exploit"), "--scene", "nope", "--out", str(tmp_path / "u")])
    assert res.exit_code == 2 and "nope" in res.output
    # one decode per frame instead of the run's 2 x 2 offsets: other pixels, same size
    res = runner.invoke(app, ["render", "--run", str(out / "runs" / "exploit"), "--scene", "ex1", "--out", str(tmp_path / "o"),
                              "--frames", "5", "--views", "2", "--size", "64", "--offset-ensemble", "1"])
    assert res.exit_code == 0, res.output
    one = iio.imread(tmp_path / "o" / "turntable.gif", index=None)
    assert one.shape == frames.shape and (one != frames).any()


def test_demo_settings_routing_and_errors():
    from latentscenes.experiments.demo import resolve_settings, split_overrides

    ov = split_overrides(["n_train=3", "pipeline.warmup.steps=7", "rgb.steps=5", "build.workers=1", "demo.n_rgb=1"])
    assert ov == {"demo": ["n_train=3", "n_rgb=1"], "pipeline": ["warmup.steps=7"], "rgb": ["steps=5"], "build": ["workers=1"]}
    s = resolve_settings("test", ["n_train=3", "pipeline.warmup.steps=7", "rgb.steps=5"])
    assert s.demo.n_train == 3 and s.pipeline.data.n_train_scenes == 3 and s.pipeline.warmup.steps == 7
    assert s.rgb.steps == 5 and s.rgb.resolution == s.demo.resolution == s.pipeline.data.resolution
    with pytest.raises(ConfigError, match="n_rgb"):
        resolve_settings("test", ["n_rgb=5"])
    with pytest.raises(ConfigError):
        resolve_settings("test", ["pipeline.nope=1"])
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve_settings("fast")


def test_demo_cpu_128_preset_uses_the_128_px_package_and_the_benchmarks_baseline():
    from latentscenes.experiments.demo import resolve_settings

    s = resolve_settings("cpu-128")
    # the package's own config (16x16 latents at 128 px), not the tiny-cpu pipeline's
    assert s.demo.pretrained == "shipped-128" and s.pipeline.data.resolution == s.rgb.resolution == 128
    assert s.pipeline.data.n_exploit_scenes == s.demo.n_rgb == 6
    assert s.rgb.steps == 1600  # the preset's own RGB override (the cpu-128 benchmark's steps) ...
    assert resolve_settings("cpu-128", ["rgb.steps=7"]).rgb.steps == 7  # ... under the command line's
    assert resolve_settings("tiny-cpu").rgb.steps != 1600


def test_demo_refuses_a_dataset_with_too_few_scenes(tmp_path):
    from latentscenes.cli.main import app

    data = write_sphere_dataset(tmp_path / "data", n_train=2, n_exploit=1)
    res = CliRunner().invoke(app, ["demo", "--preset", "test", "--data", str(data), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "exploit-split" in res.output and "needs" in res.output


def test_instances_needed_is_the_smallest_sufficient_subset():
    from latentscenes.data.flightgear import FlightGearBuildConfig, assign_splits, enumerate_instances, select_instances
    from latentscenes.data.subsets import instances_needed

    cfg = FlightGearBuildConfig()
    if not Path(cfg.fg_root).is_dir():
        pytest.skip("FlightGear aircraft not installed (scripts/setup.sh installs flightgear-data-ai)")
    inst, _ = enumerate_instances(cfg.fg_root)
    splits, _ = assign_splits(inst, cfg.exploit_mesh_fraction, cfg.seed)

    def counts(n):
        ch = select_instances(inst, splits, n, cfg.seed)
        ex = sum(1 for i in ch if splits[i.scene_id] == "exploit")
        return len(ch) - ex, ex

    n = instances_needed(3, 4, cfg.fg_root, cfg.seed, cfg.exploit_mesh_fraction)
    tr, ex = counts(n)
    assert tr >= 3 and ex >= 4
    tr1, ex1 = counts(n - 1)
    assert tr1 < 3 or ex1 < 4  # one fewer instance is not enough


def test_most_visible_orders_by_object_pixels():
    import torch

    from latentscenes.data.types import SceneViews
    from latentscenes.experiments.demo import foreground_fraction, most_visible

    def scene(sid, frac, masks):
        img = torch.ones(3, 3, 10, 10)
        n = int(frac * 10)
        img[:, :, :n, :] = 0.3  # the top rows are "object"
        m = (img[:, :1] < 0.95).float() if masks else None
        return SceneViews(sid, img, torch.eye(4).repeat(3, 1, 1), torch.eye(3).repeat(3, 1, 1), ["train", "train", "test"], masks=m)

    a, b, c = scene("a", 0.2, True), scene("b", 0.5, False), scene("c", 0.2, False)
    assert foreground_fraction(a) == pytest.approx(0.2) and foreground_fraction(b) == pytest.approx(0.5)
    assert most_visible([a, b, c]) == ["b", "a", "c"]  # ties keep the input order


def test_demo_with_a_pretrained_3daae_skips_training(demo_out, tmp_path):
    """`pretrained=PKG` (the tiny-cpu preset uses the shipped package): no training phase, the exploit scenes
    are learned with the package's weights and config, the report quotes the package's entry cost."""
    from latentscenes.cli.main import app

    data, out = demo_out
    runner = CliRunner()
    res = runner.invoke(app, ["export", "--run", str(out / "runs" / "train"), "--out", str(tmp_path / "pkg")])
    assert res.exit_code == 0, res.output
    few = ["pipeline.exploit.fit.steps=3", "pipeline.exploit.finetune.steps=2", "rgb.steps=3",
           f"pretrained={tmp_path / 'pkg'}"]
    res = runner.invoke(app, ["demo", "--preset", "test", "--data", str(data), "--out", str(tmp_path / "rep"),
                              *[a for kv in few for a in ("--set", kv)]])
    assert res.exit_code == 0, res.output + repr(res.exception)
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "| train |" not in text and "| exploit |" in text and "pre-trained 3Da-AE" in text
    m = json.loads((tmp_path / "rep" / "metrics_ours.json").read_text())
    assert set(m["groups"]) == {"exploit"} and m["groups"]["exploit"]["n_scenes"] == 2
    assert not (tmp_path / "rep" / "runs" / "train").exists()
    # eval of that batch: its source holds no scenes, so --scenes train is refused with a clear line
    res = runner.invoke(app, ["eval", "--run", str(tmp_path / "rep" / "runs" / "exploit"), "--scenes", "train",
                              "--out", str(tmp_path / "t.json")])
    assert res.exit_code == 2 and "no training scenes" in res.output
    res = runner.invoke(app, ["eval", "--run", str(tmp_path / "pkg"), "--out", str(tmp_path / "p.json")])
    assert res.exit_code == 2 and "without scenes" in res.output
