"""``grow_autoencoder`` / ``latentscenes ae grow``: a wider / deeper autoencoder that computes the same function
(GroupNorm groups, the mid-block attention and the new identity blocks included), whose duplicated channels
diverge once it trains, saved and loaded like any autoencoder file."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from latentscenes.autoencoder.grow import grow_autoencoder, grown_config
from latentscenes.autoencoder.model import AEConfig, AutoencoderError, LatentAutoencoder, load_autoencoder
from latentscenes.cli.main import app


@pytest.fixture(scope="module")
def small() -> LatentAutoencoder:
    torch.manual_seed(0)
    ae = load_autoencoder(AEConfig(source="scratch", block_out_channels=(8, 8, 16, 16), norm_num_groups=4,
                                   mid_block_attention=True, tanh_scale=0.3))
    with torch.no_grad():  # non-trivial norms and biases, so that a wrong channel map shows
        for name, p in ae.vae.named_parameters():
            if p.dim() == 1:
                p.add_(0.3 * torch.randn_like(p))
    return ae


def _outputs(ae: LatentAutoencoder, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        z = ae.encode(x)
        return z, ae.decode(z)


@pytest.mark.parametrize("width,extra", [(2, 0), (1, 1), (2, 2)])
def test_grown_autoencoder_computes_the_same_function(small, width, extra):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    z0, y0 = _outputs(small, x)
    g = grow_autoencoder(small, width, extra, seed=3)
    z1, y1 = _outputs(g, x)
    assert torch.allclose(z0, z1, atol=1e-4) and torch.allclose(y0, y1, atol=1e-4)
    assert g.vae_config["block_out_channels"] == [c * width for c in (8, 8, 16, 16)]
    assert g.vae_config["layers_per_block"] == 1 + extra and g.tanh_scale == small.tanh_scale
    assert g.num_parameters() > small.num_parameters()
    assert g.info["grown_from"]["width_factor"] == width and g.info["grown_from"]["extra_layers"] == extra
    # the decoded function of the source at other inputs too (not only where the splits were drawn)
    zr = torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        assert torch.allclose(small.decode(zr), g.decode(zr), atol=1e-4)


def test_a_group_unaware_channel_map_would_show(small, monkeypatch):
    """The test above can fail: copies placed in other GroupNorm groups change every normalisation."""
    import latentscenes.autoencoder.grow as grow

    monkeypatch.setattr(grow, "_channel_map", lambda old, groups: torch.arange(2 * old) % old)
    monkeypatch.setattr(grow, "_first_copy", lambda old, groups: torch.arange(2 * old) < old)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    z0, y0 = _outputs(small, x)
    z1, y1 = _outputs(grow.grow_autoencoder(small, 2, 0), x)
    assert not torch.allclose(z0, z1, atol=1e-3)


def test_same_seed_same_weights_and_the_lineage_is_kept(small, tmp_path):
    a, b = grow_autoencoder(small, 2, 1, seed=5, source="mine"), grow_autoencoder(small, 2, 1, seed=5)
    c = grow_autoencoder(small, 2, 1, seed=6)
    sa, sb, sc = a.vae.state_dict(), b.vae.state_dict(), c.vae.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)  # new blocks' init and the splits: all from the seed
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.info["source"] == "grown" and a.info["grown_from"]["source"] == "mine"
    assert a.info["grown_from"]["info"] == small.info  # the source's own record, nested, not mixed in


def test_pretraining_a_grown_autoencoder_keeps_its_lineage(small, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "training"))
    from helpers_3daae import write_sphere_dataset

    grown = tmp_path / "grown.safetensors"
    grow_autoencoder(small, 1, 1, source="tiny").save(grown)
    data = write_sphere_dataset(tmp_path / "data")
    r = CliRunner().invoke(app, ["ae", "pretrain", "--data", str(data), "--out", str(tmp_path / "run"), "--preset", "test",
                                 "--ae", str(grown), "--steps", "1"])
    assert r.exit_code == 0, r.output
    trained = load_autoencoder(AEConfig.from_option(str(tmp_path / "run" / "ae.safetensors")))
    assert trained.info["source"] == "pretrain" and trained.info["grown_from"]["source"] == "tiny"
    assert trained.vae_config["layers_per_block"] == 2


def test_a_wrong_attention_scale_would_show(small):
    """The first test can fail: dropping the query's 1/sqrt(2) changes the output."""
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    g = grow_autoencoder(small, 2, 0)
    with torch.no_grad():
        for name, p in g.vae.named_parameters():
            if name.endswith("to_q.weight"):
                p.mul_(2 ** 0.5)
    z0, _ = _outputs(small, x)
    z1, _ = _outputs(g, x)
    assert not torch.allclose(z0, z1, atol=1e-4)


def test_duplicated_channels_diverge_when_trained(small):
    g = grow_autoencoder(small, 2, 0, seed=0)
    g.train()
    opt = torch.optim.SGD(g.parameters(), lr=0.1)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    w0 = g.vae.encoder.conv_in.weight.detach().clone()
    # 8 channels in 4 groups -> 16 in 4: new group 0 = old channels (0, 1, 0, 1), so new 0 and 2 copy old 0
    assert torch.equal(w0[0], w0[2]) and not torch.equal(w0[0], w0[1])
    loss = (g.vae.decode(g.vae.encode(x).latent_dist.mean).sample - x).abs().mean()
    loss.backward()
    opt.step()
    w1 = g.vae.encoder.conv_in.weight.detach()
    assert not torch.allclose(w1[0], w1[2])


def test_invalid_growth_is_refused(small):
    with pytest.raises(AutoencoderError, match="width_factor must be 1 or 2"):
        grown_config(small.vae_config, 3, 0)
    with pytest.raises(AutoencoderError, match="nothing to grow"):
        grow_autoencoder(small, 1, 0)
    with pytest.raises(AutoencoderError, match="extra_layers must be >= 0"):
        grown_config(small.vae_config, 2, -1)


def test_cli_grow_writes_a_loadable_equal_file(small, tmp_path):
    src = tmp_path / "src.safetensors"
    small.save(src)
    out = tmp_path / "grown.safetensors"
    r = CliRunner().invoke(app, ["ae", "grow", "--ae", str(src), "--out", str(out), "--width", "2", "--extra-layers", "1"])
    assert r.exit_code == 0, r.output
    assert "max output difference" in " ".join(r.output.split())
    g = load_autoencoder(AEConfig.from_option(str(out)))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.allclose(_outputs(small, x)[1], _outputs(g, x)[1], atol=1e-4)
    r = CliRunner().invoke(app, ["ae", "grow", "--ae", str(src), "--out", str(tmp_path / "g.pt")])
    assert r.exit_code == 2 and ".safetensors" in r.output


@pytest.mark.parametrize("width,extra", [(1, 0), (2, 1)])
def test_more_latent_channels_keep_the_function_and_the_new_channels_learn(small, width, extra):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    z0, y0 = _outputs(small, x)
    g = grow_autoencoder(small, width, extra, seed=2, latent_channels=8)
    assert g.latent_channels == 8 and g.info["grown_from"]["latent_channels"] == [4, 8]
    z1, y1 = _outputs(g, x)
    assert z1.shape[1] == 8
    assert torch.allclose(z0, z1[:, :4], atol=1e-4)  # the source's latent space, extended
    assert torch.allclose(y0, y1, atol=1e-4)
    with torch.no_grad():  # the posterior's log-variance too: source's on the old channels, constant on the new
        lv0, lv1 = small.encode_distribution(x).logvar, g.encode_distribution(x).logvar
    assert torch.allclose(lv0, lv1[:, :4], atol=1e-4)
    assert torch.allclose(lv1[:, 4:], lv1[:, 4:].flatten()[0].expand_as(lv1[:, 4:]), atol=1e-5)
    assert z1[:, 4:].abs().mean() > 1e-3  # the new channels carry signal from the start ...
    with torch.no_grad():  # ... and whatever they hold, the decoded image is the source's
        zr = torch.cat([z0, 5 * torch.randn_like(z0)], dim=1)
        assert torch.allclose(small.decode(z0), g.decode(zr), atol=1e-4)
    # one step: the decoder's weights on the new channels move (the gradient reaches them)
    g.train()
    opt = torch.optim.SGD(g.parameters(), lr=0.1)
    loss = (g.vae.decode(g.vae.encode(x).latent_dist.mean).sample - x).abs().mean()
    loss.backward()
    opt.step()
    assert g.vae.decoder.conv_in.weight[:, 4:].abs().max() > 0


def test_zeroed_decoder_weights_are_what_keeps_the_image(small):
    """The test above can fail: a decoder that reads the new channels with its default weights changes the image."""
    g = grow_autoencoder(small, 1, 0, latent_channels=8)
    with torch.no_grad():
        g.vae.decoder.conv_in.weight[:, 4:].normal_()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    assert not torch.allclose(_outputs(small, x)[1], _outputs(g, x)[1], atol=1e-3)


def test_latent_channels_cannot_shrink(small):
    with pytest.raises(AutoencoderError, match="can only grow"):
        grown_config(small.vae_config, 1, 0, latent_channels=2)


def test_cli_grows_the_latent_channels(small, tmp_path):
    src = tmp_path / "src.safetensors"
    small.save(src)
    out = tmp_path / "c8.safetensors"
    r = CliRunner().invoke(app, ["ae", "grow", "--ae", str(src), "--out", str(out), "--width", "1",
                                 "--latent-channels", "8"])
    assert r.exit_code == 0, r.output
    assert "4 -> 8 latent channels" in " ".join(r.output.split())
    assert load_autoencoder(AEConfig.from_option(str(out))).latent_channels == 8


def test_a_wrong_moment_map_would_show(small, monkeypatch):
    """The log-variance check above can fail: old [mean | logvar] rows kept together put the source's log-variance
    into new mean channels and move its own."""
    import latentscenes.autoencoder.grow as grow

    real = grow._pad_latent

    def together(name, old_t, new_t, old_c, new_c, logvar_at):
        if name.startswith("encoder.conv_out"):
            t = new_t.clone()
            t[: 2 * old_c] = old_t
            return t
        return real(name, old_t, new_t, old_c, new_c, logvar_at)

    monkeypatch.setattr(grow, "_pad_latent", together)
    g = grow.grow_autoencoder(small, 1, 0, latent_channels=8)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        lv0, lv1 = small.encode_distribution(x).logvar, g.encode_distribution(x).logvar
    assert not torch.allclose(lv0, lv1[:, :4], atol=1e-4)
