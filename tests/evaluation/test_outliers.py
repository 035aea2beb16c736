"""``find_outliers``: the scenes far below their group's median in PSNR or latent PSNR, worst first."""

from __future__ import annotations

import math

from latentscenes.evaluation.evaluate import OUTLIER_DB, find_outliers, format_summary


def _scenes(values, group="exploit", latent=None):
    return {f"s{i}": {"group": group, "mean": {"psnr": v, **({"latent_psnr": latent[i]} if latent else {})}}
            for i, v in enumerate(values)}


def test_a_collapsed_scene_is_listed_by_its_larger_shortfall_and_normal_spread_is_not():
    # s4's RGB PSNR is 2 dB below the median (not listed on that alone) but its latent PSNR 5 dB below
    per = _scenes([24.0, 24.5, 23.5, 24.2, 22.0, 18.0], latent=[24.0, 24.1, 23.9, 24.0, 19.0, 17.0])
    out = find_outliers(per)
    assert [o["scene"] for o in out] == ["s5", "s4"]
    # s5: PSNR 5.75 below its median (23.75), latent PSNR 6.95 below (23.95): the larger one is reported
    assert out[0]["metric"] == "latent_psnr" and math.isclose(out[0]["below_db"], 23.95 - 17.0)
    assert out[1]["metric"] == "latent_psnr" and out[1]["below_db"] > OUTLIER_DB
    assert find_outliers(_scenes([24.0, 23.0, 22.0, 25.0, 21.5])) == []


def test_groups_are_judged_apart_and_small_groups_are_skipped():
    per = {**_scenes([30.0, 30.5, 29.5, 30.2], group="train"), **{
        f"e{i}": {"group": "exploit", "mean": {"psnr": v}} for i, v in enumerate([22.0, 22.5, 21.5, 22.2])}}
    assert find_outliers(per) == []  # 8 dB between the groups is not an outlier
    assert find_outliers(_scenes([30.0, 10.0, 30.0])) == []  # 3 scenes: no median worth the name
    nan = _scenes([24.0, 24.5, 23.5, 24.2, float("nan")])
    assert find_outliers(nan) == []


def test_the_console_summary_names_them():
    result = {"model": {"name": "m"}, "split": "test", "groups": {},
              "overall": {"n_scenes": 6, "n_views": 6, "mean": {"psnr": 23.0, "ssim": 0.9}},
              "outliers": find_outliers(_scenes([24.0, 24.5, 23.5, 24.2, 24.1, 18.0]))}
    text = format_summary(result)
    assert "1 scene(s) more than 3 dB below" in text and "s5" in text
