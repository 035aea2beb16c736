"""Ray bounds from the cameras for data that states none, and the refusal of bounds that cannot see the box
(issue 11, defect 7)."""

from __future__ import annotations

import pytest

from latentscenes.config import ConfigError
from latentscenes.data.bounds import check_bounds, derive_bounds, object_extent
from latentscenes.scenes.synthetic import make_sphere_scene


def test_bounds_follow_the_camera_distance():
    far_cams = make_sphere_scene("s", n_views=4, n_test=1, radius=2.4)
    b = derive_bounds([far_cams], box_size=2.0)
    assert b["box_size"] == 2.0 and b["d_min"] == pytest.approx(2.4, abs=1e-4)
    assert b["near"] == pytest.approx(1.4, abs=2e-3) and b["far"] == pytest.approx(3.4, abs=2e-3)
    check_bounds([far_cams], b["near"], b["far"], "x")


def test_object_extent_from_the_images_grows_the_box():
    big = make_sphere_scene("big", n_views=4, n_test=1, radius=4.0, spheres=(((0.0, 0.0, 0.0), 1.5, (0.2, 0.3, 0.9)),))
    ext = object_extent([big])
    assert 1.4 < ext < 1.9  # a sphere of radius 1.5 seen from 4: its silhouette at the centre's depth is ~1.6
    b = derive_bounds([big], box_size=2.0)
    assert b["box_size"] > 3.0 and b["near"] < 4.0 - 1.5 and b["far"] > 4.0 + 1.5


def test_bounds_that_end_before_the_box_centre_are_refused():
    far_cams = make_sphere_scene("s", n_views=4, n_test=1, radius=2.4)
    with pytest.raises(ConfigError, match=r"near/far 0.5/2.1 cannot see.*'s'.*2\.400"):
        check_bounds([far_cams], 0.5, 2.1, "train")
