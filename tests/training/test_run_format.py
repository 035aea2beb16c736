"""The latent run folder format (training/run_format.py): manifests written and read back, refused by name when
missing or damaged, and a real run / exploit batch / pre-trained package read through it."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from latentscenes.training import run_format as rf
from latentscenes.training.pipeline import exploit_3daae, export_pretrained, train_3daae
from latentscenes.utils.io import UnreadableFileError, file_sha256

from helpers_3daae import small_config, sphere_scenes


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A tiny training run (``test`` preset, 2 scenes), an exploit batch learned from it and its export."""
    root = tmp_path_factory.mktemp("runfmt")
    train_3daae(small_config(), root / "run", scenes=sphere_scenes(2))
    exploit_3daae(root / "run", root / "batch", scenes=sphere_scenes(1, "n", seed=4))
    export_pretrained(root / "run", root / "pkg")
    return root


# ============================================================================================ manifests
def test_a_manifest_written_is_read_back_with_its_keys_in_order(tmp_path):
    m = {"format": rf.RUN_FORMAT, "format_version": rf.FORMAT_VERSION, "status": "running", "scene_ids": ["b", "a"],
         "stages": {"warmup": {"train_s": 1.5}}, "nested": {"z": 1, "a": [1, 2]}}
    path = rf.write_manifest(tmp_path, m)
    assert path == tmp_path / "manifest.json"
    text = path.read_text()
    assert text == json.dumps(m, indent=2) + "\n"  # indent 2, the dict's key order, a final newline
    back = rf.read_manifest(tmp_path)
    assert back == m and list(back) == list(m) and list(back["nested"]) == ["z", "a"]
    assert rf.has_manifest(tmp_path) and not rf.is_done(back) and rf.finished_manifest(tmp_path) is None
    rf.finish_manifest(back, stages=None, model=rf.model_record(["scenes-00000.safetensors"]), latent_cache_s=0.5,
                       bytes_={"per_scene": 8})
    rf.write_manifest(tmp_path, back)
    done = rf.finished_manifest(tmp_path)
    assert done is not None and rf.is_done(done) and rf.status(done) == "done"
    # status keeps its place; model, latent_cache_s, bytes come last, in that order (as every run wrote them).
    assert list(done) == list(m) + ["model", "latent_cache_s", "bytes"]
    assert done["model"] == {"shared": "model/shared.safetensors", "scenes": ["model/scenes/scenes-00000.safetensors"]}


def test_a_missing_manifest_is_refused_naming_the_file(tmp_path):
    assert not rf.has_manifest(tmp_path) and rf.read_manifest_if_any(tmp_path) == {}
    assert rf.finished_manifest(tmp_path) is None
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'manifest.json'}: not found"):
        rf.read_manifest(tmp_path)


@pytest.mark.parametrize("content, what", [
    ('{"format": "latentscenes-3daae-run", "sta', "not valid JSON"),  # truncated
    (b"\xff\xfe{}", "not valid JSON"),  # not text
    ('["a list"]', "expected a JSON object, found list"),
])
def test_a_damaged_manifest_is_refused_naming_the_file(tmp_path, content, what):
    p = tmp_path / "manifest.json"
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    for read in (rf.read_manifest, rf.read_manifest_if_any, rf.finished_manifest):
        with pytest.raises(UnreadableFileError, match=f"{p}: {what}"):
            read(tmp_path)


def test_source_run_spec_and_the_latent_cache_name():
    assert rf.source_run_spec({"source_run": "/abs/run", "source_run_spec": None}) == "/abs/run"
    assert rf.source_run_spec({"source_run": "/old/place", "source_run_spec": "shipped"}) == "shipped"
    with pytest.raises(UnreadableFileError, match="B/manifest.json: records no source_run"):
        rf.source_run_spec({"format": rf.EXPLOIT_FORMAT}, where="B/manifest.json")
    assert rf.latent_cache_path("R", "train").as_posix() == "R/cache/latents-train.safetensors"
    shard = SimpleNamespace(rank=1, world_size=3)
    assert rf.latent_cache_path("R", "exploit", shard).as_posix() == "R/cache/latents-exploit-rank1of3.safetensors"
    assert rf.recorded_world_size({}) == 1
    assert rf.recorded_world_size({rf.DISTRIBUTED_KEY: rf.distributed_record(4, "gloo")}) == 4


# ============================================================================================ real folders
def test_a_training_run_is_read_back_through_the_module(folders):
    run = folders / "run"
    m = rf.read_manifest(run)
    assert rf.is_run_manifest(m) and not rf.is_exploit_manifest(m) and not rf.is_pretrained(m)
    assert rf.manifest_kind(m) == rf.KIND_TRAIN and m["format_version"] == rf.FORMAT_VERSION
    assert rf.is_done(m) and rf.finished_manifest(run) == m and rf.scenes_included(m)
    for key in ("format", "format_version", "kind", "status", "device", "scene_ids", "n_views", "view_copies",
                "image_size", "image_storage", "stage_configs", "stages", "torch_threads", "model", "latent_cache_s",
                "bytes"):
        assert key in m, key
    assert rf.scene_ids(m) == ["s00", "s01"] and rf.image_size(m) == [32, 32] and rf.n_views(m) == 8
    assert list(rf.stage_results(m)) == ["warmup", "joint"] and list(rf.recorded_stage_configs(m)) == ["warmup", "joint"]
    s = rf.summary(m)
    assert s["scene_ids"] == ["s00", "s01"] and s["train_s"] == pytest.approx(sum(r["train_s"] for r in m["stages"].values()))
    # the layout
    assert rf.config_path(run).is_file() and rf.metrics_path(run).is_file()
    assert rf.latent_cache_path(run, "train").is_file()
    assert all(rf.ckpt_dir(run, st).is_dir() for st in ("warmup", "joint"))
    files = rf.model_files(run)
    assert files[0] == rf.shared_path(run) and files[1:] == rf.scene_files(run) and len(files) == 2
    assert [f"model/scenes/{p.name}" for p in rf.scene_files(run)] == m["model"]["scenes"]
    # the recorded sha256 is the file's
    sums = rf.model_files_sha256(run)
    assert list(sums) == ["model/shared.safetensors", "model/scenes/scenes-00000.safetensors"]
    assert sums["model/shared.safetensors"] == rf.recorded_shared_sha256(m) == rf.shared_sha256(run)


def test_an_exploit_batch_and_its_source_run_are_read_back_through_the_module(folders):
    batch, run = folders / "batch", folders / "run"
    m = rf.read_manifest(batch)
    assert rf.is_exploit_manifest(m) and rf.is_latent_manifest(m) and rf.manifest_kind(m) == rf.KIND_EXPLOIT
    assert rf.is_done(m) and rf.scene_ids(m) == ["n00"]
    assert rf.source_run_spec(m) == str(run.resolve())
    assert rf.source_shared_sha256(m) == rf.recorded_shared_sha256(rf.read_manifest(run)) == file_sha256(rf.shared_path(run))
    assert rf.recorded_shared_sha256(m) is None  # a batch records its source's, not its own
    assert m["decoder_note"].startswith("model/shared.safetensors holds this batch's")
    assert rf.latent_cache_path(batch, "exploit").is_file() and rf.ckpt_dir(batch, "exploit_fit").is_dir()
    assert rf.model_files(batch) == [rf.shared_path(batch)] + rf.scene_files(batch)


def test_a_pretrained_package_is_read_back_through_the_module(folders):
    pkg, run = folders / "pkg", folders / "run"
    m = rf.read_manifest(pkg)
    run_m = rf.read_manifest(run)
    assert rf.is_pretrained(m) and not rf.scenes_included(m) and rf.is_done(m)
    assert rf.train_scene_ids(m) == rf.scene_ids(run_m) and rf.scene_ids(m) == []
    assert rf.model_files(pkg) == [rf.shared_path(pkg)] and not rf.scenes_dir(pkg).exists()
    assert rf.recorded_shared_sha256(m) == rf.shared_sha256(pkg) == rf.shared_sha256(run)
    assert rf.entry_cost_s(m) == pytest.approx(sum(r["train_s"] for r in rf.stage_results(run_m).values())
                                               + rf.latent_cache_s(run_m))
    assert rf.export_source(m)["stage"] == "final" and set(rf.measured_on(m)) == {"device", "torch_threads"}
