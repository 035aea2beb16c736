"""The Tri-Planes (RGB) fit folder's owner module (``baselines/rgb/fit_format.py``): write -> read round trip, and a
damaged or incomplete folder refused with the file named."""

from __future__ import annotations

import json

import pytest
import torch

from latentscenes.config import get_preset, to_dict
from latentscenes.rendering.decoder import TriplaneDecoder
from latentscenes.rendering.renderer import RenderConfig
from latentscenes.scenes.bank import SceneBank, TriplaneConfig
from latentscenes.baselines.rgb import fit_format as fmt
from latentscenes.utils.io import UnreadableFileError


def _results(variant: str, tcfg: TriplaneConfig, rcfg: RenderConfig, ids: list[str]) -> dict:
    return {"variant": variant, "config": {"bg": [1.0, 1.0, 1.0]}, "render_used": to_dict(rcfg),
            "triplane_used": to_dict(tcfg), "scenes": [{"scene_id": s, "psnr": 20.0} for s in ids],
            "summary": {"n_scenes": len(ids)}, "shared": {}}


def _write(folder, variant: str, ids=("a", "b")):
    """A fit folder written by the format's own writers; returns {scene_id: (planes, decoder state)}."""
    rcfg = get_preset(RenderConfig, "test")
    gen = torch.Generator().manual_seed(0)
    if variant == "micro":
        tcfg = TriplaneConfig(resolution=8, f_mic=4, f_mac=0, n_global=2)
        written = {}
        for s in ids:
            bank = SceneBank(tcfg, [s], generator=gen)
            dec = TriplaneDecoder(tcfg.features, 3, rcfg.decoder_hidden)
            fmt.save_micro_scene(folder, s, bank, dec)
            written[s] = (bank.planes(bank.rows([s])).detach(), dec.state_dict())
    else:
        tcfg = TriplaneConfig(resolution=8, f_mic=0, f_mac=4, n_global=3)
        bank = SceneBank(tcfg, list(ids), generator=gen)
        dec = TriplaneDecoder(tcfg.features, 3, rcfg.decoder_hidden)
        fmt.save_macro(folder, bank, dec)
        written = {s: (bank.planes(bank.rows([s])).detach(), dec.state_dict()) for s in ids}
    path = fmt.write_results(folder, _results(variant, tcfg, rcfg, list(ids)))
    assert path == folder / "results.json" and path.read_text().endswith("}\n")
    return written


@pytest.mark.parametrize("variant", ["micro", "macro"])
def test_written_fit_reads_back_the_same_tensors(tmp_path, variant):
    written = _write(tmp_path, variant)
    fit = fmt.load_rgb_fit_folder(tmp_path)
    assert fit.variant == variant and fit.scene_ids == ["a", "b"] and fmt.is_rgb_fit(tmp_path)
    assert len(fit.parts) == (2 if variant == "micro" else 1)
    assert torch.equal(fit.background, torch.ones(3))
    assert fit.results == json.loads((tmp_path / "results.json").read_text())
    for s, (planes, state) in written.items():
        part = fit.part_of(s)
        assert torch.equal(part.bank.planes(part.bank.rows([s])).detach(), planes)
        assert all(torch.equal(part.decoder.state_dict()[k], v) for k, v in state.items())
    with pytest.raises(KeyError):
        fit.part_of("zz")
    names = sorted(p.name for p in fmt.fit_files(tmp_path))
    assert names == (["a.decoder.safetensors", "a.safetensors", "b.decoder.safetensors", "b.safetensors"]
                     if variant == "micro" else ["coefs.safetensors", "decoder.safetensors", "global_planes.safetensors"])


def test_a_folder_without_results_names_the_file(tmp_path):
    assert not fmt.is_rgb_fit(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/results.json: not an RGB baseline folder"):
        fmt.load_rgb_fit_folder(tmp_path)


@pytest.mark.parametrize(
    "variant, damage, error, names",
    [
        ("micro", lambda d: (d / "results.json").write_text('{"variant": "mi'), UnreadableFileError, "results.json"),
        ("micro", lambda d: (d / "results.json").write_text("[1, 2]"), UnreadableFileError, "results.json"),
        ("micro", lambda d: _edit(d, lambda r: r.pop("render_used")), UnreadableFileError, "results.json: missing render_used"),
        ("micro", lambda d: _edit(d, lambda r: r.update(variant="mega")), UnreadableFileError, "results.json: variant 'mega'"),
        ("micro", lambda d: (d / "scenes" / "b.safetensors").unlink(), FileNotFoundError, "scenes/b.safetensors"),
        ("micro", lambda d: _truncate(d / "scenes" / "a.safetensors"), UnreadableFileError, "scenes/a.safetensors"),
        ("micro", lambda d: _truncate(d / "scenes" / "b.decoder.safetensors"), UnreadableFileError,
         "scenes/b.decoder.safetensors"),
        ("micro", lambda d: (d / "scenes" / "a.decoder.safetensors").unlink(), FileNotFoundError,
         "scenes/a.decoder.safetensors"),
        ("macro", lambda d: (d / "scenes" / "global_planes.safetensors").unlink(), FileNotFoundError,
         "scenes/global_planes.safetensors"),
        ("macro", lambda d: _truncate(d / "scenes" / "global_planes.safetensors"), UnreadableFileError,
         "scenes/global_planes.safetensors"),
        ("macro", lambda d: _truncate(d / "scenes" / "decoder.safetensors"), UnreadableFileError,
         "scenes/decoder.safetensors"),
        ("macro", lambda d: _edit(d, lambda r: r["scenes"].append({"scene_id": "c"})), UnreadableFileError,
         "scenes/coefs.safetensors: holds no planes for scene"),
    ],
)
def test_a_damaged_fit_is_refused_naming_the_file(tmp_path, variant, damage, error, names):
    _write(tmp_path, variant)
    damage(tmp_path)
    with pytest.raises(error, match=names):
        fmt.load_rgb_fit_folder(tmp_path)


def _edit(folder, change) -> None:
    res = json.loads((folder / "results.json").read_text())
    change(res)
    (folder / "results.json").write_text(json.dumps(res))


def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
