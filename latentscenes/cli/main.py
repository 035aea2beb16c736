"""The ``latentscenes`` command. Each command group lives in its own module and registers itself here.

Commands: ``data build flightgear | data validate``, ``fit-rgb``, ``ae pretrain | ae eval``,
``train``, ``exploit``, ``export``, ``eval``, ``render``, ``demo``, ``bench``, ``view``.
"""

from __future__ import annotations

import importlib

import typer

from latentscenes import __version__
from latentscenes.utils.memory import release_large_frees_to_os

app = typer.Typer(
    name="latentscenes",
    help="Learn numerous 3D scenes as Tri-Planes in a 3D-aware latent space (3Da-AE, arXiv 2403.11678).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# module path -> each module exposes ``register(app: typer.Typer) -> None``
_COMMAND_MODULES = [
    "latentscenes.cli.data",
    "latentscenes.cli.fit_rgb",
    "latentscenes.cli.ae",
    "latentscenes.cli.pipeline",
    "latentscenes.cli.evaluate",
    "latentscenes.cli.bench",
    "latentscenes.cli.view",
]

@app.command()
def version() -> None:
    """Print the installed latentscenes version."""
    typer.echo(__version__)


for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    # The command owns the process: fix glibc's mmap threshold before any data is loaded, so that freed image
    # buffers go back to the OS (loading the 1,197-scene set otherwise grows to 13.9 GB; utils/memory.py).
    release_large_frees_to_os()
    app()


if __name__ == "__main__":
    main()
