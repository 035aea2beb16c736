"""The demo's evaluate -> render -> report phases on fakes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import latent_model, rgb_model
from latentscenes.evaluation.cameras import camera_defaults_from_views
from latentscenes.evaluation.render import TurntableConfig
from latentscenes.evaluation.reporting import FitFigures, ReportPlan, evaluate_and_report


def test_evaluate_and_report_folder(tmp_path, scenes):
    ours = latent_model(scenes, {"a": 0.0, "b": 0.02, "c": 0.05})
    base = rgb_model({"b": scenes["b"]}, {"b": 0.05})
    phases = {"train": 12.0}
    plan = ReportPlan(train_ids=["a"], exploit_ids=["b", "c"], rgb_ids=["b"], grid_scenes=2, grid_views=1,
                      turntable_scenes=1, turntable=TurntableConfig(n_frames=4, n_views=1))
    out = evaluate_and_report(tmp_path / "rep", ours, base, scenes, plan, camera_defaults_from_views(scenes.values()),
                              FitFigures(2.5, 1234, "fit + fine-tune"), FitFigures(30.0, 99999), phases)
    text = Path(out["report"]).read_text()
    assert "| fake 3Da-AE | 2 |" in text and "| fake RGB | 1 |" in text and "| fake 3Da-AE, same scenes as RGB | 1 |" in text
    assert "AE reconstruction (upper bound)" in text and "3Da-AE training scenes" in text
    m = json.loads(Path(out["metrics_ours"]).read_text())
    assert set(m["groups"]) == {"train", "exploit"}
    r = json.loads(Path(out["metrics_rgb"]).read_text())
    assert list(r["scenes"]) == ["b"]
    # the RGB baseline row shows its measured PSNR (offset 0.05 -> 26.02 dB)
    assert re.search(r"\| fake RGB \| 1 \| 26\.02 \|", text)
    assert set(phases) >= {"train", "evaluate", "render", "report"}
    assert json.loads((tmp_path / "rep" / "timings.json").read_text())["train"] == 12.0
    # turntables of ours and of the baseline for scene b, both linked relatively
    assert (tmp_path / "rep" / "turntables" / "b" / "turntable.gif").is_file()
    assert (tmp_path / "rep" / "turntables" / "b" / "rgb_baseline" / "turntable.gif").is_file()
    assert "](turntables/b/turntable.gif)" in text and "](grid.png)" in text


def test_report_without_baseline(tmp_path, scenes):
    ours = latent_model(scenes, {"a": 0.0, "b": 0.02, "c": 0.05})
    plan = ReportPlan(train_ids=[], exploit_ids=["b", "c"], turntable_scenes=0, grid_scenes=1)
    out = evaluate_and_report(tmp_path, ours, None, scenes, plan, camera_defaults_from_views(scenes.values()),
                              FitFigures(), None, {})
    text = Path(out["report"]).read_text()
    assert out["metrics_rgb"] is None and "fake RGB" not in text and "Turntables" not in text


def test_turntable_scene_ids_must_be_plain_names(tmp_path, scenes):
    """Issue 11, defect 4: turntable folders are OUT/turntables/<scene id>; an id like '../x' wrote outside."""
    import pytest

    from latentscenes.data.types import DatasetError

    evil = {"../../x" if k == "b" else k: v for k, v in scenes.items()}
    ours = latent_model(evil, {k: 0.0 for k in evil})
    plan = ReportPlan(train_ids=[], exploit_ids=["../../x"], turntable_scenes=1, grid_scenes=1,
                      turntable=TurntableConfig(n_frames=2, n_views=1))
    with pytest.raises(DatasetError, match="not a plain name"):
        evaluate_and_report(tmp_path / "a" / "rep", ours, None, evil, plan,
                            camera_defaults_from_views(evil.values()), FitFigures(), None, {})
    assert not (tmp_path / "a").exists() and not (tmp_path / "x").exists()
