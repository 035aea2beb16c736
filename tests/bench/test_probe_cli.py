"""``latentscenes probe`` as a user runs it, on a tiny on-disk dataset (docs/fidelity.md)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from latentscenes.cli.main import app


def test_probe_command_writes_the_summary_and_refuses_bad_options(sphere_dataset, tmp_path):
    out = tmp_path / "probe.json"
    args = ["probe", "--data", str(sphere_dataset), "--preset", "test", "--ae", "scratch", "--scenes", "exploit",
            "--n-scenes", "2", "--view-updates", "4", "--out", str(out), "--set", "logging.progress=false",
            "--device", "cpu"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    s = res["summary"]
    assert res["n_scenes"] == 2 and res["split"] == "exploit" and res["config"]["triplane"]["resolution"] == 16
    assert abs(s["consistency_gap_db"] - (s["ae_psnr"] - s["probe_psnr"])) < 1e-9
    assert "consistency gap" in r.output
    bad = CliRunner().invoke(app, args[:-2] + ["--n-scenes", "1"])
    assert bad.exit_code == 2 and "--n-scenes" in bad.output
    both = CliRunner().invoke(app, args + ["--run", str(tmp_path)])
    assert both.exit_code == 2 and "not both" in both.output
