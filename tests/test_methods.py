"""The method registry: every name resolves to a complete config; unknown names are refused with the known ones;
the benchmark and the demo take their methods from it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from latentscenes.bench.config import ALL_METHODS, preset_test
from latentscenes.experiments.bench import LATENT_METHODS, RGB_METHODS, pipeline_config, variant_config
from latentscenes.bench.tables import TABLE2_ROWS
from latentscenes.config import ConfigError
from latentscenes.methods import DEMO_METHODS, METHODS, RUN_ORDER, Method, get_method, method_names


@pytest.mark.parametrize("name", list(METHODS))
def test_every_name_resolves_to_a_complete_config(name):
    m = get_method(name)
    assert isinstance(m, Method) and m.name == name
    assert m.label and m.kind in ("latent", "rgb") and m.layout in ("micro+macro", "micro", "macro")
    if m.kind == "latent":
        assert m.training in METHODS and get_method(m.training).trains and m.rgb_variant is None
    else:
        assert m.training is None and not m.trains and m.rgb_variant in ("micro", "macro")
        assert m.joint and not m.no_prior
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.name = "other"  # type: ignore[misc]


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError) as e:
        get_method("ours-nano")
    for name in METHODS:
        assert name in str(e.value)
    assert "ours-nano" in str(e.value)


def test_the_ablations_are_defined_by_their_flags():
    p = pipeline_config(preset_test(), torch.device("cpu"))
    F = p.triplane.f_mic + p.triplane.f_mac
    assert get_method("ours").pipeline_config(p) == p
    assert get_method("ours-no-prior").no_prior and get_method("ours-no-prior").training == "ours"
    assert get_method("ours-no-prior").pipeline_config(p) == p  # Ours' 3Da-AE, only the exploitation differs
    micro = get_method("ours-micro").pipeline_config(p).triplane
    macro = get_method("ours-macro").pipeline_config(p).triplane
    assert (micro.f_mic, micro.f_mac) == (F, 0) and (macro.f_mic, macro.f_mac) == (0, F)
    plain = get_method("plain-ae")
    assert not plain.joint and plain.pipeline_config(p).joint.steps == 0
    assert (get_method("rgb").rgb_variant, get_method("rgb-macro").rgb_variant) == ("micro", "macro")
    for name in METHODS:  # the bench's variant_config is the registry's
        if get_method(name).kind == "latent":
            assert variant_config(p, name) == get_method(name).pipeline_config(p)


def test_the_bench_and_the_demo_take_their_methods_from_the_registry():
    assert ALL_METHODS == tuple(METHODS) == method_names()
    assert set(RUN_ORDER) == set(METHODS) and len(RUN_ORDER) == len(METHODS)
    # the RGB baselines run first; a method runs after the one whose 3Da-AE it exploits
    assert RUN_ORDER[: len(RGB_METHODS)] == RGB_METHODS == method_names("rgb")
    assert set(LATENT_METHODS) == set(method_names("latent"))
    for name in RUN_ORDER:
        m = get_method(name)
        if m.kind == "latent" and not m.trains:
            assert RUN_ORDER.index(m.training) < RUN_ORDER.index(name)
    assert {k: v[0] for k, v in TABLE2_ROWS.items()} == {k: get_method(k).label for k in TABLE2_ROWS}
    assert set(TABLE2_ROWS) == set(METHODS)
    assert all(n in METHODS for n in DEMO_METHODS)
    assert [get_method(n).kind for n in DEMO_METHODS] == ["latent", "rgb"]
