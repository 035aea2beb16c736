"""Micro-Macro composition and the scene bank: hand computations, gradient isolation, optimisers, shards."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from latentscenes.config import get_preset
from latentscenes.scenes import SceneBank, TriplaneConfig, compose_micro_macro


def test_micro_macro_equals_hand_computation():
    T = 2
    local = torch.arange(2 * 3 * 1 * T * T, dtype=torch.float32).reshape(2, 3, 1, T, T)
    B = torch.stack([torch.full((3, 2, T, T), 1.0), torch.full((3, 2, T, T), 10.0)])  # M=2, F_mac=2
    B[1, 2, 1, 0, 1] = 20.0
    W = torch.tensor([[2.0, 0.5], [-1.0, 3.0]])
    out = compose_micro_macro(local, W, B)
    assert out.shape == (2, 3, 3, T, T)
    assert torch.equal(out[:, :, :1], local)  # local channels first (Eq. 6)
    # Eq. 7 by hand: scene 0 -> 2*1 + 0.5*10 = 7; scene 1 -> -1 + 30 = 29
    assert torch.allclose(out[0, 0, 1:], torch.full((2, T, T), 7.0))
    assert torch.allclose(out[1, 1, 1:], torch.full((2, T, T), 29.0))
    assert out[0, 2, 2, 0, 1].item() == pytest.approx(2 * 1 + 0.5 * 20)
    assert out[1, 2, 2, 0, 1].item() == pytest.approx(-1 + 3 * 20)
    # F_mac = 0 ("Micro") and F_mic = 0 ("Macro")
    assert torch.equal(compose_micro_macro(local, None, None), local)
    assert torch.allclose(compose_micro_macro(None, W, B), out[:, :, 1:])
    with pytest.raises(ValueError):
        compose_micro_macro(None, None, None)
    with pytest.raises(ValueError):
        compose_micro_macro(local, W, None)


def _bank(ids=("a", "b", "c", "d"), **kw):
    return SceneBank(get_preset(TriplaneConfig, "test"), list(ids), generator=torch.Generator().manual_seed(0), **kw)


@pytest.mark.parametrize("sparse", [False, True])
def test_gradients_reach_exactly_the_scenes_in_the_batch(sparse):
    bank = _bank(sparse_grad=sparse)
    rows = bank.rows(["b", "d", "b"])
    bank.planes(rows).pow(2).sum().backward()
    for p in (bank.local, bank.coefs):
        g = p.grad.to_dense() if p.grad.is_sparse else p.grad
        touched = set(torch.nonzero(g.abs().sum(dim=1)).flatten().tolist())
        assert touched == {1, 3}
    assert bank.global_planes.grad.abs().sum() > 0  # shared parameters are trained by every scene


def test_add_scenes_keeps_old_ones():
    for sparse in (False, True):
        bank = _bank(ids=("a", "b"), sparse_grad=sparse)
        old = bank.per_scene_state(["a", "b"])
        rows = bank.add_scenes(["c", "e"])
        assert rows.tolist() == [2, 3] and bank.num_scenes == 4
        new = bank.per_scene_state(["a", "b"])
        assert all(torch.equal(old[k], new[k]) for k in old)
        bank.planes(bank.rows(["e"])).sum().backward()  # the new rows are trainable parameters
        g = bank.local.grad.to_dense() if bank.local.grad.is_sparse else bank.local.grad
        assert g[3].abs().sum() > 0 and g[:3].abs().sum() == 0
        with pytest.raises(ValueError):
            bank.add_scenes(["a"])
        with pytest.raises(KeyError):
            bank.rows(["zz"])


def test_shards_round_trip_and_bytes_equal_saved_tensors(tmp_path):
    bank = _bank()
    cfg = bank.cfg
    assert bank.per_scene_bytes() == (3 * cfg.f_mic * cfg.resolution**2 + cfg.n_global) * 4
    assert bank.shared_bytes() == cfg.n_global * 3 * cfg.f_mac * cfg.resolution**2 * 4
    bank.save_shard(tmp_path / "s.safetensors", ["b", "d"])
    bank.save_shared(tmp_path / "g.safetensors")
    with safe_open(str(tmp_path / "s.safetensors"), framework="pt") as f:
        saved = sum(f.get_tensor(k).numel() * f.get_tensor(k).element_size() for k in f.keys())
    assert saved == 2 * bank.per_scene_bytes()
    with safe_open(str(tmp_path / "g.safetensors"), framework="pt") as f:
        assert sum(f.get_tensor(k).numel() * 4 for k in f.keys()) == bank.shared_bytes()
    other = SceneBank(cfg, ["x"])
    assert other.load_shard(tmp_path / "s.safetensors") == ["b", "d"]
    other.load_shared(tmp_path / "g.safetensors")
    assert other.scene_ids == ["x", "b", "d"]
    assert torch.equal(other.planes(other.rows(["d"])), bank.planes(bank.rows(["d"])))
    wrong = SceneBank(TriplaneConfig(resolution=8, f_mic=4, f_mac=4, n_global=4))
    with pytest.raises(ValueError):
        wrong.load_shard(tmp_path / "s.safetensors")


def test_triplane_presets_and_variants():
    tiny = get_preset(TriplaneConfig, "tiny-cpu")
    assert (tiny.resolution, tiny.f_mic, tiny.f_mac, tiny.n_global) == (32, 10, 22, 10)
    paper = get_preset(TriplaneConfig, "paper")
    assert (paper.resolution, paper.features, paper.n_global) == (64, 32, 50)
    # paper per-scene memory: 10*3*64^2 + 50 floats (the authors' code also stores a per-scene bias, never trained)
    assert SceneBank(paper, ["s"]).per_scene_bytes() == (10 * 3 * 64 * 64 + 50) * 4
    micro = SceneBank(TriplaneConfig(resolution=8, f_mic=5, f_mac=0, n_global=0), ["a"])
    assert micro.planes(micro.rows(["a"])).shape == (1, 3, 5, 8, 8) and micro.shared_bytes() == 0
    macro = SceneBank(TriplaneConfig(resolution=8, f_mic=0, f_mac=6, n_global=3), ["a"])
    assert macro.planes(macro.rows(["a"])).shape == (1, 3, 6, 8, 8) and macro.per_scene_bytes() == 3 * 4
