"""The pre-trained 3Da-AE shipped in the package (`exploit --run shipped`, the tiny-cpu demo's default)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from latentscenes.training.pipeline import SHIPPED_RUN, SHIPPED_RUNS, load_run_config, load_trained, resolve_run

pytestmark = pytest.mark.skipif(not (SHIPPED_RUN / "model" / "shared.safetensors").is_file(),
                                reason="no shipped pre-trained 3Da-AE in this checkout")

#: the image size each shipped package serves (its MODEL_CARD.md)
RESOLUTION = {"shipped": 64, "shipped-128": 128}


@pytest.mark.parametrize("name", sorted(SHIPPED_RUNS))
def test_shipped_package_is_complete_and_consistent(name):
    folder = SHIPPED_RUNS[name]
    if not (folder / "model" / "shared.safetensors").is_file():
        pytest.skip(f"no {name} package in this checkout")
    m = json.loads((folder / "manifest.json").read_text())
    assert m["kind"] == "pretrained" and m["scenes_included"] is False and m["entry_cost_s"] > 0
    assert (folder / "MODEL_CARD.md").is_file()
    cfg = load_run_config(name)
    assert cfg.data.path is None and cfg.data.resolution == RESOLUTION[name]
    assert rf_image_side(m) == RESOLUTION[name]
    system = load_trained(name, "cpu")  # sizes in config.json match the weights
    assert system.bank.scene_ids == [] and system.bank.global_planes is not None
    assert system.bank.global_planes.shape[-1] == cfg.triplane.resolution
    # the card quotes the package it sits in, and the name a user types
    card, src = (folder / "MODEL_CARD.md").read_text(), m["source"]
    assert f"stage `{src['stage']}`" in card and f"`{src['run']}`" in card
    assert f"--run {name} " in card and f"{RESOLUTION[name]}x{RESOLUTION[name]} images" in card
    assert src.get("step") is None or f"step {src['step']}" in card
    assert f"data.shift_grid = {cfg.data.shift_grid}" in card or cfg.data.shift_grid == 1
    assert f"T = {cfg.triplane.resolution}" in card
    assert resolve_run(name) == folder
    # its base autoencoder (the benchmark's plain-AE ablation and AE ceiling) loads from a fresh checkout, with the
    # latent channels of the package's own autoencoder
    from latentscenes.autoencoder.model import load_autoencoder

    base = load_autoencoder(cfg.ae)
    assert base.vae.config.latent_channels == system.ae.vae.config.latent_channels
    assert cfg.ae.source != "path" or Path(cfg.ae.path).is_relative_to(folder)
    # the package's exploit and render recipe: the one `export --set` wrote into it (the 128 px package: the finer
    # latent grid, scripts/ship_3daae_128.sh), else tiny-cpu's (the training run predates some of it: ship_3daae.sh)
    from latentscenes.config import apply_overrides
    from latentscenes.training.config import TINY_CPU_FINETUNE_OFFSET_MERGE, TINY_CPU_OFFSET_ENSEMBLE
    from latentscenes.training.pipeline import config_value

    recipe = (m.get("notes") or {}).get("recipe_set") or []
    for item in recipe:  # each `--set` as the CLI parses it (`lambda_ae=0` is the config's 0.0)
        key = item.split("=", 1)[0]
        assert config_value(cfg, key) == config_value(apply_overrides(cfg, [item]), key), item
    if not any(r.startswith("render.offset_ensemble=") for r in recipe):
        assert cfg.render.offset_ensemble == TINY_CPU_OFFSET_ENSEMBLE
    assert cfg.exploit.finetune.dec_offset_merge is TINY_CPU_FINETUNE_OFFSET_MERGE
    # the card states the exploit fine-tune's loss as the config sets it (a recipe changed by `export --set` needs
    # its card regenerated), the latent grid new scenes are learned on and the precision of the autoencoder
    ft = cfg.exploit.finetune
    assert ("with L_Dec + L_ae" if ft.lambda_ae > 0 else "with L_Dec alone") in card
    if cfg.ae.upscale != 1:
        assert f"ae.upscale = {cfg.ae.upscale}" in card
    if cfg.ae.amp:
        assert "ae.amp" in card


def rf_image_side(manifest: dict) -> int:
    from latentscenes.training import run_format as rf

    return int(rf.image_size(manifest)[0])


@pytest.mark.parametrize("name", sorted(SHIPPED_RUNS))
def test_exploit_run_shipped_learns_a_users_scenes(tmp_path, name):
    """A user's own objects in the package's conventions (cameras ~2.3 from the centre, box 2)."""
    if not (SHIPPED_RUNS[name] / "model" / "shared.safetensors").is_file():
        pytest.skip(f"no {name} package in this checkout")
    from latentscenes.cli.main import app
    from latentscenes.data.flightgear import write_srn_scene
    from latentscenes.scenes.synthetic import make_sphere_scene

    root = tmp_path / "data"
    ids = ["a0", "a1"]
    for k, sid in enumerate(ids):
        sv = make_sphere_scene(sid, n_views=6, n_test=2, resolution=32, radius=2.3, seed=k)
        write_srn_scene(root / sid, [im.permute(1, 2, 0).numpy() for im in sv.images],
                        [mk[0].numpy() for mk in sv.masks], sv.c2w.numpy(), sv.K[0].numpy(), sv.split, {})
    (root / "manifest.json").write_text(json.dumps({
        "format": "srn", "name": "mine", "scenes": {s: {"split": "exploit"} for s in ids},
        "splits": {"exploit": ids}, "render": {"near": 1.3, "far": 3.3, "box_size": 2.0}}))
    sets = ["data.resolution=32", "exploit.fit.steps=3", "exploit.finetune.steps=2", "logging.progress=false"]
    res = CliRunner().invoke(app, ["exploit", "--run", name, "--data", str(root), "--out", str(tmp_path / "b"),
                                   *[a for kv in sets for a in ("--set", kv)]])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["source_run_spec"] == name
    res = CliRunner().invoke(app, ["eval", "--run", str(tmp_path / "b"), "--scenes", "exploit",
                                   "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m.json").read_text())["groups"]["exploit"]["n_scenes"] == 2
    # without --data there is nothing to learn: one line, exit 2
    res = CliRunner().invoke(app, ["exploit", "--run", name, "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "--data" in res.output
