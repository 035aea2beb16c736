"""``latentscenes data build flightgear``, ``data build torcs``, ``data build sweethome3d``, ``data build pretrain-mix``, ``data view`` and ``data validate``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from latentscenes.cli.common import fail, user_errors
from latentscenes.utils.progress import console

# Options that the ``data build`` commands declare alike (the others differ in defaults or help).
NUM_INSTANCES_OPT = typer.Option(None, "--num-instances", help="Deterministic subset size (default: all usable).")
RESOLUTION_OPT = typer.Option(128, "--resolution", help="Image side in pixels.")
SUPERSAMPLE_OPT = typer.Option(2, "--supersample", help="Render at this multiple and box-downsample.")
SEED_OPT = typer.Option(0, "--seed", help="Seed of splits, subset and cameras.")
WORKERS_OPT = typer.Option(2, "--workers", help="Rendering processes.")
DISTANCE_OPT = typer.Option(2.3, "--distance", help="Camera distance from the origin.")
DISTANCE_JITTER_OPT = typer.Option(0.0, "--distance-jitter", help="Relative uniform jitter of the distance.")
FG_ROOT_OPT = typer.Option(Path("/usr/share/games/flightgear/AI/Aircraft"), "--fg-root", help="FlightGear AI/Aircraft folder.")
FOV_OPT = typer.Option(50.0, "--fov", help="Full field of view, degrees.")
ELEVATION_MIN_OPT = typer.Option(-15.0, "--elevation-min", help="Lowest camera elevation, degrees.")
ELEVATION_MAX_OPT = typer.Option(60.0, "--elevation-max", help="Highest camera elevation, degrees.")
RADIUS_OPT = typer.Option(0.9, "--radius", help="Normalised object radius (farthest vertex).")


def build_and_report(cfg: Any, build: Callable[[Any], Path], coverage: bool = False) -> None:
    """The tail of every ``data build`` command: check ``cfg``, run ``build(cfg)`` and print what its manifest counts.

    Args:
        cfg: the builder's config (``validate()`` raises ``ValueError`` for a bad value: one line, exit code 2).
        build: the builder; returns the dataset folder (which holds ``manifest.json``).
        coverage: also print the manifest's mean object coverage (``object_coverage.mean``).
    """
    t0 = time.time()
    with user_errors():
        try:
            cfg.validate()
        except ValueError as e:
            fail(e)
        path = build(cfg)
    man = json.loads((path / "manifest.json").read_text())
    c = man["counts"]
    cov = f"mean object coverage {100 * man.get('object_coverage', {}).get('mean'):.1f} %; " if coverage else ""
    console.print(
        f"built {c['built']} scenes ({c['train']} train, {c['exploit']} exploit, {c['meshes']} meshes) into {path} "
        f"in {time.time() - t0:.1f} s; {cov}{c['dropped']} candidates dropped (see {path / 'build_log.txt'})"
    )


def held_out_scene_ids(folders: List[Path]) -> tuple[str, ...]:
    """The scene ids of ``data build sweethome3d`` datasets (read through :class:`MultiSceneDataset`, the owner of
    the manifest), for ``--sh3d-hold-out``.

    Raises:
        SystemExit (via :func:`fail`, one line naming the folder): an unreadable dataset or manifest, or a dataset
            another command built.
    """
    # imported on use: keeps `latentscenes --help` fast
    from latentscenes.data import MultiSceneDataset
    from latentscenes.data.types import DatasetError

    ids: set[str] = set()
    for folder in folders:
        try:
            ds = MultiSceneDataset(folder)
        except DatasetError as e:
            fail(f"--sh3d-hold-out {folder}: {e}")
        generator = ds.manifest.get("generator")
        if generator != "latentscenes data build sweethome3d":
            fail(f"--sh3d-hold-out {folder}: not a dataset of `latentscenes data build sweethome3d` "
                 f"(its manifest's generator: {generator!r})")
        ids.update(ds.scene_ids)
    return tuple(sorted(ids))


def register(app: typer.Typer) -> None:
    """Add the ``data`` sub-app (``build flightgear``, ``build torcs``, ``build sweethome3d``, ``build pretrain-mix``, ``view``, ``validate``) to ``app``."""
    data_app = typer.Typer(help="Build and validate multi-view datasets.", no_args_is_help=True)
    build_app = typer.Typer(help="Build a dataset.", no_args_is_help=True)
    data_app.add_typer(build_app, name="build")

    @build_app.command("flightgear")
    def build_flightgear_cmd(
        out: Path = typer.Option(Path("data/flightgear"), "--out", help="Output folder (an interrupted build there resumes)."),
        num_instances: Optional[int] = NUM_INSTANCES_OPT,
        views: int = typer.Option(50, "--views", help="Training views per instance."),
        test_views: int = typer.Option(10, "--test-views", help="Held-out test views per instance."),
        resolution: int = RESOLUTION_OPT,
        supersample: int = SUPERSAMPLE_OPT,
        seed: int = SEED_OPT,
        workers: int = WORKERS_OPT,
        fg_root: Path = FG_ROOT_OPT,
        distance: float = DISTANCE_OPT,
        distance_jitter: float = DISTANCE_JITTER_OPT,
        fov_deg: float = FOV_OPT,
        elevation_min: float = ELEVATION_MIN_OPT,
        elevation_max: float = ELEVATION_MAX_OPT,
        radius: float = RADIUS_OPT,
        exploit_mesh_fraction: float = typer.Option(0.1, "--exploit-mesh-fraction", help="Fraction of airframe meshes held out of train."),
    ) -> None:
        """Render the FlightGear AI airliners (Debian flightgear-data-ai) into an SRN-layout dataset."""
        # imported on use: keeps `latentscenes --help` fast
        from latentscenes.data.flightgear import FlightGearBuildConfig, build_flightgear

        cfg = FlightGearBuildConfig(
            out=out, num_instances=num_instances, views=views, test_views=test_views, resolution=resolution,
            supersample=supersample, seed=seed, workers=workers, fg_root=fg_root, radius=radius, distance=distance,
            distance_jitter=distance_jitter, fov_deg=fov_deg, elevation_min_deg=elevation_min,
            elevation_max_deg=elevation_max, exploit_mesh_fraction=exploit_mesh_fraction,
        )
        build_and_report(cfg, build_flightgear)

    @build_app.command("torcs")
    def build_torcs_cmd(
        out: Path = typer.Option(Path("data/torcs"), "--out", help="Output folder (an interrupted build there resumes)."),
        num_instances: Optional[int] = NUM_INSTANCES_OPT,
        views: int = typer.Option(24, "--views", help="Training views per instance."),
        test_views: int = typer.Option(8, "--test-views", help="Held-out test views per instance."),
        resolution: int = RESOLUTION_OPT,
        supersample: int = SUPERSAMPLE_OPT,
        seed: int = SEED_OPT,
        workers: int = WORKERS_OPT,
        torcs_root: Path = typer.Option(Path("/usr/share/games/torcs"), "--torcs-root", help="TORCS data folder (holds cars/ and drivers/)."),
        distance: float = DISTANCE_OPT,
        distance_jitter: float = DISTANCE_JITTER_OPT,
        fov_deg: float = typer.Option(52.0, "--fov", help="Full field of view, degrees (52: SRN cars)."),
        elevation_min: float = typer.Option(0.0, "--elevation-min", help="Lowest camera elevation, degrees."),
        elevation_max: float = typer.Option(90.0, "--elevation-max", help="Highest camera elevation, degrees."),
        radius: float = RADIUS_OPT,
        exploit_mesh_fraction: float = typer.Option(0.2, "--exploit-mesh-fraction", help="Fraction of car meshes held out of train."),
    ) -> None:
        """Render the TORCS cars (Debian torcs-data) into an SRN-cars-like dataset (128 px, white, upper hemisphere)."""
        # imported on use: keeps `latentscenes --help` fast
        from latentscenes.data.torcs import TorcsBuildConfig, build_torcs

        cfg = TorcsBuildConfig(
            out=out, num_instances=num_instances, views=views, test_views=test_views, resolution=resolution,
            supersample=supersample, seed=seed, workers=workers, torcs_root=torcs_root, radius=radius,
            distance=distance, distance_jitter=distance_jitter, fov_deg=fov_deg, elevation_min_deg=elevation_min,
            elevation_max_deg=elevation_max, exploit_mesh_fraction=exploit_mesh_fraction,
        )
        build_and_report(cfg, build_torcs, coverage=True)

    @build_app.command("sweethome3d")
    def build_sweethome3d_cmd(
        out: Path = typer.Option(Path("data/sweethome3d"), "--out", help="Output folder (an interrupted build there resumes)."),
        num_instances: Optional[int] = NUM_INSTANCES_OPT,
        views: int = typer.Option(24, "--views", help="Training views per instance."),
        test_views: int = typer.Option(8, "--test-views", help="Held-out test views per instance."),
        resolution: int = RESOLUTION_OPT,
        supersample: int = SUPERSAMPLE_OPT,
        seed: int = SEED_OPT,
        workers: int = WORKERS_OPT,
        sh3d_root: Path = typer.Option(Path("/usr/share/sweethome3d/furniture"), "--sh3d-root", help="Folder of the *.sh3f furniture archives."),
        archive: Optional[List[str]] = typer.Option(None, "--archive", help="Use only this archive (file stem, e.g. KatorLegaz; repeat). Default: all."),
        distance: float = DISTANCE_OPT,
        distance_jitter: float = DISTANCE_JITTER_OPT,
        radius: float = RADIUS_OPT,
        exploit_mesh_fraction: float = typer.Option(0.2, "--exploit-mesh-fraction", help="Fraction of models held out of train."),
    ) -> None:
        """Render the Sweet Home 3D furniture (Debian sweethome3d-furniture) in the TORCS cars' layout and framing."""
        # imported on use: keeps `latentscenes --help` fast
        from latentscenes.data.sweethome3d import SweetHome3DBuildConfig, build_sweethome3d

        cfg = SweetHome3DBuildConfig(
            out=out, num_instances=num_instances, views=views, test_views=test_views, resolution=resolution,
            supersample=supersample, seed=seed, workers=workers, sh3d_root=sh3d_root, archives=tuple(archive or ()),
            radius=radius, distance=distance, distance_jitter=distance_jitter,
            exploit_mesh_fraction=exploit_mesh_fraction,
        )
        build_and_report(cfg, build_sweethome3d, coverage=True)

    @build_app.command("pretrain-mix")
    def build_pretrain_mix_cmd(
        out: Path = typer.Option(Path("data/pretrain-mix"), "--out", help="Output folder (an interrupted build there resumes)."),
        source: Optional[List[str]] = typer.Option(
            None, "--source", help="A source to use (repeat; default all: flightgear, random_urdfs, primitives, sweethome3d). "
                                   "torcs is refused: the held-out category."),
        flightgear: int = typer.Option(120, "--flightgear", help="FlightGear airliner instances (train-split airframes only)."),
        urdfs: int = typer.Option(120, "--urdfs", help="pybullet random_urdfs objects."),
        primitives: int = typer.Option(120, "--primitives", help="Procedural compound primitives."),
        sweethome3d: int = typer.Option(0, "--sweethome3d", help="Sweet Home 3D furniture models (0: furniture stays an unseen category)."),
        num_instances: Optional[int] = typer.Option(None, "--num-instances", help="A total shared over the sources in the proportions of their counts."),
        views: int = typer.Option(10, "--views", help="Training views per instance."),
        test_views: int = typer.Option(2, "--test-views", help="Held-out test views per instance."),
        resolution: int = RESOLUTION_OPT,
        supersample: int = SUPERSAMPLE_OPT,
        seed: int = SEED_OPT,
        workers: int = WORKERS_OPT,
        fg_root: Path = FG_ROOT_OPT,
        fg_split_seed: int = typer.Option(0, "--fg-split-seed", help="Seed of the `data build flightgear` split whose exploit airframes are left out."),
        urdf_root: Optional[Path] = typer.Option(None, "--urdf-root", help="pybullet_data/random_urdfs folder (default: the installed pybullet's)."),
        sh3d_root: Path = typer.Option(Path("/usr/share/sweethome3d/furniture"), "--sh3d-root", help="Folder of the *.sh3f furniture archives."),
        sh3d_hold_out: Optional[List[Path]] = typer.Option(
            None, "--sh3d-hold-out", help="A `data build sweethome3d` dataset whose models the mix never uses (repeat): "
                                          "furniture measured there stays unseen."),
        textured_fraction: float = typer.Option(0.5, "--textured-fraction", help="Share of random_urdfs objects / primitive parts given a texture."),
        background: Optional[List[str]] = typer.Option(
            None, "--background", help="Background colour, one drawn per scene (repeat): white (default), black, grey, random, #rrggbb."),
        distance: float = DISTANCE_OPT,
        distance_jitter: float = DISTANCE_JITTER_OPT,
        fov_deg: float = FOV_OPT,
        elevation_min: float = ELEVATION_MIN_OPT,
        elevation_max: float = ELEVATION_MAX_OPT,
        radius: float = RADIUS_OPT,
        exploit_mesh_fraction: float = typer.Option(0.1, "--exploit-mesh-fraction", help="Share of each source's meshes held out of train."),
    ) -> None:
        """Render the base autoencoder's pre-training set: FlightGear airliners (train-split airframes), pybullet's
        random_urdfs, procedural primitives and (opt-in) Sweet Home 3D furniture, mixed into one dataset (TORCS cars
        never: the held-out category)."""
        # imported on use: keeps `latentscenes --help` fast
        from latentscenes.data.pretrain_mix import DEFAULT_URDF_ROOT, SOURCE_NAMES, MixBuildConfig, build_pretrain_mix

        cfg = MixBuildConfig(
            out=out, sources=tuple(source) if source else SOURCE_NAMES, flightgear_instances=flightgear,
            urdf_instances=urdfs, primitive_instances=primitives, sh3d_instances=sweethome3d, num_instances=num_instances,
            views=views, sh3d_root=sh3d_root, sh3d_hold_out=held_out_scene_ids(sh3d_hold_out or []),
            test_views=test_views, resolution=resolution, supersample=supersample, seed=seed, workers=workers,
            fg_root=fg_root, fg_split_seed=fg_split_seed, urdf_root=urdf_root or DEFAULT_URDF_ROOT,
            textured_fraction=textured_fraction, backgrounds=tuple(background) if background else ("white",),
            radius=radius, distance=distance, distance_jitter=distance_jitter, fov_deg=fov_deg,
            elevation_min_deg=elevation_min, elevation_max_deg=elevation_max, exploit_mesh_fraction=exploit_mesh_fraction,
        )
        build_and_report(cfg, build_pretrain_mix, coverage=True)

    @data_app.command("view")
    def view_cmd(
        out: Path = typer.Option(..., "--out", help="The view's folder (an existing view there is replaced)."),
        take: List[str] = typer.Option(..., "--take", help="ROOT:SPLIT, ROOT:SPLIT:N (its first N) or ROOT:SPLIT:ID,ID,... "
                                       "(repeatable, in order): scenes of a built dataset's manifest split, into the "
                                       "view's split of the same name."),
        name: Optional[str] = typer.Option(None, "--name", help="The view's manifest name."),
    ) -> None:
        """Make a dataset of symlinks to scenes of built datasets, with a merged manifest (no images copied)."""
        from latentscenes.data.view import Take, build_view

        with user_errors():
            try:
                takes = [Take.parse(t) for t in take]
            except ValueError as e:
                fail(str(e))
            m = build_view(out, takes, name=name)
        counts = ", ".join(f"{s} {len(v)}" for s, v in m["splits"].items())
        console.print(f"view {out}: {len(m['scenes'])} scenes ({counts}) from {len(m['view']['sources'])} source(s)")

    @data_app.command("validate")
    def validate_cmd(
        root: Path = typer.Argument(..., help="Dataset folder."),
        figures: Optional[Path] = typer.Option(None, "--figures", help="Folder for cameras.png / contact_sheet.png (default ROOT/validation)."),
        workers: int = typer.Option(2, "--workers", help="Loader threads."),
    ) -> None:
        """Check every scene and print counts, sizes and camera statistics; exit 1 on problems."""
        # imported on use: keeps `latentscenes --help` fast
        from latentscenes.data.validate import validate_dataset

        if not root.is_dir():  # a wrong path is a usage error (exit 2), not a dataset that failed validation (1)
            fail(f"{root}: dataset folder not found" if not root.exists() else f"{root}: not a folder")
        with user_errors():
            rep = validate_dataset(root, figures, workers=workers)
        console.print(json.dumps(rep.stats, indent=1))
        for w in rep.warnings[:20]:
            console.print(f"[yellow]warning:[/yellow] {w}")
        if len(rep.warnings) > 20:
            console.print(f"[yellow]... {len(rep.warnings) - 20} more warnings[/yellow]")
        for p in rep.problems[:50]:
            console.print(f"[red]problem:[/red] {p}")
        if len(rep.problems) > 50:
            console.print(f"[red]... {len(rep.problems) - 50} more problems[/red]")
        for f in rep.figures:
            console.print(f"figure: {f}")
        if not rep.ok:
            console.print(f"[red]validation FAILED[/red]: {len(rep.problems)} problem(s) in {root}")
            raise typer.Exit(1)
        console.print(f"[green]validation passed[/green]: {root}")

    app.add_typer(data_app, name="data")
