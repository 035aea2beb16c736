"""Fidelity levers of the exploit stage (docs/fidelity.md): L_ae on cached latents in the decoder fine-tune."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from latentscenes.training.config import StageConfig
from latentscenes.training.data import build_view_table
from latentscenes.training.pipeline import build_system, encode_views, exploit_3daae, exploit_config, train_3daae
from latentscenes.training.stages import stage_losses

from helpers_3daae import small_config, sphere_scenes


def test_lambda_ae_uses_cached_latents_with_a_frozen_encoder():
    cfg = small_config()
    from latentscenes.autoencoder.model import load_autoencoder

    torch.manual_seed(0)
    ae = load_autoencoder(cfg.ae, "cpu")
    scenes = sphere_scenes(2)
    table = build_view_table(scenes, "train", None, cfg.data.resolution)
    system = build_system(cfg, ae, table.scene_ids)
    lat, _, _ = encode_views(system, table, None, 8, False)
    rows = torch.arange(4)
    bank_rows = system.bank.rows(table.scene_ids)[table.scene_rows[rows]]
    st = StageConfig(lambda_enc=0.0, lambda_dec=1.0, lambda_ae=1.0, lr_decoder=1e-4)
    _, terms = stage_losses(system, table, lat, rows, bank_rows, st, torch.Generator().manual_seed(0), False)
    x = table.batch_images(rows)
    with torch.no_grad():
        want = torch.mean((system.ae.decode(system.ae.denormalize(lat[rows])) - x) ** 2)
    assert torch.allclose(terms["ae"], want, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="cached latents"):
        stage_losses(system, table, None, rows, bank_rows, st, None, False)


def test_exploit_finetune_with_lambda_ae_logs_the_term(tmp_path):
    torch.set_num_threads(1)
    run = tmp_path / "run"
    train_3daae(small_config(), run, scenes=sphere_scenes(2))
    cfg = exploit_config(json_cfg(run), ["exploit.finetune.lambda_ae=0.5"])
    res = exploit_3daae(run, tmp_path / "ex", cfg, scenes=sphere_scenes(2, prefix="n", seed=3))
    assert "ae" in res["stages"]["exploit_finetune"]["final_losses"]
    saved = json.loads((tmp_path / "ex" / "config.json").read_text())
    assert saved["exploit"]["finetune"]["lambda_ae"] == 0.5


def json_cfg(run):
    from latentscenes.training.pipeline import load_run_config

    return load_run_config(run)


def test_exploit_takes_its_own_init_scales_and_resolution_but_keeps_the_runs_feature_sizes(tmp_path):
    from latentscenes.training.pipeline import load_exploited, load_trained, resample_planes

    torch.set_num_threads(1)
    run = tmp_path / "run"
    train_3daae(small_config(), run, scenes=sphere_scenes(2))
    cfg = exploit_config(json_cfg(run), ["triplane.local_init_std=0.01", "triplane.resolution=8", "triplane.f_mic=3",
                                         "exploit.fit.steps=0", "exploit.finetune_decoder=false"])
    res = exploit_3daae(run, tmp_path / "ex", cfg, scenes=sphere_scenes(2, prefix="n", seed=3))
    saved = json.loads((tmp_path / "ex" / "config.json").read_text())
    run_tp = json.loads((run / "config.json").read_text())["triplane"]
    assert saved["triplane"]["local_init_std"] == 0.01
    assert saved["triplane"]["resolution"] == 8 != run_tp["resolution"]
    assert saved["triplane"]["f_mic"] == run_tp["f_mic"] != 3  # a feature size is a shape of the run's MLP
    local = res["system"].bank.local.detach()
    assert res["system"].bank.planes(torch.tensor([0])).shape[-2:] == (8, 8)
    assert 0.005 < float(local.std()) < 0.02  # no fit step: the planes are the initialisation
    # No fit step and a frozen B: the batch's global planes are the run's, resampled to T = 8, and reload so.
    want = resample_planes(load_trained(run, "cpu").bank.global_planes, 8)
    assert torch.allclose(load_exploited(tmp_path / "ex", "cpu").bank.global_planes, want)


def test_resample_planes_keeps_the_field_at_the_new_texel_centres():
    from latentscenes.rendering.triplane import sample_triplanes
    from latentscenes.training.pipeline import resample_planes

    torch.manual_seed(0)
    planes = torch.randn(1, 3, 2, 8, 8)
    up = resample_planes(planes, 16)
    assert up.shape == (1, 3, 2, 16, 16)
    # Points away from the outer half texel: the bilinear field of the 16-texel planes matches the 8-texel one
    # at the new texel centres exactly, and in between up to the (small) interpolation error.
    c = (torch.arange(4, 12, dtype=torch.float32) + 0.5) / 16 * 2 - 1
    pts = torch.stack(torch.meshgrid(c, c, indexing="ij"), -1).reshape(-1, 2)
    pts = torch.cat([pts, torch.zeros(len(pts), 1)], -1)[None]  # z = 0: the XY plane at its texel centres
    a, b = sample_triplanes(planes, pts), sample_triplanes(up, pts)
    assert torch.allclose(a, b, atol=0.35) and float((a - b).abs().mean()) < 0.1
    assert torch.equal(resample_planes(planes, 8), planes)


def test_shift_views_moves_the_principal_point_with_the_image():
    from latentscenes.rendering.rays import generate_rays
    from latentscenes.training.data import ViewTable, shift_views

    torch.manual_seed(0)
    img = torch.rand(2, 3, 16, 16) * 2 - 1
    K = torch.tensor([[1.2, 0.0, 0.5], [0.0, 1.1, 0.45], [0.0, 0.0, 1.0]]).repeat(2, 1, 1)
    c2w = torch.eye(4).repeat(2, 1, 1)
    table = ViewTable.from_images(["a", "b"], (img + 1) / 2, c2w, K, torch.tensor([0, 1]))
    img = table.batch_images(torch.arange(2))  # the table's model-space images ((x + 1) / 2 * 2 - 1 rounds)
    s = shift_views(table, 2, 8)
    images = s.batch_images(torch.arange(len(s)))
    assert len(s) == 8 and s.scene_rows.tolist() == [0, 1] * 4 and torch.equal(images[:2], img)
    assert s.codes is table.codes  # the copies are cut per batch from the same codes, not stored
    o0, d0 = generate_rays(c2w[:1], K[:1], 16, 16)
    for copy, (ox, oy) in enumerate([(4, 0), (0, 4), (4, 4)], start=1):
        row = 2 * copy
        _, d = generate_rays(s.c2w[row : row + 1], s.K[row : row + 1], 16, 16)
        # pixel (i, j) of the copy is pixel (i + oy, j + ox) of the original, seen along the same ray
        assert torch.allclose(d.reshape(16, 16, 3)[: 16 - oy, : 16 - ox], d0.reshape(16, 16, 3)[oy:, ox:], atol=1e-6)
        assert torch.equal(images[row][:, : 16 - oy, : 16 - ox], img[0][:, oy:, ox:])
        # the uncovered right / bottom border repeats the edge pixels
        assert torch.equal(images[row][:, : 16 - oy, 16 - ox :], img[0][:, oy:, 15:].expand(-1, -1, ox))
    assert shift_views(table, 1) is table
    with pytest.raises(ValueError, match="divide"):
        shift_views(table, 3, 8)


def test_shift_grid_encodes_every_copy_at_the_same_budget(tmp_path):
    torch.set_num_threads(1)
    run = tmp_path / "run"
    train_3daae(small_config(), run, scenes=sphere_scenes(2))
    sets = ["exploit.fit.epochs=1", "exploit.finetune_decoder=false"]
    res = exploit_3daae(run, tmp_path / "ex", exploit_config(json_cfg(run), ["data.shift_grid=2", *sets]),
                        scenes=sphere_scenes(2, prefix="n", seed=3))
    one = exploit_3daae(run, tmp_path / "ex1", exploit_config(json_cfg(run), sets), scenes=sphere_scenes(2, prefix="n", seed=3))
    from safetensors.torch import load_file

    assert res["n_views"] == one["n_views"]  # the source views; the budget per scene is the same
    assert res["stages"]["exploit_fit"]["steps"] == one["stages"]["exploit_fit"]["steps"] > 0
    cached = [load_file(str(tmp_path / d / "cache" / "latents-exploit.safetensors"))["latents"] for d in ("ex", "ex1")]
    assert cached[0].shape[0] == 4 * cached[1].shape[0] and torch.equal(cached[0][: cached[1].shape[0]], cached[1])
    assert json.loads((tmp_path / "ex" / "manifest.json").read_text())["view_copies"] == 4
    # training (Alg. 1) takes it too: every copy in the table, the stages' budgets unchanged
    tr = train_3daae(dataclasses.replace(small_config(), data=dataclasses.replace(small_config().data, shift_grid=2)),
                     tmp_path / "run2", scenes=sphere_scenes(2))
    assert json.loads((tmp_path / "run2" / "manifest.json").read_text())["view_copies"] == 4
    assert tr["n_views"] == json.loads((run / "manifest.json").read_text())["n_views"]
    from latentscenes.training.config import validate_pipeline

    with pytest.raises(ValueError, match="shift_grid"):
        validate_pipeline(exploit_config(json_cfg(run), ["data.shift_grid=3"]))


def test_tiny_cpu_exploit_budget_is_per_scene_and_an_explicit_steps_override_wins():
    from latentscenes.config import apply_overrides, get_preset
    from latentscenes.training.config import PipelineConfig
    from latentscenes.training.stages import resolve_steps

    cfg = get_preset(PipelineConfig, "tiny-cpu")
    for n_scenes in (20, 50):
        n_views = 24 * n_scenes
        assert abs(resolve_steps(cfg.exploit.fit, n_views) * 8 / n_scenes - 400) <= 8 / n_scenes + 1e-9
        assert resolve_steps(cfg.exploit.finetune, n_views) * 8 == 48 * n_scenes
    c = apply_overrides(cfg, ["exploit.fit.steps=7"])
    assert resolve_steps(c.exploit.fit, 480) == 7 and c.exploit.finetune.epochs == 2.0
    c = apply_overrides(cfg, ["exploit.fit.steps=7", "exploit.fit.epochs=1"])
    assert resolve_steps(c.exploit.fit, 480) == 60


def test_dec_offset_merge_is_l_dec_on_the_merged_offset_decode():
    from latentscenes.autoencoder.model import load_autoencoder
    from latentscenes.rendering.offsets import merge_offset_images
    from latentscenes.training.data import shift_views

    cfg = small_config()
    torch.manual_seed(0)
    ae = load_autoencoder(cfg.ae, "cpu")
    base = build_view_table(sphere_scenes(2), "train", None, cfg.data.resolution)
    table = shift_views(base, 2, 8)
    system = build_system(cfg, ae, table.scene_ids)
    system.render = dataclasses.replace(system.render, deterministic=True)  # no sampling noise: comparable renders
    n = table.n_source_views
    rows = torch.tensor([1, n + 2, 3 * n + 1])  # copies 0, 1 and 3 of source views 1, 2, 1
    bank_rows = system.bank.rows(table.scene_ids)[table.scene_rows[rows]]
    st = StageConfig(lambda_enc=0.0, lambda_dec=1.0, dec_offset_merge=True)
    _, terms = stage_losses(system, table, None, rows, bank_rows, st, None, False)
    H, W = table.resolution
    src = rows % n
    with torch.no_grad():
        dec = []
        for c in range(4):
            r = src + c * n
            z = system.render_latents(bank_rows, table.c2w[r], table.K[r], H // 8, W // 8, None)["image"]
            dec.append(system.ae.decode(system.ae.denormalize(z)))
        want = torch.mean((merge_offset_images(torch.cat(dec), 2, 8) - table.batch_images(src)) ** 2)
        _, plain = stage_losses(system, table, None, rows, bank_rows, dataclasses.replace(st, dec_offset_merge=False),
                                None, False)
    assert torch.allclose(terms["dec"], want, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(terms["dec"], plain["dec"], rtol=1e-3)  # not the per-row L_Dec
    # one copy per view: the merged decode is the view's own decode, i.e. the paper's L_Dec
    rows0 = torch.arange(3)
    b0 = system.bank.rows(base.scene_ids)[base.scene_rows[rows0]]
    _, merged1 = stage_losses(system, base, None, rows0, b0, st, None, False)
    _, plain1 = stage_losses(system, base, None, rows0, b0, dataclasses.replace(st, dec_offset_merge=False), None, False)
    assert torch.allclose(merged1["dec"], plain1["dec"])


def test_dec_crop_is_l_dec_on_one_window_rendered_by_its_own_rays():
    from latentscenes.autoencoder.model import load_autoencoder
    from latentscenes.rendering.offsets import merge_offset_images
    from latentscenes.training.config import ConfigError, validate_pipeline
    from latentscenes.training.data import shift_views

    cfg = small_config()
    torch.manual_seed(0)
    ae = load_autoencoder(cfg.ae, "cpu")
    ae.upscale = 2  # 4 image pixels per latent pixel, a grid of 16 x 16 for the 32 px views
    ds = ae.downsample_factor
    table = build_view_table(sphere_scenes(2), "train", None, cfg.data.resolution)
    system = build_system(cfg, ae, table.scene_ids)
    system.render = dataclasses.replace(system.render, deterministic=True)  # comparable renders
    H, W = table.resolution
    h, c = H // ds, 5
    rows = torch.tensor([0, 3, 5])
    bank_rows = system.bank.rows(table.scene_ids)[table.scene_rows[rows]]
    x = table.batch_images(rows)

    def windows_of(z_full, ref):  # every window's L_Dec, cut from whole renders and decoded by hand
        return torch.stack([torch.mean((system.ae.decode(system.ae.denormalize(z_full[..., i:i + c, j:j + c]))
                                        - ref[..., ds * i:ds * (i + c), ds * j:ds * (j + c)]) ** 2)
                            for i in range(h - c + 1) for j in range(h - c + 1)])

    with torch.no_grad():
        z_full = system.render_latents(bank_rows, table.c2w[rows], table.K[rows], h, h, None)["image"]
        per_window = windows_of(z_full, x)
    st = StageConfig(lambda_enc=0.0, lambda_dec=1.0, dec_crop=c)
    seen = set()
    for seed in range(4):  # the window rendered alone (no L_Enc): its own rays give the crop of the whole render
        _, terms = stage_losses(system, table, None, rows, bank_rows, st, torch.Generator().manual_seed(seed), False)
        k = int(torch.argmin((per_window - terms["dec"].detach()).abs()))
        assert torch.allclose(terms["dec"], per_window[k], rtol=1e-4, atol=1e-6)
        seen.add(k)
        # with L_Enc in the stage the window is cut from its whole render: the same window, the same value
        lat = torch.zeros(len(table), z_full.shape[1], h, h)
        _, both = stage_losses(system, table, lat, rows, bank_rows, dataclasses.replace(st, lambda_enc=1.0),
                               torch.Generator().manual_seed(seed), False)
        assert torch.allclose(both["dec"], terms["dec"], rtol=1e-4, atol=1e-6)
    assert len(seen) > 1  # the window moves with the generator
    # a window as large as the grid is the paper's L_Dec
    _, whole = stage_losses(system, table, None, rows, bank_rows, dataclasses.replace(st, dec_crop=h), None, False)
    with torch.no_grad():
        assert torch.allclose(whole["dec"], torch.mean((system.ae.decode(system.ae.denormalize(z_full)) - x) ** 2),
                              rtol=1e-4, atol=1e-6)
    # with the offset merge every copy is rendered at the window, then merged against the window of the source view
    shifted = shift_views(table, 2, ds)
    n = shifted.n_source_views
    rows2 = torch.tensor([1, n + 2])
    b2 = system.bank.rows(shifted.scene_ids)[shifted.scene_rows[rows2]]
    src = rows2 % n
    with torch.no_grad():
        copies = torch.cat([system.render_latents(b2, shifted.c2w[src + k * n], shifted.K[src + k * n], h, h, None)["image"]
                            for k in range(4)])
        merged = torch.stack([torch.mean((merge_offset_images(system.ae.decode(system.ae.denormalize(
            copies[..., i:i + c, j:j + c])), 2, ds) - shifted.batch_images(src)[..., ds * i:ds * (i + c), ds * j:ds * (j + c)]) ** 2)
            for i in range(h - c + 1) for j in range(h - c + 1)])
    _, m = stage_losses(system, shifted, None, rows2, b2, dataclasses.replace(st, dec_offset_merge=True),
                        torch.Generator().manual_seed(0), False)
    assert torch.isclose(merged, m["dec"].detach(), rtol=1e-4, atol=1e-6).any()
    bad = dataclasses.replace(cfg, exploit=dataclasses.replace(
        cfg.exploit, finetune=dataclasses.replace(cfg.exploit.finetune, dec_crop=-2)))
    with pytest.raises(ConfigError, match="exploit.finetune.dec_crop"):
        validate_pipeline(bad)


def test_exploit_with_upscale_fits_finer_latents_and_evaluates_at_the_image_size(tmp_path):
    """ae.upscale = 2: the batch's targets are E(2x upsampled views), its scenes render 2x the latent pixels, and the
    decodes come back at the image size; the run itself stays at upscale 1, the batch reloads at 2."""
    from latentscenes.evaluation.runs import latent_system_model
    from latentscenes.training.pipeline import load_exploited, load_trained

    torch.set_num_threads(1)
    run = tmp_path / "run"
    train_3daae(small_config(), run, scenes=sphere_scenes(2))
    cfg = exploit_config(json_cfg(run), ["ae.upscale=2", "exploit.fit.steps=3", "exploit.finetune.steps=1"])
    new = sphere_scenes(1, prefix="n", seed=3)
    res = exploit_3daae(run, tmp_path / "ex", cfg, scenes=new)
    H = new[0].images.shape[-1]
    saved = json.loads((tmp_path / "ex" / "config.json").read_text())
    assert saved["ae"]["upscale"] == 2
    assert load_trained(run, "cpu").ae.downsample_factor == 8
    system = load_exploited(tmp_path / "ex", "cpu")
    assert system.ae.upscale == 2 and system.ae.downsample_factor == 4
    assert res["system"].ae.downsample_factor == 4
    model = latent_system_model(system)
    c2w, K = new[0].c2w[:1], new[0].K[:1]
    with torch.no_grad():
        lat = model.render(new[0].scene_id, c2w, K, (H // 4, H // 4)).image
        assert lat.shape[-2:] == (H // 4, H // 4)
        rgb = system.ae.decode(system.ae.denormalize(lat))
    assert rgb.shape[-2:] == (H, H)
    # Loaded with the run's scenes too (one composite model, the run's part first): the batch's scene still renders
    # on its own grid and evaluates at the image size.
    from latentscenes.evaluation.runs import load_run

    both = load_run(tmp_path / "ex", scenes="all", device="cpu").model
    from latentscenes.evaluation.model import render_resolution

    assert render_resolution(both, (H, H), new[0].scene_id) == (H // 4, H // 4)
    assert render_resolution(both, (H, H), both.scene_ids[0]) == (H // 8, H // 8)  # a training scene: the run's grid
    from latentscenes.evaluation.model import set_offset_ensemble

    with pytest.raises(ValueError, match="4x downsampling"):  # 8 offsets of 0.5 px on the batch's 4 px latent pixels
        set_offset_ensemble(both, 8)
    set_offset_ensemble(both, 4)


def test_upscale_must_divide_the_latent_pixel():
    from latentscenes.training.config import ConfigError, validate_pipeline

    cfg = small_config()
    for bad in (3, 16, True):
        with pytest.raises(ConfigError, match="ae.upscale"):
            validate_pipeline(dataclasses.replace(cfg, ae=dataclasses.replace(cfg.ae, upscale=bad)))
    up4 = dataclasses.replace(cfg, ae=dataclasses.replace(cfg.ae, upscale=4))
    validate_pipeline(dataclasses.replace(up4, data=dataclasses.replace(up4.data, shift_grid=2)))
    with pytest.raises(ConfigError, match="data.shift_grid"):
        validate_pipeline(dataclasses.replace(up4, data=dataclasses.replace(up4.data, shift_grid=4)))
    with pytest.raises(ConfigError, match="render.offset_ensemble"):
        validate_pipeline(dataclasses.replace(up4, render=dataclasses.replace(up4.render, offset_ensemble=4)))


def test_ae_crop_is_l_ae_on_one_window_of_latents_and_images():
    from latentscenes.autoencoder.model import load_autoencoder
    from latentscenes.training.config import ConfigError, validate_pipeline
    from latentscenes.training.stages import latent_window

    cfg = small_config()
    torch.manual_seed(0)
    ae = load_autoencoder(cfg.ae, "cpu")
    ae.upscale = 2
    table = build_view_table(sphere_scenes(2), "train", None, cfg.data.resolution)
    system = build_system(cfg, ae, table.scene_ids)
    lat, _, _ = encode_views(system, table, None, 8, False)
    h = lat.shape[-1]
    rows = torch.arange(4)
    bank_rows = system.bank.rows(table.scene_ids)[table.scene_rows[rows]]
    st = StageConfig(lambda_enc=0.0, lambda_dec=0.0, lambda_ae=1.0, lr_decoder=1e-4, ae_crop=h // 2)
    x = table.batch_images(rows)
    z = system.ae.denormalize(lat[rows])
    c = h // 2
    with torch.no_grad():  # every window's L_ae, decoded by hand: 4 image pixels per latent pixel at upscale 2
        per_window = torch.stack([torch.mean((system.ae.decode(z[..., i:i + c, j:j + c])
                                              - x[..., 4 * i:4 * (i + c), 4 * j:4 * (j + c)]) ** 2)
                                  for i in range(h - c + 1) for j in range(h - c + 1)])
    losses = set()
    for seed in range(4):
        _, terms = stage_losses(system, table, lat, rows, bank_rows, st, torch.Generator().manual_seed(seed), False)
        k = int(torch.argmin((per_window - terms["ae"].detach()).abs()))
        assert torch.allclose(terms["ae"], per_window[k], rtol=1e-4, atol=1e-6)
        losses.add(k)
    assert len(losses) > 1  # the window moves with the generator
    # a window as large as the latents is the whole L_ae
    full = dataclasses.replace(st, ae_crop=h)
    _, terms = stage_losses(system, table, lat, rows, bank_rows, full, torch.Generator().manual_seed(0), False)
    with torch.no_grad():
        assert torch.allclose(terms["ae"], torch.mean((system.ae.decode(z) - x) ** 2), rtol=1e-4, atol=1e-6)
    # the window's pixels are the ones its latents cover: average pooling commutes with the crop
    img = torch.rand(2, 3, 32, 32)
    zz = torch.nn.functional.avg_pool2d(img, 4)
    zw, xw = latent_window(zz, img, 3, 5, 4, torch.Generator().manual_seed(1))
    assert torch.allclose(torch.nn.functional.avg_pool2d(xw, 4), zw)
    bad = dataclasses.replace(cfg, exploit=dataclasses.replace(
        cfg.exploit, finetune=dataclasses.replace(cfg.exploit.finetune, ae_crop=-1)))
    with pytest.raises(ConfigError, match="exploit.finetune.ae_crop"):
        validate_pipeline(bad)


def test_ae_views_is_l_ae_on_the_first_views_of_the_batch():
    from latentscenes.autoencoder.model import load_autoencoder

    cfg = small_config()
    torch.manual_seed(0)
    ae = load_autoencoder(cfg.ae, "cpu")
    table = build_view_table(sphere_scenes(2), "train", None, cfg.data.resolution)
    system = build_system(cfg, ae, table.scene_ids)
    lat, _, _ = encode_views(system, table, None, 8, False)
    rows = torch.tensor([5, 0, 3, 1])
    bank_rows = system.bank.rows(table.scene_ids)[table.scene_rows[rows]]
    x, z = table.batch_images(rows), system.ae.denormalize(lat[rows])
    with torch.no_grad():
        per_view = ((system.ae.decode(z) - x) ** 2).mean(dim=(1, 2, 3))
    for k, want in ((2, per_view[:2].mean()), (4, per_view.mean()), (0, per_view.mean()), (9, per_view.mean())):
        st = StageConfig(lambda_enc=0.0, lambda_ae=1.0, lr_decoder=1e-4, ae_views=k)
        _, terms = stage_losses(system, table, lat, rows, bank_rows, st, torch.Generator().manual_seed(0), False)
        assert torch.allclose(terms["ae"], want, rtol=1e-4, atol=1e-6), k
    assert not torch.allclose(per_view[:2].mean(), per_view.mean(), rtol=1e-3)  # the subset is a different loss
    # both: one window of the first 2 views
    h, c = z.shape[-1], z.shape[-1] // 2
    with torch.no_grad():
        windows = torch.stack([torch.mean((system.ae.decode(z[:2, :, i:i + c, j:j + c])
                                           - x[:2, :, 8 * i:8 * (i + c), 8 * j:8 * (j + c)]) ** 2)
                               for i in range(h - c + 1) for j in range(h - c + 1)])
    st = StageConfig(lambda_enc=0.0, lambda_ae=1.0, lr_decoder=1e-4, ae_views=2, ae_crop=c)
    _, terms = stage_losses(system, table, lat, rows, bank_rows, st, torch.Generator().manual_seed(0), False)
    assert torch.isclose(windows, terms["ae"].detach(), rtol=1e-4, atol=1e-6).any()
