"""The optimisation loop and optimiser wrapper every fit runs (training/loop.py): the latent stages and the RGB
baselines alike. Dense vs lazy per-scene Adam, the loop's curve, clocks, schedules and its finite-loss guard."""

from __future__ import annotations

import pytest
import torch

from latentscenes.config import get_preset
from latentscenes.scenes import SceneBank, TriplaneConfig
from latentscenes.training.losses import NonFiniteLossError
from latentscenes.training.loop import GroupOptimizers, ParamGroup, StageResult, StepOutput, optimise


def _bank(ids=("a", "b", "c", "d"), sparse=False):
    bank = SceneBank(get_preset(TriplaneConfig, "test"), list(ids), generator=torch.Generator().manual_seed(0))
    bank.sparse_grad = sparse
    return bank


def _opts(bank, sparse, lr=1e-2, extra=()):
    return GroupOptimizers([ParamGroup("local", [bank.local], lr, per_scene=True),
                            ParamGroup("coefs", [bank.coefs], lr, per_scene=True),
                            ParamGroup("global", bank.shared_parameters(), lr), *extra], sparse=sparse)


def test_sparse_optimizer_leaves_absent_scenes_untouched_dense_does_not():
    for sparse in (True, False):
        bank = _bank(sparse=sparse)
        opt = _opts(bank, sparse)
        # step 1 touches a and b; step 2 touches only c
        for batch in (["a", "b"], ["c"]):
            before = bank.per_scene_state()
            opt.zero_grad()
            bank.planes(bank.rows(batch)).pow(2).mean().backward()
            opt.step(bank.rows(batch))
            after = bank.per_scene_state()
        moved = {s for i, s in enumerate(bank.scene_ids) if not torch.equal(before["local"][i], after["local"][i])}
        if sparse:
            assert moved == {"c"}  # a and b keep still although they have Adam momentum
        else:
            assert moved == {"a", "b", "c"}  # the paper's dense Adam moves a, b through momentum
        # d was never in a batch: never moves in either mode (zero gradients, zero momentum)
        assert "d" not in moved


def test_sparse_adam_matches_per_scene_adam():
    """Lazy Adam on a scene = a private torch Adam that only saw that scene's batches."""
    bank = _bank(ids=("a", "b"), sparse=True)
    ref = torch.nn.Parameter(bank.local.detach()[0].clone())
    ref_opt = torch.optim.Adam([ref], lr=1e-2)
    opt = GroupOptimizers([ParamGroup("local", [bank.local], 1e-2, per_scene=True)], sparse=True)
    target = torch.randn_like(ref)
    for batch in (["a"], ["b"], ["a", "b"], ["a"]):
        opt.zero_grad()
        planes = bank.planes(bank.rows(batch))
        loss = planes.sum() * 0.0  # scene b is in some batches but contributes no gradient
        for i, s in enumerate(batch):
            if s == "a":  # the first F_mic = 4 channels are scene a's local planes
                loss = loss + ((planes[i, :, :4].reshape(-1) - target) ** 2).sum()
        loss.backward()
        opt.step(bank.rows(batch))
        if "a" in batch:
            ref_opt.zero_grad()
            ((ref - target) ** 2).sum().backward()
            ref_opt.step()
    assert torch.allclose(bank.local.detach()[0], ref.detach(), atol=1e-6)


def test_frozen_groups_get_no_optimiser_and_no_gradient_and_lr_factors_scale_every_group():
    bank = _bank(sparse=True)
    mlp = torch.nn.Linear(2, 2)
    opt = _opts(bank, True, extra=[ParamGroup("mlp", list(mlp.parameters()), 0.0)])
    assert set(opt.dense) == {"global"} and set(opt.lazy) == {"local", "coefs"}
    assert not any(p.requires_grad for p in mlp.parameters())
    opt.set_lr_factor(0.25)
    assert opt.dense["global"].param_groups[0]["lr"] == pytest.approx(2.5e-3)
    assert opt.lazy["local"].lr == pytest.approx(2.5e-3)
    with pytest.raises(ValueError, match="given twice"):
        GroupOptimizers([ParamGroup("a", [torch.nn.Parameter(torch.zeros(1))], 1.0)] * 2, sparse=False)


def _quadratic(target=3.0, lr=0.1):
    w = torch.nn.Parameter(torch.zeros(1))
    opts = GroupOptimizers([ParamGroup("mlp", [w], lr)], sparse=False)
    rows = torch.zeros(1, dtype=torch.long)

    def forward(step: int) -> StepOutput:
        loss = ((w - target) ** 2).sum()
        return StepOutput(loss, {"total": float(loss.detach())}, rows)

    return w, opts, forward


def test_the_loop_learns_records_its_curve_and_keeps_eval_out_of_its_clock():
    w, opts, forward = _quadratic()
    seen, lrs = [], []

    def run_eval(step):
        seen.append(step)
        return {"w": float(w.detach())}

    res = optimise(stage="q", n_steps=50, start=0, result=StageResult("q"), opts=opts, forward=forward,
                   device=torch.device("cpu"), lr_factor=lambda k: lrs.append(k) or 1.0, run_eval=run_eval,
                   eval_every=20, eval_at_start=True, log_every=10)
    assert abs(float(w.detach()) - 3.0) < 0.5  # Adam at lr 0.1 walks from 0 towards 3
    assert seen == [0, 20, 40, 50] and [c["step"] for c in res.curve] == seen
    assert res.curve[0]["w"] == 0.0 and res.curve[-1]["w"] == pytest.approx(float(w.detach()))
    assert lrs == list(range(50)) and res.steps == 50
    assert res.train_s > 0 and res.eval_s > 0 and res.cpu_s > 0
    # final_losses: the mean over the last log window (steps 41..50), not over the whole fit
    assert res.final_losses["total"] < 1.0


def test_frozen_from_stops_a_group_and_a_checkpoint_is_written_one_step_late_and_at_the_end():
    w, opts, forward = _quadratic()
    written = []
    optimise(stage="q", n_steps=10, start=0, result=StageResult("q"), opts=opts, forward=forward,
             device=torch.device("cpu"), frozen_from=[("mlp", 4)],
             write_checkpoint=lambda k, done: written.append((k, done)) or 0.0, checkpoint_every=3)
    # due after 3, 6, 9 updates: written during updates 4, 7, 10 (their loss was finite first), then the end
    assert written == [(3, False), (6, False), (9, False), (10, True)]
    w2, opts2, forward2 = _quadratic()
    for _ in range(4):  # the same four updates by hand: the frozen group never moved afterwards
        opts2.zero_grad(); forward2(0).total.backward(); opts2.step(torch.zeros(1, dtype=torch.long))
    assert float(w.detach()) == pytest.approx(float(w2.detach()))


def test_a_non_finite_loss_stops_the_loop_before_that_update():
    w, opts, _ = _quadratic()
    rows = torch.zeros(1, dtype=torch.long)
    at_5 = []

    def forward(step):
        if step == 5:
            at_5.append(float(w.detach()))
        loss = ((w - 3.0) ** 2).sum() * (float("nan") if step == 5 else 1.0)
        return StepOutput(loss, {"total": float(loss.detach())}, rows)

    with pytest.raises(NonFiniteLossError) as e:
        optimise(stage="q", n_steps=10, start=0, result=StageResult("q"), opts=opts, forward=forward,
                 device=torch.device("cpu"), last_good=lambda: "ckpt-3")
    assert e.value.stage == "q" and e.value.step == 5 and "ckpt-3" in str(e.value)
    assert float(w.detach()) == at_5[0]  # the failing update changed nothing
