"""``bench`` with a pre-trained 3Da-AE (``pretrained``): Ours is the package, not trained; Eq. 9 charges the entry
cost its manifest records; the plain-AE ablation repeats its warm-up on its training scenes; Micro / Macro are
not run. A tiny ``test``-preset run is trained and exported (``latentscenes export``) here, the way
scripts/ship_3daae.sh makes the shipped one: a warm-up with one view per latent grid, continued in a copy whose
config asks for views at 2 x 2 offsets (``data.shift_grid`` 2) for the joint stage and the exploit recipe."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from latentscenes.bench import accounting as acc
from latentscenes.cli.main import app
from latentscenes.config import ConfigError, get_preset

# The package trains on 2 of the dataset's 3 train scenes (the bench's test preset would pick all 3), with a
# warm-up of 5 steps (the pipeline preset's is 6): the benchmark can only get these from the package.
PKG_SETS = ["data.n_train_scenes=2", "warmup.steps=5", "joint.steps=0", "logging.progress=false"]


def _invoke(args):
    threads = torch.get_num_threads()
    mp = pytest.MonkeyPatch()
    mp.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)  # tiny sizes gain nothing from more threads (see test_bench_smoke.py)
    try:
        return CliRunner().invoke(app, args)
    finally:
        torch.set_num_threads(threads)
        mp.undo()


@pytest.fixture(scope="module")
def package(sphere_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("pkg")
    base, run, pkg = root / "base", root / "run", root / "pkg"
    res = _invoke(["train", "--preset", "test", "--data", str(sphere_dataset), "--out", str(base),
                   *[a for kv in PKG_SETS for a in ("--set", kv)]])
    assert res.exit_code == 0, res.output + repr(res.exception)
    # scripts/ship_3daae.sh step 3: the joint stage with views at offsets, continued from the warm-up in a copy
    shutil.copytree(base, run)
    shutil.rmtree(run / "stages" / "joint")
    shutil.rmtree(run / "model")
    cfg = _json(run / "config.json")
    cfg["data"]["shift_grid"] = 2
    (run / "config.json").write_text(json.dumps(cfg))
    res = _invoke(["train", "--data", str(sphere_dataset), "--out", str(run), "--resume", "--set", "joint.steps=4"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    res = _invoke(["export", "--run", str(run), "--out", str(pkg)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return pkg


def test_export_set_writes_the_recipe_and_refuses_a_shape(package, tmp_path):
    res = _invoke(["export", "--run", str(package), "--out", str(tmp_path / "p2"), "--set", "ae.upscale=2",
                   "--set", "data.shift_grid=1"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    cfg = json.loads((tmp_path / "p2" / "config.json").read_text())
    assert (cfg["ae"]["upscale"], cfg["data"]["shift_grid"]) == (2, 1)
    res = _invoke(["export", "--run", str(package), "--out", str(tmp_path / "p3"), "--set", "triplane.f_mic=3"])
    assert res.exit_code == 2 and "triplane.f_mic" in res.output and not (tmp_path / "p3").exists()


@pytest.fixture(scope="module")
def bench_pkg_out(package, sphere_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_pkg")
    res = _invoke(["bench", "--preset", "test", "--set", f"pretrained={package}", "--data", str(sphere_dataset),
                   "--out", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return out


def _json(path):
    return json.loads(path.read_text())


def test_export_records_what_the_benchmark_reads(package):
    m = _json(package / "manifest.json")
    assert m["train_scene_ids"] == ["train_00", "train_01"]
    # each stage records the views it ran with (shift_grid 1 -> 1 copy, 2 -> 4), the encoding time is its own field
    assert m["stages"]["warmup"]["view_copies"] == 1 and m["stages"]["joint"]["view_copies"] == 4
    assert m["stages"]["warmup"]["steps"] == 5 and m["stages"]["joint"]["steps"] == 4
    assert _json(package / "config.json")["data"]["shift_grid"] == 2
    assert m["entry_cost_s"] == pytest.approx(sum(v["train_s"] for v in m["stages"].values()) + m["latent_cache_s"])
    assert m["measured_on"]["torch_threads"] >= 1 and m["measured_on"]["device"] == "cpu"


def test_ours_is_the_package_and_its_measured_entry_cost_enters_eq9(bench_pkg_out, package):
    r = _json(bench_pkg_out / "results.json")
    m = _json(package / "manifest.json")
    # not trained: no training phase, no training stage result, no run folder
    assert "ours/train" not in r["phases"] and "ours/train" not in r["stage_results"]
    assert not (bench_pkg_out / "runs" / "ours" / "train").exists()
    assert "ours/exploit" in r["phases"] and "ours/relearn" in r["phases"]
    tm = r["table1"]["ours"]["time"]
    assert tm["t_warmup"] == pytest.approx(m["latent_cache_s"] + m["stages"]["warmup"]["train_s"])
    assert tm["t_train"] == pytest.approx(m["stages"]["joint"]["train_s"])
    assert tm["t_ec"] == pytest.approx(m["entry_cost_s"])
    ex = r["stage_results"]["ours/exploit"]
    t_scene = (ex["latent_cache_s"] + sum(s["train_s"] for s in ex["stages"].values())) / tm["n_exploit"]
    assert tm["t_scene"] == pytest.approx(t_scene)
    assert r["table1"]["ours"]["time_ref"]["t_scene_eff"] == pytest.approx(m["entry_cost_s"] / 1000 + t_scene)  # Eq. 9
    # where it came from
    p = r["pretrained"]
    assert p["path"] == str(package) and p["sha256_shared"] == m["model"]["sha256_shared"]
    assert p["entry_cost"]["from"]["latent_cache_s"] == "manifest latent_cache_s"
    assert "measured when the package was made" in p["entry_cost"]["note"]
    assert r["table1"]["ours"]["entry_cost"]["t_ec_s"] == pytest.approx(m["entry_cost_s"])
    # the exploit batches learned from the package, with its data settings (views at 2 x 2 offsets)
    ex_m = _json(bench_pkg_out / "runs" / "ours" / "exploit" / "manifest.json")
    assert ex_m["source_run"] == str(package.resolve()) and ex_m["view_copies"] == 4
    md = (bench_pkg_out / "summary.md").read_text()
    assert "pre-trained 3Da-AE" in md and str(package) in md


def test_bytes_are_read_from_the_package(bench_pkg_out, package):
    r = _json(bench_pkg_out / "results.json")
    shared = load_file(str(package / "model" / "shared.safetensors"))
    enc = sum(acc.tensor_bytes(t) for k, t in shared.items() if k.startswith(("vae.encoder.", "vae.quant_conv.")))
    mm = r["table1"]["ours"]["memory"]
    assert mm["m_e"] == enc == _json(package / "manifest.json")["bytes"]["encoder"]
    assert str(package / "model" / "shared.safetensors") in r["table1"]["ours"]["bytes_files"]
    assert all(r["table1"]["bytes_check"].values()), r["table1"]["bytes_check"]
    assert r["table1"]["ours"]["memory_ref"]["m_scene_eff"] == pytest.approx(
        mm["m_ec"] / 1000 + (mm["m_t"] + mm["m_w"]) / mm["n_exploit"])


def test_plain_ae_repeats_the_packages_warmup_on_its_scenes(bench_pkg_out, package):
    m = _json(package / "manifest.json")
    plain = bench_pkg_out / "runs" / "plain-ae" / "train"
    pm, pc = _json(plain / "manifest.json"), _json(plain / "config.json")
    assert pm["scene_ids"] == m["train_scene_ids"] == ["train_00", "train_01"]
    want = {k: v for k, v in m["stage_configs"]["warmup"].items() if k not in ("checkpoint_every", "eval_every")}
    got = {k: v for k, v in pm["stage_configs"]["warmup"].items() if k not in ("checkpoint_every", "eval_every")}
    assert got == want and got["steps"] == 5
    assert pm["stages"]["warmup"]["steps"] == 5
    # one view per latent grid, as the package's warm-up (its config.json says 2: the joint stage's)
    assert pm["stages"]["warmup"]["view_copies"] == m["stages"]["warmup"]["view_copies"] == 1
    assert pc["data"]["shift_grid"] == 1
    assert "joint" not in pm["stage_configs"] or pc["joint"]["steps"] == 0  # no joint stage
    assert pc["ae"] == _json(package / "config.json")["ae"]  # the package's base autoencoder
    # then the same exploit recipe as ours (views at the package's offsets)
    ours_ex = _json(bench_pkg_out / "runs" / "ours" / "exploit" / "config.json")
    plain_ex = _json(bench_pkg_out / "runs" / "plain-ae" / "exploit" / "config.json")
    def recipe(c):  # ours' batch is also evaluated along the way (Fig. 6): eval_every differs, nothing else
        return {k: ({kk: vv for kk, vv in v.items() if kk != "eval_every"} if isinstance(v, dict) else v)
                for k, v in c["exploit"].items()}

    assert recipe(plain_ex) == recipe(ours_ex) and plain_ex["data"]["shift_grid"] == ours_ex["data"]["shift_grid"] == 2
    r = _json(bench_pkg_out / "results.json")
    assert r["pretrained"]["plain_ae_warmup"]["shift_grid"] == 1
    assert _json(bench_pkg_out / "runs" / "plain-ae" / "exploit" / "manifest.json")["view_copies"] == 4


def test_micro_macro_not_run_and_said_so_and_scenes_disjoint(bench_pkg_out, package, sphere_dataset):
    r = _json(bench_pkg_out / "results.json")
    keys = {row["key"] for row in r["table2"]["rows"]}
    assert keys == {"ours", "ours-no-prior", "plain-ae", "rgb", "rgb-macro"}
    for row in r["table2"]["rows"]:
        for g in ("train", "exploit"):
            assert math.isfinite(row[g]["psnr"])
    assert set(r["skipped_methods"]) == {"ours-micro", "ours-macro"}
    assert not (bench_pkg_out / "runs" / "ours-micro").exists()
    md = (bench_pkg_out / "summary.md").read_text()
    assert sum(1 for line in md.splitlines() if line.startswith("Not run: ours-micro, ours-macro: ")) == 1
    assert sum(1 for n in r["notes"] if n.startswith("not run: ours-micro, ours-macro: ")) == 1
    d = r["data"]
    train_ids = _json(package / "manifest.json")["train_scene_ids"]
    assert d["train_scene_ids"] == train_ids
    assert set(d["relearn_scene_ids"]) <= set(train_ids)
    split = _json(sphere_dataset / "manifest.json")["splits"]
    assert set(d["exploit_scene_ids"]) <= set(split["exploit"]) and not set(d["exploit_scene_ids"]) & set(train_ids)
    # the fidelity diagnosis ran with the package as Ours' 3Da-AE
    assert set(r["diagnosis"]["ae_ceiling"]) == {"base", "after_joint", "after_exploit_finetune"}
    assert set(r["diagnosis"]["probe"]) == {"base (plain AE)", "ours (3Da-AE)"}
    for name in ("results.json", "summary.md", "fig6_time_to_quality.png", "fig7_total_time.png", "table1_costs.png"):
        assert (bench_pkg_out / name).stat().st_size > 0


def test_resolution_other_than_the_packages_is_refused(package, sphere_dataset, tmp_path):
    from latentscenes.bench.config import BenchConfig
    from latentscenes.experiments.bench import pipeline_config

    cfg = get_preset(BenchConfig, "test")
    cfg.pretrained, cfg.resolution = str(package), 64
    with pytest.raises(ConfigError, match=r"64 px.*32 px"):
        pipeline_config(cfg, "cpu")
    cfg.resolution = 32
    assert pipeline_config(cfg, "cpu").data.resolution == 32
    res = _invoke(["bench", "--preset", "test", "--set", f"pretrained={package}", "--set", "resolution=64",
                   "--data", str(sphere_dataset), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "64 px" in res.output and "32 px" in res.output, res.output
    assert not (tmp_path / "o" / "runs").exists()  # refused before any work
    # --ae chooses a trained autoencoder: meaningless with a package
    res = _invoke(["bench", "--preset", "test", "--set", f"pretrained={package}", "--ae", "scratch",
                   "--data", str(sphere_dataset), "--out", str(tmp_path / "p")])
    assert res.exit_code == 2 and "--ae" in res.output, res.output
    cfg.pipeline_overrides = ["warmup.steps=9"]
    with pytest.raises(ConfigError, match="warmup.steps=9"):
        pipeline_config(cfg, "cpu")
    cfg.pipeline_overrides = ["ae.tanh_scale=0.5"]
    with pytest.raises(ConfigError, match="ae.tanh_scale"):
        pipeline_config(cfg, "cpu")
    # the latent grid is the batch's own choice: the same weights, a finer grid
    cfg.pipeline_overrides = ["ae.upscale=2"]
    assert pipeline_config(cfg, "cpu").ae.upscale == 2


def test_exploit_scenes_seen_in_training_are_refused(package, sphere_dataset, tmp_path):
    from latentscenes.bench.config import BenchConfig
    from latentscenes.bench.pretrained import load_package
    from latentscenes.experiments.bench import load_bench_scenes, pipeline_config
    from latentscenes.data.types import DatasetError

    data = tmp_path / "data"
    shutil.copytree(sphere_dataset, data)
    man = _json(data / "manifest.json")
    man["splits"]["exploit"] = ["train_01", "exploit_03"]  # a package training scene in the exploit split
    (data / "manifest.json").write_text(json.dumps(man))
    cfg = get_preset(BenchConfig, "test")
    cfg.pretrained = str(package)
    pkg = load_package(package)
    pcfg = pipeline_config(cfg, "cpu", pkg)
    with pytest.raises(DatasetError, match="train_01"):
        load_bench_scenes(cfg, pcfg, data, train_ids=pkg.train_scene_ids)
    # and a package's training scene missing from the dataset
    man["splits"] = {"train": ["train_00", "train_02"], "exploit": ["exploit_03", "exploit_04"]}
    (data / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(DatasetError, match="train_01"):
        load_bench_scenes(cfg, pcfg, data, train_ids=pkg.train_scene_ids)


def test_warmup_recipe_follows_the_record_not_the_last_config(package, tmp_path):
    """As the shipped package: a warm-up with one view per latent grid, then a joint stage (and config.json) with
    offsets. Without a record, the package's config is assumed, and said so."""
    from latentscenes.bench.pretrained import load_package, package_entry_cost, warmup_recipe

    pkg_dir = tmp_path / "pkg"
    shutil.copytree(package, pkg_dir)
    r = warmup_recipe(load_package(pkg_dir))
    assert r["shift_grid"] == 1 and r["warmup"].steps == 5 and not r["notes"]
    man = _json(pkg_dir / "manifest.json")
    del man["stages"]["warmup"]["view_copies"]
    (pkg_dir / "manifest.json").write_text(json.dumps(man))
    r = warmup_recipe(load_package(pkg_dir))
    assert r["shift_grid"] == 2 and any("does not record" in n for n in r["notes"])
    man["stages"]["warmup"]["view_copies"] = 3
    (pkg_dir / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ConfigError, match="not a square"):
        warmup_recipe(load_package(pkg_dir))
    # an older export without latent_cache_s: the encoding is entry_cost_s minus the stages' train_s
    del man["latent_cache_s"]
    (pkg_dir / "manifest.json").write_text(json.dumps(man))
    e = package_entry_cost(load_package(pkg_dir))
    assert e["latent_cache_s"] == pytest.approx(_json(package / "manifest.json")["latent_cache_s"])
    assert e["t_ec_s"] == pytest.approx(man["entry_cost_s"]) and "minus" in e["from"]["latent_cache_s"]
    # weights that are not the ones the manifest hashed are refused
    man["model"]["sha256_shared"] = "0" * 64
    (pkg_dir / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ConfigError, match="sha256"):
        load_package(pkg_dir)
    with pytest.raises(ConfigError, match="not a pre-trained 3Da-AE|not found"):
        load_package(tmp_path)


def test_plain_ae_warmup_runs_as_the_package_was_trained_not_with_its_exploit_recipe(package, tmp_path):
    """`export --set ae.upscale=2`: new scenes are learned on the finer latent grid, but the package's warm-up ran
    on the run's; the plain-AE ablation repeats that warm-up (notes.trained_with), then exploits with the recipe."""
    from latentscenes.bench.pretrained import load_package, warmup_recipe
    from latentscenes.experiments.bench import package_plain_ae_config
    from latentscenes.training.pipeline import export_pretrained

    export_pretrained(package, tmp_path / "pkg", recipe=["ae.upscale=2", "render.supersample=2",
                                                         "exploit.finetune.lambda_ae=0.5"])
    pkg = load_package(tmp_path / "pkg")
    trained = load_package(package).config
    assert pkg.config.ae.upscale == 2 and trained.ae.upscale == 1
    r = warmup_recipe(pkg)
    assert r["trained_with"] == [f"ae.upscale={trained.ae.upscale}",
                                 f"render.supersample={trained.render.supersample}"]
    plain = package_plain_ae_config(pkg.config, r)
    assert plain.ae.upscale == 1 and plain.render.supersample == trained.render.supersample
    assert plain.exploit.finetune.lambda_ae == 0.5  # never read by a warm-up; the benchmark's batches use the recipe
    # a package exported before trained_with was recorded: the warm-up uses the recipe's values, and says so
    man = _json(tmp_path / "pkg" / "manifest.json")
    del man["notes"]["trained_with"]
    (tmp_path / "pkg" / "manifest.json").write_text(json.dumps(man))
    r = warmup_recipe(load_package(tmp_path / "pkg"))
    assert r["trained_with"] == [] and any("ae.upscale, render.supersample" in n for n in r["notes"])


def test_default_data_with_a_package_reuses_a_folder_holding_its_scenes(package, sphere_dataset, tmp_path):
    from latentscenes.bench.config import BenchConfig
    from latentscenes.cli.bench import default_bench_data

    cfg = get_preset(BenchConfig, "test")
    cfg.pretrained, cfg.build_dir = str(package), str(sphere_dataset)
    assert default_bench_data(cfg) == sphere_dataset  # enough scenes: reused as it is, nothing built


def test_cpu_preset_measures_the_shipped_package_on_its_data():
    from latentscenes.bench.config import BenchConfig
    from latentscenes.bench.pretrained import load_package, package_entry_cost, warmup_recipe
    from latentscenes.experiments.bench import pipeline_config
    from latentscenes.training.pipeline import SHIPPED_RUN

    cfg = get_preset(BenchConfig, "cpu")
    assert cfg.pretrained == "shipped" and cfg.build_dir == "data/fg128" and cfg.build_resolution == 128
    assert (cfg.build_views, cfg.build_test_views) == (24, 8)
    own = get_preset(BenchConfig, "cpu-own")
    assert own.pretrained is None and own.build_dir is None and "ours-micro" in own.methods
    if not (SHIPPED_RUN / "model" / "shared.safetensors").is_file():
        pytest.skip("no shipped pre-trained 3Da-AE in this checkout")
    pkg = load_package("shipped")
    m = pkg.manifest
    pcfg = pipeline_config(cfg, "cpu", pkg)
    assert pcfg.data.resolution == 64 and pcfg.data.shift_grid == pkg.config.data.shift_grid == 2
    assert pcfg.data.n_train_scenes == len(m["train_scene_ids"]) == 40
    # its warm-up ran with one view per latent grid (scripts/ship_3daae.sh), its joint stage with 2 x 2 offsets
    r = warmup_recipe(pkg)
    assert r["shift_grid"] == 1 and r["warmup"].steps == m["stage_configs"]["warmup"]["steps"] and not r["notes"]
    e = package_entry_cost(pkg)
    assert e["t_ec_s"] == pytest.approx(m["entry_cost_s"]) and e["sum_matches_entry_cost"]
    assert e["t_train_s"] == pytest.approx(m["stages"]["joint"]["train_s"])


def test_a_package_resampled_to_another_T_has_its_plain_ae_warmup_at_the_T_it_was_trained_at(package, tmp_path):
    # `export --triplane-resolution` (the 128 px shipped package): ours learns new scenes at the new T; the plain-AE
    # ablation repeats the warm-up as it ran (at the old T) and then exploits at the new T, B resampled as ours'.
    from latentscenes.bench.config import BenchConfig
    from latentscenes.bench.pretrained import load_package, warmup_recipe
    from latentscenes.experiments.bench import package_plain_ae_config, pipeline_config
    from latentscenes.training.pipeline import export_pretrained

    T0 = _json(package / "config.json")["triplane"]["resolution"]
    export_pretrained(package, tmp_path / "pkgT", triplane_resolution=2 * T0)
    pkg = load_package(tmp_path / "pkgT")
    r = warmup_recipe(pkg)
    assert r["triplane_resolution"] == T0 and "resampled" in r["from"]["triplane_resolution"]
    cfg = get_preset(BenchConfig, "test")
    cfg.pretrained = str(tmp_path / "pkgT")
    pcfg = pipeline_config(cfg, "cpu", pkg)
    assert pcfg.triplane.resolution == 2 * T0
    assert package_plain_ae_config(pcfg, r).triplane.resolution == T0
    assert warmup_recipe(load_package(package))["triplane_resolution"] == T0


def test_cpu_128_preset_measures_the_128_px_package_against_rgb_at_128_px():
    from latentscenes.bench.config import BenchConfig
    from latentscenes.bench.pretrained import load_package, warmup_recipe
    from latentscenes.experiments.bench import package_plain_ae_config, pipeline_config, rgb_config
    from latentscenes.training.pipeline import SHIPPED_RUNS

    cfg = get_preset(BenchConfig, "cpu-128")
    assert cfg.pretrained == "shipped-128" and cfg.build_dir == "data/fg128" and cfg.build_resolution == 128
    assert {"ours", "rgb", "plain-ae"} <= set(cfg.methods) and cfg.n_rgb_exploit <= cfg.n_exploit_scenes
    if not (SHIPPED_RUNS["shipped-128"] / "model" / "shared.safetensors").is_file():
        pytest.skip("no shipped-128 pre-trained 3Da-AE in this checkout")
    pkg = load_package("shipped-128")
    pcfg = pipeline_config(cfg, "cpu", pkg)
    assert pcfg.data.resolution == 128 and pcfg.triplane.resolution == 64
    # new scenes are learned with the package's recipe: latents on the grid twice as fine, one view per grid
    assert (pcfg.ae.upscale, pcfg.data.shift_grid) == (pkg.config.ae.upscale, pkg.config.data.shift_grid) == (2, 1)
    # the plain-AE ablation repeats the warm-up as it ran: one view per latent grid, T = 32, the 8x latent grid
    r = warmup_recipe(pkg)
    assert r["shift_grid"] == 1 and r["triplane_resolution"] == 32 and not r["notes"]
    assert "ae.upscale=1" in r["trained_with"]
    plain = package_plain_ae_config(pcfg, r)
    assert plain.triplane.resolution == 32 and plain.ae.upscale == 1
    rgb = rgb_config(cfg, pcfg, "micro", cfg.n_rgb_exploit + cfg.n_rgb_train, "cpu")
    assert rgb.triplane.resolution == 64 and rgb.steps == 1600
