"""The exploit command's summary names the scenes whose fit is still collapsed after their refit."""

from __future__ import annotations

from latentscenes.cli import pipeline as cli_pipeline


def _result(still):
    rec = {"scene": "car1", "before_db": 20.1, "after_db": 20.2, "kept": "refit", "flat_db": 20.0, "collapsed": bool(still)}
    return {"stages": {"exploit_refit": {"refitted": 1, "checked": 1, "margin_db": 2.0, "train_s": 1.0,
                                         "scenes": [rec], "collapse_margin_db": 1.0, "still_collapsed": still}}}


def test_a_scene_still_collapsed_is_named_in_a_warning(capsys):
    cli_pipeline._print_summary(_result(["car1"]))
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: 1 scene(s) still collapsed after their refit" in err and "car1" in err
    assert "within 1 dB of a flat prediction" in err
    cli_pipeline._print_summary(_result([]))
    assert "warning" not in capsys.readouterr().err


def test_an_exact_fit_written_as_none_is_printed(capsys):
    res = _result([])
    res["stages"]["exploit_refit"]["scenes"][0]["after_db"] = None  # refit.py: an infinite PSNR is written as None
    cli_pipeline._print_summary(res)
    assert "20.10 -> exact dB" in " ".join(capsys.readouterr().err.split())
