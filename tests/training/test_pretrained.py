"""Pre-trained 3Da-AE folders (``latentscenes export``; the shipped one is ``exploit --run shipped``)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import latentscenes.training.pipeline as pipeline
from latentscenes.training.pipeline import (
    RunError,
    exploit_3daae,
    export_pretrained,
    load_exploited,
    load_trained,
    train_3daae,
)

from helpers_3daae import small_config, sphere_scenes


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("pre") / "run"
    train_3daae(small_config(), run, scenes=sphere_scenes(2))
    return run


def test_export_holds_the_runs_shared_weights_without_scenes(trained_run, tmp_path):
    m = export_pretrained(trained_run, tmp_path / "pkg")
    assert m["kind"] == "pretrained" and m["scenes_included"] is False
    assert m["train_scene_ids"] == ["s00", "s01"]
    run_m = json.loads((trained_run / "manifest.json").read_text())
    assert m["entry_cost_s"] == pytest.approx(sum(v["train_s"] for v in run_m["stages"].values()) + run_m["latent_cache_s"])
    assert m["entry_cost_s"] > 0
    assert not (tmp_path / "pkg" / "model" / "scenes").exists()
    assert json.loads((tmp_path / "pkg" / "config.json").read_text())["data"]["path"] is None
    run, pkg = load_trained(trained_run, "cpu"), load_trained(tmp_path / "pkg", "cpu")
    assert pkg.bank.scene_ids == []
    assert torch.equal(run.bank.global_planes, pkg.bank.global_planes)
    for (k, a), (_, b) in zip(run.mlp.state_dict().items(), pkg.mlp.state_dict().items()):
        assert torch.equal(a, b), k
    for (k, a), (_, b) in zip(run.ae.vae.state_dict().items(), pkg.ae.vae.state_dict().items()):
        assert torch.equal(a, b), k


def test_exploit_from_an_exported_package_learns_new_scenes(trained_run, tmp_path):
    export_pretrained(trained_run, tmp_path / "pkg")
    res = exploit_3daae(tmp_path / "pkg", tmp_path / "batch", scenes=sphere_scenes(2, "new", seed=3))
    assert res["scene_ids"] == ["new00", "new01"]
    b = load_exploited(tmp_path / "batch", "cpu")
    assert b.bank.scene_ids == ["new00", "new01"]


def test_a_package_carries_a_base_autoencoder_given_as_a_file(trained_run, tmp_path):
    # A run trained from a local autoencoder file (an `ae pretrain` result): its package must hold that file, so
    # that the plain-AE ablation and the AE ceiling of the benchmark load it wherever the package is moved.
    import shutil

    from latentscenes.autoencoder.model import load_autoencoder
    from latentscenes.training.pipeline import load_run_config

    base = tmp_path / "base.safetensors"
    load_trained(trained_run, "cpu").ae.save(base)
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    c = json.loads((run / "config.json").read_text())
    # The run's config keeps a scratch architecture that is not the file's (as `--ae PATH` leaves the preset's):
    # the file decides, and the package's config must say what the file is.
    c["ae"].update(source="path", path=str(base), latent_channels=7)
    (run / "config.json").write_text(json.dumps(c))
    export_pretrained(run, tmp_path / "pkg")
    pkg_ae = json.loads((tmp_path / "pkg" / "config.json").read_text())["ae"]
    assert pkg_ae["path"] == "model/base_ae.safetensors"
    real = load_trained(trained_run, "cpu").ae.vae_config
    assert pkg_ae["latent_channels"] == real["latent_channels"] != 7
    assert pkg_ae["block_out_channels"] == list(real["block_out_channels"])
    base.unlink()
    shutil.move(tmp_path / "pkg", tmp_path / "moved")
    cfg = load_run_config(tmp_path / "moved")
    assert cfg.ae.path == str(tmp_path / "moved" / "model" / "base_ae.safetensors")
    ae = load_autoencoder(cfg.ae)
    want = load_trained(trained_run, "cpu").ae.vae.state_dict()
    for k, v in ae.vae.state_dict().items():
        assert torch.equal(v, want[k]), k
    # A package exported from a run on the shipped (or scratch) autoencoder carries none.
    export_pretrained(trained_run, tmp_path / "plain")
    assert not (tmp_path / "plain" / "model" / "base_ae.safetensors").exists()
    assert load_run_config(tmp_path / "plain").ae == load_run_config(trained_run).ae


def test_a_package_on_the_shipped_general_autoencoder_says_its_architecture(trained_run, tmp_path):
    # `train --ae shipped-general` leaves the preset's 4 latent channels in the run's config (the weights decide);
    # its package's config must say what the shipped weights are (16 channels), and carry none (every installation
    # has them).
    import shutil

    from latentscenes.autoencoder.model import SHIPPED_AUTOENCODERS, read_header

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    c = json.loads((run / "config.json").read_text())
    c["ae"].update(source="shipped-general", latent_channels=4)
    (run / "config.json").write_text(json.dumps(c))
    export_pretrained(run, tmp_path / "pkg")
    pkg_ae = json.loads((tmp_path / "pkg" / "config.json").read_text())["ae"]
    real = read_header(SHIPPED_AUTOENCODERS["shipped-general"])["vae_config"]
    assert pkg_ae["source"] == "shipped-general" and pkg_ae["latent_channels"] == real["latent_channels"] == 16
    assert not (tmp_path / "pkg" / "model" / "base_ae.safetensors").exists()


def test_a_package_carries_a_base_autoencoder_given_as_a_diffusers_folder(trained_run, tmp_path):
    # `--ae /models/sd15/vae`: the package must not name that absolute folder (it breaks once moved); it holds
    # the same weights in one file of ours.
    import shutil

    from safetensors.torch import save_file

    from latentscenes.autoencoder.model import load_autoencoder
    from latentscenes.training.pipeline import load_run_config

    ae = load_trained(trained_run, "cpu").ae
    folder = tmp_path / "sd" / "vae"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL", **ae.vae_config}))
    save_file({k: v.contiguous() for k, v in ae.vae.state_dict().items()},
              str(folder / "diffusion_pytorch_model.safetensors"))
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    c = json.loads((run / "config.json").read_text())
    c["ae"].update(source="path", path=str(tmp_path / "sd"), tanh_scale=0.2)
    (run / "config.json").write_text(json.dumps(c))
    export_pretrained(run, tmp_path / "pkg")
    assert json.loads((tmp_path / "pkg" / "config.json").read_text())["ae"]["path"] == "model/base_ae.safetensors"
    shutil.rmtree(tmp_path / "sd")
    shutil.move(tmp_path / "pkg", tmp_path / "moved")
    base = load_autoencoder(load_run_config(tmp_path / "moved").ae)
    assert base.tanh_scale == pytest.approx(0.2)
    for k, v in base.vae.state_dict().items():
        assert torch.equal(v, ae.vae.state_dict()[k]), k


def test_export_from_a_stage_checkpoint_and_refusals(trained_run, tmp_path):
    m_full = export_pretrained(trained_run, tmp_path / "full")
    m = export_pretrained(trained_run, tmp_path / "warm", stage="warmup")
    assert m["source"]["stage"] == "warmup" and m["source"]["step"] > 0 and 0 < m["entry_cost_s"] < m_full["entry_cost_s"]
    with pytest.raises(RunError, match="already exists"):
        export_pretrained(trained_run, tmp_path / "warm")
    with pytest.raises(RunError, match="no checkpoint of stage"):
        export_pretrained(trained_run, tmp_path / "x", stage="nosuch")
    with pytest.raises(RunError, match="not a latentscenes run folder"):
        export_pretrained(tmp_path / "nothing", tmp_path / "y")
    # An exploit batch folder is not a training run.
    exploit_3daae(trained_run, tmp_path / "batch", scenes=sphere_scenes(1, "n", seed=4))
    with pytest.raises(RunError, match="not a training run"):
        export_pretrained(tmp_path / "batch", tmp_path / "z")


@pytest.mark.parametrize("name", ["shipped", "shipped-128"])
def test_shipped_spec_resolves_to_the_package_folder_and_is_recorded(trained_run, tmp_path, monkeypatch, name):
    pkg = tmp_path / "site" / "3daae"
    export_pretrained(trained_run, pkg)
    monkeypatch.setitem(pipeline.SHIPPED_RUNS, name, pkg)
    assert pipeline.shipped_name(pkg) == name and pipeline.shipped_name(tmp_path) is None
    exploit_3daae(name, tmp_path / "batch", scenes=sphere_scenes(1, "n", seed=5))
    m = json.loads((tmp_path / "batch" / "manifest.json").read_text())
    assert m["source_run_spec"] == name
    # The package moved (a reinstall elsewhere): the batch follows its name, not the old absolute path.
    moved = tmp_path / "elsewhere" / "3daae"
    moved.parent.mkdir()
    pkg.rename(moved)
    monkeypatch.setitem(pipeline.SHIPPED_RUNS, name, moved)
    assert load_exploited(tmp_path / "batch", "cpu").bank.scene_ids == ["n00"]
    monkeypatch.setitem(pipeline.SHIPPED_RUNS, name, tmp_path / "missing")
    with pytest.raises(RunError, match=f"shipped pre-trained 3Da-AE '{name}' is missing"):
        load_exploited(tmp_path / "batch", "cpu")


def test_a_package_derived_at_another_T_learns_as_an_exploit_at_that_T(trained_run, tmp_path):
    # `export --triplane-resolution T` writes B resampled to T: new scenes learned with the derived package by
    # default are the ones an exploit of the original package learns with `--set triplane.resolution=T`.
    from latentscenes.training.pipeline import load_run_config, resample_planes

    export_pretrained(trained_run, tmp_path / "pkg")
    T0 = load_run_config(tmp_path / "pkg").triplane.resolution
    T = 2 * T0
    m = export_pretrained(tmp_path / "pkg", tmp_path / "pkgT", triplane_resolution=T)
    orig_m = json.loads((tmp_path / "pkg" / "manifest.json").read_text())
    assert m["train_scene_ids"] == orig_m["train_scene_ids"] and m["entry_cost_s"] == orig_m["entry_cost_s"]
    assert m["stages"] == orig_m["stages"] and m["source"]["run"] == orig_m["source"]["run"]
    assert m["source"]["derived_from"] == str(tmp_path / "pkg")
    assert m["notes"]["global_planes_resampled_from"] == T0
    assert m["model"]["sha256_shared"] != orig_m["model"]["sha256_shared"]
    # m_scene grows as T^2, m_B too; the autoencoder's bytes do not change
    assert m["bytes"]["per_scene"] > 3 * orig_m["bytes"]["per_scene"]
    assert m["bytes"]["global_planes"] == 4 * orig_m["bytes"]["global_planes"]
    assert m["bytes"]["encoder"] == orig_m["bytes"]["encoder"]
    cfg = load_run_config(tmp_path / "pkgT")
    assert cfg.triplane.resolution == T
    # every tensor but B, and the metadata, byte for byte
    from safetensors import safe_open

    with safe_open(str(tmp_path / "pkg" / "model" / "shared.safetensors"), "pt") as fa, \
            safe_open(str(tmp_path / "pkgT" / "model" / "shared.safetensors"), "pt") as fb:
        assert set(fa.keys()) == set(fb.keys()) and fa.metadata() == fb.metadata()
        for k in fa.keys():
            assert k == "global_planes" or torch.equal(fa.get_tensor(k), fb.get_tensor(k)), k
    a, b = load_trained(tmp_path / "pkg", "cpu"), load_trained(tmp_path / "pkgT", "cpu")
    assert b.bank.global_planes.shape[-1] == T
    assert torch.equal(b.bank.global_planes, resample_planes(a.bank.global_planes, T))
    for (k, x), (_, y) in zip(a.ae.vae.state_dict().items(), b.ae.vae.state_dict().items()):
        assert torch.equal(x, y), k
    for (k, x), (_, y) in zip(a.mlp.state_dict().items(), b.mlp.state_dict().items()):
        assert torch.equal(x, y), k
    new = sphere_scenes(1, "n", seed=6)
    orig_cfg = load_run_config(tmp_path / "pkg")
    at_T = dataclasses.replace(orig_cfg, triplane=dataclasses.replace(orig_cfg.triplane, resolution=T))
    exploit_3daae(tmp_path / "pkg", tmp_path / "b_set", at_T, scenes=new)  # `--set triplane.resolution=T`
    exploit_3daae(tmp_path / "pkgT", tmp_path / "b_pkg", scenes=new)
    x, y = load_exploited(tmp_path / "b_set", "cpu"), load_exploited(tmp_path / "b_pkg", "cpu")
    xs, ys = x.bank.per_scene_state(), y.bank.per_scene_state()
    assert xs["local"].shape[-1] == T
    for k in xs:
        assert torch.allclose(xs[k], ys[k], atol=1e-5), k
    assert torch.allclose(x.bank.global_planes, y.bank.global_planes, atol=1e-5)


def test_deriving_a_package_refuses_a_stage_and_a_bad_T(trained_run, tmp_path):
    export_pretrained(trained_run, tmp_path / "pkg")
    # derived twice: the record keeps the T that B was trained at
    T0 = json.loads((tmp_path / "pkg" / "config.json").read_text())["triplane"]["resolution"]
    export_pretrained(tmp_path / "pkg", tmp_path / "d1", triplane_resolution=2 * T0)
    m = export_pretrained(tmp_path / "d1", tmp_path / "d2", triplane_resolution=3 * T0)
    assert m["notes"]["global_planes_resampled_from"] == T0 and m["source"]["derived_from"] == str(tmp_path / "d1")
    with pytest.raises(RunError, match="no stage checkpoints"):
        export_pretrained(tmp_path / "pkg", tmp_path / "a", stage="warmup")
    with pytest.raises(RunError, match="T >= 2"):
        export_pretrained(tmp_path / "pkg", tmp_path / "b", triplane_resolution=1)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_package_derived_with_another_decoder_keeps_the_latent_space(trained_run, tmp_path):
    # `export --ae AE`: the 3Da-AE grown (one more layer per block, function-preserving) and its decoder changed, as
    # `ae pretrain --set train_part=decoder` leaves it; the MLP, B and latent background stay, the package loads with
    # the new architecture and learns new scenes; an autoencoder with another encoder is refused before any write.
    from latentscenes.autoencoder.grow import grow_autoencoder
    from latentscenes.autoencoder.model import LatentAutoencoder

    export_pretrained(trained_run, tmp_path / "pkg")
    shared = tmp_path / "pkg" / "model" / "shared.safetensors"
    grown = grow_autoencoder(LatentAutoencoder.load(shared), width_factor=1, extra_layers=1)
    with torch.no_grad():
        grown.vae.decoder.conv_out.bias.add_(0.1)
    grown.save(tmp_path / "dec.safetensors")
    m = export_pretrained(tmp_path / "pkg", tmp_path / "pkgD", ae=tmp_path / "dec.safetensors")
    assert m["notes"]["autoencoder_replaced_by"]["file"] == str(tmp_path / "dec.safetensors")
    assert m["bytes"]["decoder"] == grown.num_bytes("decoder") > json.loads(
        (tmp_path / "pkg" / "manifest.json").read_text())["bytes"]["decoder"]
    a, b = load_trained(tmp_path / "pkg", "cpu"), load_trained(tmp_path / "pkgD", "cpu")
    assert b.ae.vae_config["layers_per_block"] == a.ae.vae_config["layers_per_block"] + 1
    assert torch.equal(b.ae.vae.decoder.conv_out.bias, grown.vae.decoder.conv_out.bias)
    assert torch.equal(a.bank.global_planes, b.bank.global_planes)
    for (k, x), (_, y) in zip(a.mlp.state_dict().items(), b.mlp.state_dict().items()):
        assert torch.equal(x, y), k
    assert torch.allclose(a.ae.latent_background(), b.ae.latent_background())
    res = exploit_3daae(tmp_path / "pkgD", tmp_path / "batch", scenes=sphere_scenes(1, "new", seed=3))
    assert res["scene_ids"] == ["new00"]
    # another encoder: other latents, so the MLP and B would render a space the decoder never saw
    with torch.no_grad():
        grown.vae.encoder.conv_in.weight.mul_(1.5)
    grown.save(tmp_path / "enc.safetensors")
    with pytest.raises(RunError, match="other latents"):
        export_pretrained(tmp_path / "pkg", tmp_path / "pkgE", ae=tmp_path / "enc.safetensors")
    assert not (tmp_path / "pkgE").exists()
    # a file with no training record: its cost is unknown, said so, and the entry cost stays the package's
    rec = m["notes"]["autoencoder_replaced_by"]["training"]
    assert rec["train_s"] is None and "not recorded" in rec["from"]
    assert m["entry_cost_s"] == json.loads((tmp_path / "pkg" / "manifest.json").read_text())["entry_cost_s"]


def test_a_decoder_trained_for_the_package_is_charged_to_its_entry_cost(trained_run, tmp_path):
    # `export --ae RUN/model/shared.safetensors` (a run that trained the decoder with the latent space frozen): that
    # run's stages and latent encoding were paid for the package, so Eq. 9's t_EC grows by them.
    from latentscenes.bench.pretrained import load_package, package_entry_cost

    base = export_pretrained(trained_run, tmp_path / "pkg")
    run_m = json.loads((trained_run / "manifest.json").read_text())
    cost = sum(v["train_s"] for v in run_m["stages"].values()) + run_m["latent_cache_s"]
    m = export_pretrained(tmp_path / "pkg", tmp_path / "pkgD", ae=trained_run / "model" / "shared.safetensors")
    assert m["stages"]["ae_replacement"]["train_s"] == pytest.approx(cost)
    assert m["stages"]["ae_replacement"]["source"] == str(trained_run)
    assert m["entry_cost_s"] == pytest.approx(base["entry_cost_s"] + cost)
    e = package_entry_cost(load_package(tmp_path / "pkgD"))
    assert e["sum_matches_entry_cost"] and e["t_ec_s"] == pytest.approx(m["entry_cost_s"])
    assert e["t_train_s"] == pytest.approx(base["stages"]["joint"]["train_s"] + cost)
    assert "ae_replacement" in e["from"]["t_train_s"]
    # replaced again: a second record, both charged
    m2 = export_pretrained(tmp_path / "pkgD", tmp_path / "pkgD2", ae=trained_run / "model" / "shared.safetensors")
    assert m2["stages"]["ae_replacement_2"]["train_s"] == pytest.approx(cost)
    assert m2["entry_cost_s"] == pytest.approx(base["entry_cost_s"] + 2 * cost)
    # another package's weights: their cost is that package's, not charged again (nor their inherited records)
    m3 = export_pretrained(tmp_path / "pkg", tmp_path / "pkgP", ae=tmp_path / "pkgD" / "model" / "shared.safetensors")
    assert m3["notes"]["autoencoder_replaced_by"]["training"]["train_s"] is None
    assert "ae_replacement" not in m3["stages"] and m3["entry_cost_s"] == pytest.approx(base["entry_cost_s"])


def test_a_package_carries_an_exploit_recipe_set_at_export(trained_run, tmp_path):
    # `export --set`: the package's config holds the recipe, so an exploit with no override learns new scenes with
    # it (here on the latent grid twice as fine); shapes of the trained weights and the data's path are refused
    # before anything is written.
    from latentscenes.config import ConfigError

    recipe = ["ae.upscale=2", "data.shift_grid=1", "render.offset_ensemble=1", "exploit.finetune.lambda_ae=0.5"]
    m = export_pretrained(trained_run, tmp_path / "pkg", recipe=recipe)
    assert m["notes"]["recipe_set"] == recipe
    pc = json.loads((tmp_path / "pkg" / "config.json").read_text())
    assert (pc["ae"]["upscale"], pc["data"]["shift_grid"], pc["render"]["offset_ensemble"]) == (2, 1, 1)
    assert pc["exploit"]["finetune"]["lambda_ae"] == 0.5 and pc["data"]["path"] is None
    run_cfg = json.loads((trained_run / "config.json").read_text())
    assert pc["triplane"] == run_cfg["triplane"] and pc["ae"]["upscale"] != run_cfg["ae"]["upscale"]
    exploit_3daae(tmp_path / "pkg", tmp_path / "batch", scenes=sphere_scenes(1, "new", seed=3))
    assert json.loads((tmp_path / "batch" / "config.json").read_text())["ae"]["upscale"] == 2
    b = load_exploited(tmp_path / "batch", "cpu")
    assert b.ae.upscale == 2
    # the values the weights were trained with, for whoever repeats that training (the bench's plain-AE warm-up)
    assert m["notes"]["trained_with"] == {"ae.upscale": run_cfg["ae"]["upscale"],
                                          "data.shift_grid": run_cfg["data"]["shift_grid"],
                                          "render.offset_ensemble": run_cfg["render"]["offset_ensemble"],
                                          "exploit.finetune.lambda_ae": run_cfg["exploit"]["finetune"]["lambda_ae"]}
    m2 = export_pretrained(tmp_path / "pkg", tmp_path / "pkg2", recipe=["ae.upscale=1"])  # derived: history kept
    assert m2["notes"]["recipe_set"] == recipe + ["ae.upscale=1"]
    assert m2["notes"]["trained_with"] == m["notes"]["trained_with"]  # the first value, not the recipe's 2
    assert json.loads((tmp_path / "pkg2" / "config.json").read_text())["ae"]["upscale"] == 1
    for bad, match in [(["triplane.f_mac=4"], "may choose"), (["data.path=/x"], "may choose"),
                       (["triplane.resolution=8"], "--triplane-resolution"), (["ae.upscale=3"], "upscale")]:
        with pytest.raises(ConfigError, match=match):
            export_pretrained(trained_run, tmp_path / "bad", recipe=bad)
        assert not (tmp_path / "bad").exists()


def test_an_exploit_batch_chooses_only_its_own_renderer_and_plane_settings():
    """with_batch_settings: BATCH_KEYS come from the batch, every other render / triplane field from the run (its
    MLP and B were trained with them); the package recipe's keys are those plus the latent grid."""
    run = small_config()
    batch = dataclasses.replace(
        run,
        render=dataclasses.replace(run.render, supersample=3, pixel_jitter=not run.render.pixel_jitter,
                                   offset_ensemble=2, near=run.render.near + 0.5),
        triplane=dataclasses.replace(run.triplane, local_init_std=0.123, coef_init_std=0.456,
                                     resolution=run.triplane.resolution * 2, f_mic=run.triplane.f_mic + 1),
    )
    got = pipeline.with_batch_settings(run, batch)
    for key in pipeline.BATCH_KEYS:
        section, name = key.split(".")
        assert getattr(getattr(got, section), name) == getattr(getattr(batch, section), name), key
    assert got.render.near == run.render.near and got.triplane.f_mic == run.triplane.f_mic  # the run's
    assert set(pipeline.PACKAGE_RECIPE_KEYS) == {"ae.upscale", "ae.amp"} | set(pipeline.BATCH_KEYS) - {"triplane.resolution"}
