"""training/data.py: views held as pixel codes (memory that does not grow with copies), the memory-mapped latent
cache and its checks (docs/scale.md)."""

from __future__ import annotations

import gc
import hashlib
import weakref
from pathlib import Path

import pytest
import torch

from latentscenes.data import MultiSceneDataset
from latentscenes.utils.io import UnreadableFileError
from latentscenes.training.data import (
    ImageCodesWriter,
    LatentCacheError,
    build_view_table,
    load_image_codes,
    load_latent_cache,
    pixel_codes,
    save_latent_cache,
    shift_views,
    table_fingerprint,
)

from helpers_3daae import small_config, sphere_scenes, write_sphere_dataset


@pytest.fixture(scope="module")
def png_data(tmp_path_factory):
    """A sphere dataset written as 8-bit PNGs (32 px): 2 train and 3 exploit scenes."""
    return write_sphere_dataset(tmp_path_factory.mktemp("png") / "data", n_train=2, n_exploit=3)


def _loaded(root, resolution=None):
    ds = MultiSceneDataset(root, resolution=resolution)
    return [ds.load(i) for i in ds.split_scene_ids("exploit")]


def _all_rows(table):
    return table.batch_images(torch.arange(len(table)))


def test_8bit_images_are_resident_as_uint8_and_decode_to_the_loaders_floats_exactly(png_data):
    scenes = _loaded(png_data)
    table = build_view_table(scenes, "train")
    n = sum(len(s.view_indices("train")) for s in scenes)
    assert table.codes.dtype == torch.uint8 and table.codes.shape == (n, 3, 32, 32)
    assert table.resident_bytes()["images"] == n * 3 * 32 * 32 * 1 + n * 4  # 1 byte a value + one scale a view
    want = torch.cat([s.images[s.view_indices("train")] for s in scenes]) * 2.0 - 1.0
    assert torch.equal(_all_rows(table), want), "the codes must give back the loader's values bit for bit"
    assert table.storage()["dtype"] == "uint8" and table.storage()["denominators"] == [255.0]


def test_area_resized_8bit_images_are_uint16_codes_within_float_rounding(png_data):
    scenes = _loaded(png_data, resolution=16)  # the loader's 2x area average: values S / 1020
    table = build_view_table(scenes, "train")
    assert table.codes.dtype == torch.uint16 and table.storage()["denominators"] == [1020.0]
    want = torch.cat([s.images[s.view_indices("train")] for s in scenes]) * 2.0 - 1.0
    err = float((_all_rows(table) - want).abs().max())
    assert err <= 4.8e-7, err  # a few float32 ulps of values near 1: the loader's own rounding of its average
    assert table.codes.nbytes == want.numel() * 2


def test_float_images_that_are_no_codes_stay_float32_and_exact():
    scenes = sphere_scenes(2)  # analytic renders: arbitrary floats
    table = build_view_table(scenes, "train")
    assert table.codes.dtype == torch.float32
    want = torch.cat([s.images[s.view_indices("train")] for s in scenes]) * 2.0 - 1.0
    assert torch.equal(_all_rows(table), want)
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    codes, d = pixel_codes(x)
    assert codes.dtype == torch.float32 and d == 1.0 and torch.equal(codes, x)
    codes, d = pixel_codes(torch.tensor([0, 17, 255], dtype=torch.uint8).float().view(1, 3, 1, 1) / 255.0)
    assert codes.dtype == torch.uint8 and d == 255.0 and codes.flatten().tolist() == [0, 17, 255]


def test_shifted_copies_cost_cameras_only_and_equal_the_materialised_copies(png_data):
    import torch.nn.functional as F

    table = build_view_table(_loaded(png_data), "train")
    s = shift_views(table, 2, 8)
    assert len(s) == 4 * len(table) and s.resident_bytes()["images"] == table.resident_bytes()["images"]
    # the copies as the table used to store them: padded with the edge pixels, then cropped
    x = _all_rows(table)
    want = [x] + [F.pad(x, (0, ox, 0, oy), mode="replicate")[..., oy : oy + 32, ox : ox + 32]
                  for oy in (0, 4) for ox in (0, 4) if ox or oy]
    assert torch.equal(_all_rows(s), torch.cat(want))
    rows = torch.tensor([len(table) * 3 + 1, 0, len(table) + 2, len(table) * 3 + 1])  # any order, repeats
    assert torch.equal(s.batch_images(rows), torch.cat(want)[rows])


def test_table_fingerprint_is_the_one_of_the_float_table(png_data):
    """The fingerprint hashes what a float table would hold, so caches written before the codes stay valid."""
    import torch.nn.functional as F

    table = shift_views(build_view_table(_loaded(png_data), "train"), 2, 8)
    x = _all_rows(build_view_table(_loaded(png_data), "train"))
    images = torch.cat([x] + [F.pad(x, (0, ox, 0, oy), mode="replicate")[..., oy : oy + 32, ox : ox + 32]
                              for oy in (0, 4) for ox in (0, 4) if ox or oy])
    # the implementation before the codes (materialised float images)
    h = hashlib.sha256()
    h.update("|".join(table.scene_ids).encode())
    h.update(str(tuple(images.shape)).encode())
    flat = images.reshape(-1)
    h.update(flat[:: max(1, flat.numel() // 65536)].numpy().tobytes())
    h.update(table.c2w.numpy().tobytes())
    assert table_fingerprint(table) == h.hexdigest()[:16]
    assert table_fingerprint(table, chunk_rows=7) == table_fingerprint(table)
    other = build_view_table(_loaded(png_data)[:2], "train")
    assert table_fingerprint(other) != table_fingerprint(build_view_table(_loaded(png_data), "train"))


def test_loading_a_split_holds_one_scene_at_a_time(png_data, monkeypatch):
    from latentscenes.training.pipeline import load_view_table

    alive: list[weakref.ref] = []
    most = {"n": 0}
    real = MultiSceneDataset.load

    def load(self, scene_id):
        gc.collect()
        most["n"] = max(most["n"], sum(r() is not None for r in alive))
        sv = real(self, scene_id)
        alive.append(weakref.ref(sv))
        return sv

    monkeypatch.setattr(MultiSceneDataset, "load", load)
    cfg = small_config()
    table, cams, _, _ = load_view_table(cfg, "exploit", None, png_data)
    assert len(alive) == 3 and table.scene_ids == ["ex00", "ex01", "ex02"]
    assert most["n"] <= 1, f"{most['n']} loaded scenes were alive when the next one was loaded"
    gc.collect()
    assert all(r() is None for r in alive), "no loaded scene outlives the table"
    assert all(c.images.numel() == 0 and c.num_views == 6 for c in cams)  # cameras only, for the bounds check


# ------------------------------------------------------------------------------------------ image codes file
def test_codes_written_to_a_file_are_memory_mapped_and_equal_the_in_memory_table(png_data, tmp_path):
    path = tmp_path / "cache" / "images-exploit.safetensors"
    mem = build_view_table(_loaded(png_data), "train")
    disk = build_view_table(_loaded(png_data), "train", codes_path=path)
    assert disk.codes_file == str(path) and disk.codes.dtype == torch.uint8
    assert torch.equal(disk.codes, mem.codes) and torch.equal(_all_rows(disk), _all_rows(mem))
    if Path("/proc/self/maps").is_file():
        assert str(path.resolve()) in _mapped_files(disk.codes), "the codes must be a mapping of the file"
    # the heap holds the scales only; the manifest still says how many bytes the codes are
    assert disk.resident_bytes()["images"] == disk.scale.nbytes
    st = disk.storage()
    assert st["memory_mapped"] and st["code_bytes"] == mem.codes.nbytes and st["bytes"] == disk.scale.nbytes
    assert table_fingerprint(disk) == table_fingerprint(mem)
    s = shift_views(disk, 2, 8)  # the copies read the same mapped codes
    assert s.codes_file == str(path) and torch.equal(_all_rows(s), _all_rows(shift_views(mem, 2, 8)))
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no scratch file is left behind"


def test_codes_file_takes_the_widest_dtype_of_its_scenes_exactly(tmp_path):
    w = ImageCodesWriter(tmp_path / "c.safetensors")
    a = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    b = torch.randint(0, 65536, (3, 3, 4, 4), dtype=torch.int32).to(torch.uint16)
    w.append(a)
    w.append(b)
    got = w.close()
    assert got.dtype == torch.uint16 and torch.equal(got, torch.cat([a.to(torch.uint16), b]))
    w2 = ImageCodesWriter(tmp_path / "e.safetensors")
    w2.append(a)
    with pytest.raises(ValueError, match="shape"):
        w2.append(torch.zeros(1, 3, 5, 5, dtype=torch.uint8))
    w2.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors"], "scratch files are removed"


def test_a_damaged_codes_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "images-train.safetensors"
    w = ImageCodesWriter(path)
    w.append(torch.zeros(4, 3, 8, 8, dtype=torch.uint8))
    w.close()
    with pytest.raises(UnreadableFileError, match="expected 5 rows"):
        load_image_codes(path, rows=5)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(UnreadableFileError, match="truncated or damaged") as ei:
        load_image_codes(path)
    assert str(path) in str(ei.value)
    save_latent_cache(torch.zeros(1, 4, 2, 2), path, "v", "a")  # another file of ours
    with pytest.raises(UnreadableFileError, match="holds tensors"):
        load_image_codes(path)
    with pytest.raises(UnreadableFileError, match="missing"):
        load_image_codes(tmp_path / "nope.safetensors")


def test_a_run_trains_on_memory_mapped_codes(png_data, tmp_path):
    """`load_view_table` with the run's codes path: the table the stages see is backed by the run's file."""
    from latentscenes.training import run_format as rf
    from latentscenes.training.pipeline import load_view_table

    path = rf.image_codes_path(tmp_path / "run", "exploit")
    table, _, _, _ = load_view_table(small_config(), "exploit", None, png_data, codes_path=path)
    assert path.name == "images-exploit.safetensors" and table.codes_file == str(path)
    assert torch.equal(table.codes, build_view_table(_loaded(png_data), "train").codes)
    assert rf.image_codes_path(tmp_path, "train", 1, 2).name == "images-train-rank1of2.safetensors"


# ------------------------------------------------------------------------------------------ latent cache
def _mapped_files(t: torch.Tensor) -> list[str]:
    """Files mapped at the address of ``t``'s data (Linux /proc/self/maps)."""
    ptr, out = t.data_ptr(), []
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split()
        lo, hi = (int(v, 16) for v in parts[0].split("-"))
        if lo <= ptr < hi and len(parts) >= 6:
            out.append(parts[5])
    return out


def test_latent_cache_is_memory_mapped_and_gives_the_written_latents(tmp_path):
    lat = torch.randn(12, 4, 4, 4)
    path = tmp_path / "cache" / "latents-exploit.safetensors"
    save_latent_cache(lat, path, "views1", "ae1")
    got = load_latent_cache(path, "views1", "ae1", rows=12)
    assert got.dtype == torch.float32 and torch.equal(got, lat)
    if Path("/proc/self/maps").is_file():
        assert str(path.resolve()) in _mapped_files(got), "the cache must be a mapping of its file, not a copy"
    assert torch.equal(got[torch.tensor([3, 1])], lat[torch.tensor([3, 1])])
    # stale (other views or another encoder): not used
    assert load_latent_cache(path, "views2", "ae1") is None and load_latent_cache(path, "views1", "ae2") is None
    assert load_latent_cache(tmp_path / "missing.safetensors", "views1", "ae1") is None


def test_a_damaged_or_mismatched_latent_cache_is_refused_naming_the_file(tmp_path):
    lat = torch.randn(12, 4, 4, 4)
    path = tmp_path / "latents-exploit.safetensors"
    save_latent_cache(lat, path, "views1", "ae1")
    with pytest.raises(LatentCacheError, match="holds 12 rows for 48 views") as ei:
        load_latent_cache(path, "views1", "ae1", rows=48)
    assert str(path) in str(ei.value)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])  # truncated
    with pytest.raises(LatentCacheError, match="truncated or damaged") as ei:
        load_latent_cache(path, "views1", "ae1")
    assert str(path) in str(ei.value) and "delete it" in str(ei.value)
    path.write_bytes(b"\x00" * 7)  # not even a header
    with pytest.raises(LatentCacheError, match=str(path).replace("\\", "\\\\")):
        load_latent_cache(path, "views1", "ae1")


def test_encode_views_writes_the_cache_once_and_maps_it(tmp_path, png_data, capsys):
    """The memory-mapped cache gives the latents the in-memory encoding gives; a stale one is named and replaced."""
    from latentscenes.autoencoder.model import load_autoencoder
    from latentscenes.training.pipeline import build_system, encode_views

    cfg = small_config()
    torch.manual_seed(0)
    ae = load_autoencoder(cfg.ae, "cpu")
    table = shift_views(build_view_table(_loaded(png_data), "train"), 2, 8)
    system = build_system(cfg, ae, table.scene_ids)
    in_memory, _, reused = encode_views(system, table, None, 8, False)
    assert not reused and in_memory.shape[0] == len(table)
    path = tmp_path / "cache" / "latents.safetensors"
    first, _, reused = encode_views(system, table, path, 8, False)
    assert not reused and torch.equal(first, in_memory)
    if Path("/proc/self/maps").is_file():
        assert str(path.resolve()) in _mapped_files(first)
    stamp = path.stat().st_mtime_ns
    again, seconds, reused = encode_views(system, table, path, 5, False)
    assert reused and seconds == 0.0 and torch.equal(again, in_memory) and path.stat().st_mtime_ns == stamp
    # other views: the file is named, not used, and written again for these views
    fewer = build_view_table(_loaded(png_data)[:2], "train")
    capsys.readouterr()
    lat, _, reused = encode_views(system, fewer, path, 8, False)
    err = " ".join(capsys.readouterr().err.split())
    assert not reused and lat.shape[0] == len(fewer) and str(path) in err and "not used" in err
