"""Loss terms of the stages (latentscenes.training.losses)."""

import pytest
import torch

from latentscenes.training.losses import triplane_tv


def _tv_reference(p: torch.Tensor, mode: str) -> torch.Tensor:
    """The authors' TV formula (docs/training.md) written with plain slices (autograd does the backward)."""
    dh = p[..., 1:, :] - p[..., :-1, :]
    dw = p[..., :, 1:] - p[..., :, :-1]
    s = (dh**2).sum() + (dw**2).sum() if mode == "l2" else dh.abs().sum() + dw.abs().sum()
    return s / (p.shape[-1] + p.shape[-2])


@pytest.mark.parametrize("mode", ["l2", "l1"])
def test_tv_value_and_gradient_match_the_formula(mode):
    g = torch.Generator().manual_seed(0)
    base = torch.randn(2, 3, 5, 7, 6, generator=g, dtype=torch.float64)  # non-square planes: H and W differ
    a = base.clone().requires_grad_(True)
    b = base.clone().requires_grad_(True)
    va, vb = triplane_tv(a, mode), _tv_reference(b, mode)
    (3.0 * va).backward()
    (3.0 * vb).backward()
    assert torch.allclose(va, vb) and va.item() > 0
    assert torch.allclose(a.grad, b.grad)


def test_tv_l2_passes_gradcheck_and_is_zero_on_constant_planes():
    x = torch.randn(1, 3, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: triplane_tv(t, "l2"), (x,))
    c = torch.full((1, 3, 2, 4, 4), 0.7, requires_grad=True)
    v = triplane_tv(c)
    v.backward()
    assert v.item() == 0 and c.grad.abs().max().item() == 0


def test_tv_unknown_mode():
    with pytest.raises(ValueError, match="tv mode"):
        triplane_tv(torch.zeros(1, 3, 1, 2, 2), "l3")
