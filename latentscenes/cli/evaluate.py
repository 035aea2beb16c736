"""Placeholder: this command group is being written (see the project's issues)."""

import typer


def register(app: typer.Typer) -> None:
    return None
