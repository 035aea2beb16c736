"""``balance_latent_channels``: equal per-channel latent std, the same decoded images, a posterior that scales with
its mean."""

from __future__ import annotations

import pytest
import torch

from latentscenes.autoencoder.balance import balance_latent_channels, channel_std
from latentscenes.autoencoder.model import AEConfig, AutoencoderError, load_autoencoder


@pytest.fixture()
def unequal():
    torch.manual_seed(0)
    ae = load_autoencoder(AEConfig(source="scratch", block_out_channels=(8, 8, 16, 16), norm_num_groups=4,
                                   mid_block_attention=False, tanh_scale=0.3))
    with torch.no_grad():  # the posterior mean's channels 30x apart
        f = torch.tensor([0.1, 0.3, 1.0, 3.0])
        ae.vae.quant_conv.weight[:4] *= f.view(4, 1, 1, 1)
        ae.vae.quant_conv.bias[:4] *= f
        ae.vae.post_quant_conv.weight[:, :4] /= f.view(1, 4, 1, 1)
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    return ae, x


def test_balanced_channels_have_equal_std_and_decode_the_same(unequal):
    ae, x = unequal
    std0 = channel_std(ae, x)
    assert float(std0.max() / std0.min()) > 10  # the fixture is unbalanced
    with torch.no_grad():
        y0 = ae.reconstruct(x)
        lv0 = ae.encode_distribution(x).logvar
    rep = balance_latent_channels(ae, x)
    std1 = channel_std(ae, x)
    assert float(std1.max() / std1.min()) < 1.001
    assert torch.allclose(std1, torch.tensor(rep["std_after"]), rtol=1e-5)
    assert abs(float(std1.pow(2).mean().sqrt()) - rep["target_std"]) < 1e-3 * rep["target_std"]
    with torch.no_grad():
        y1 = ae.reconstruct(x)
        lv1 = ae.encode_distribution(x).logvar
    assert float((y1 - y0).abs().max()) < 1e-4
    k = torch.tensor(rep["factors"])
    assert torch.allclose(lv1 - lv0, (2 * k.log()).view(1, 4, 1, 1).expand_as(lv0), atol=1e-4)


def test_without_post_quant_conv_the_decoders_first_convolution_takes_the_inverse(unequal):
    """The other reader: with no post_quant_conv, conv_in's input columns carry 1/k (same image, equal stds)."""
    ae, x = unequal
    with torch.no_grad():  # fold post_quant_conv (a 1x1 conv) into an equivalent model without it
        pq = ae.vae.post_quant_conv
        ci = ae.vae.decoder.conv_in
        w = torch.einsum("oikl,ij->ojkl", ci.weight, pq.weight[:, :, 0, 0])
        b = ci.bias + torch.einsum("oikl,i->o", ci.weight, pq.bias)
        ci.weight.copy_(w)
        ci.bias.copy_(b)
        ae.vae.post_quant_conv = None
        y0 = ae.reconstruct(x)
    balance_latent_channels(ae, x)
    std1 = channel_std(ae, x)
    assert float(std1.max() / std1.min()) < 1.001
    with torch.no_grad():
        assert float((ae.reconstruct(x) - y0).abs().max()) < 1e-4


def test_a_model_without_quant_conv_is_refused(unequal):
    ae, x = unequal
    ae.vae.quant_conv = None
    with pytest.raises(AutoencoderError, match="quant_conv"):
        balance_latent_channels(ae, x)


def test_pretrain_balances_the_saved_model_when_asked(tmp_path):
    from latentscenes.autoencoder.balance import channel_std as cstd
    from latentscenes.autoencoder.data import to_model_space
    from latentscenes.autoencoder.pretrain import PretrainConfig, PretrainError, pretrain
    from latentscenes.config import get_preset

    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (8, 3, 32, 32), generator=g, dtype=torch.uint8)
    cfg = get_preset(PretrainConfig, "test")
    plain, s0 = pretrain(cfg, imgs, imgs[:4], tmp_path / "plain", show_progress=False)
    cfg.balance_channels = "std"
    bal, s1 = pretrain(cfg, imgs, imgs[:4], tmp_path / "bal", show_progress=False)
    x = to_model_space(imgs[:4])
    std0, std1 = cstd(plain, x), cstd(bal, x)
    assert s0["channel_balance"] is None and len(s1["channel_balance"]["factors"]) == 4
    assert float(std0.max() / std0.min()) > 1.05 and float(std1.max() / std1.min()) < 1.001
    with torch.no_grad():  # the same training, then a function-preserving rescale: the same images
        assert float((plain.reconstruct(x) - bal.reconstruct(x)).abs().max()) < 1e-4
    loaded = load_autoencoder(AEConfig(source="path", path=str(tmp_path / "bal" / "ae.safetensors")))
    assert torch.allclose(cstd(loaded, x), std1, rtol=1e-5) and loaded.tanh_scale == pytest.approx(s1["tanh_scale"])
    cfg.balance_channels = "loud"
    with pytest.raises(PretrainError, match="balance_channels"):  # before any training
        pretrain(cfg, imgs, imgs[:4], tmp_path / "typo", show_progress=False)
    assert not (tmp_path / "typo").exists()


def test_sensitivity_mode_equalises_what_each_channel_does_to_the_image(unequal):
    from latentscenes.autoencoder.balance import decoder_sensitivity

    ae, x = unequal
    g0 = decoder_sensitivity(ae, x)
    assert float(g0.max() / g0.min()) > 3  # the fixture's decoder reads its channels at 30x different gains
    with torch.no_grad():
        y0 = ae.reconstruct(x)
    rep = balance_latent_channels(ae, x, mode="sensitivity")
    g1 = decoder_sensitivity(ae, x)
    assert rep["mode"] == "sensitivity" and torch.allclose(torch.tensor(rep["sensitivity_before"]), g0, rtol=1e-4)
    assert float(g1.max() / g1.min()) < 1.05
    # the overall latent spread is kept
    assert abs(float(torch.tensor(rep["std_after"]).pow(2).mean().sqrt()) - rep["target_std"]) < 1e-3 * rep["target_std"]
    with torch.no_grad():
        assert float((ae.reconstruct(x) - y0).abs().max()) < 1e-4
    with pytest.raises(AutoencoderError, match="mode"):
        balance_latent_channels(ae, x, mode="loudness")
