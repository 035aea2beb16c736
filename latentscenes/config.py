"""Dataclass configs: named presets, saving, loading and dotted overrides.

Every component keeps one ``@dataclass`` config next to its class (e.g. ``RenderConfig`` in
``rendering/renderer.py``). A component that has named presets registers them with
:func:`register_presets`; the CLI resolves ``--preset NAME``, then ``--config saved.json``, then
``--set a.b=value`` overrides, in that order, and saves the resolved config with every run so that a
run can be reproduced or resumed with the exact values it used.

Preset names used across the project:
  * ``tiny-cpu``: sizes that fit a 2-core CPU (docs/training.md "Presets" and docs/benchmark.md give the figures);
  * ``paper``: the paper's sizes (arXiv 2403.11678 Sec. 4), meant for a GPU;
  * ``test``: the smallest sizes, for the test-suite's smoke runs.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Callable, TypeVar

from latentscenes.utils.io import atomic_write_text

T = TypeVar("T")

_PRESETS: dict[type, dict[str, Callable[[], Any]]] = {}


class ConfigError(ValueError):
    """A config file, preset name or override is invalid (the message names which and why)."""


def register_presets(cls: type[T], presets: dict[str, Callable[[], T]]) -> None:
    """Register named presets (factories returning a fresh config) for a config class."""
    _PRESETS.setdefault(cls, {}).update(presets)


def preset_names(cls: type) -> list[str]:
    return sorted(_PRESETS.get(cls, {}))


def get_preset(cls: type[T], name: str) -> T:
    """Return a fresh instance of preset ``name`` for ``cls``.

    Raises:
        ConfigError: if no preset of that name is registered for ``cls``.
    """
    try:
        return _PRESETS[cls][name]()
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r} for {cls.__name__}; known: {', '.join(preset_names(cls)) or 'none'}"
        ) from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """Config dataclass -> plain JSON-able dict (tuples become lists, Paths become strings)."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return conv(cfg)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Convert a JSON value (or a CLI string) to the annotated field type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is typing.Union or (origin is not None and str(origin) == "types.UnionType"):
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args:
            return None
        last: Exception | None = None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where)
            except (ConfigError, ValueError, TypeError) as e:  # try the next member
                last = e
        raise ConfigError(f"{where}: cannot read {value!r} as {tp}: {last}")
    if origin is typing.Literal:
        for a in args:
            if value == a or (isinstance(value, str) and str(a) == value):
                return a
        raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where=where)
    if origin in (tuple, list):
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("[") else [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(a, v, where) for a, v in zip(args, value))
        inner = args[0] if args else Any
        return [_coerce(inner, v, where) for v in value]
    if origin is dict:
        if isinstance(value, str):
            value = json.loads(value)
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: {value!r} is not a boolean")
    if tp is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{where}: {value!r} is not an integer")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not an integer") from None
    if tp is float:
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not a number") from None
    if tp is str:
        return str(value)
    if tp is Path:
        return Path(value)
    return value


def renamed_keys(cls: type) -> dict[str, str]:
    """``{old name: new name}`` of the fields a config class renamed (its ``RENAMED_KEYS`` class attribute).

    Saved config files may carry the old name: :func:`from_dict` reads it as the new one. A ``--set`` of the old
    name is an error that gives the new one (:func:`apply_overrides`).
    """
    return dict(getattr(cls, "RENAMED_KEYS", {}) or {})


def _valid_keys(cls: type) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


def from_dict(cls: type[T], data: dict[str, Any], *, where: str = "config") -> T:
    """Build ``cls`` from a (possibly partial) dict; missing fields keep their defaults.

    A key the class renamed (:func:`renamed_keys`) is read under its new name.

    Raises:
        ConfigError: on an unknown key (the message lists the valid ones), an old and a new name of the same
            field given together, or a value of the wrong type (the message gives the dotted key).
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    renamed = renamed_keys(cls)
    data = dict(data)
    for old, new in renamed.items():
        if old in data:
            if new in data:
                raise ConfigError(f"{where}: both {old!r} and its new name {new!r} are given for {cls.__name__}")
            data[new] = data.pop(old)
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} for {cls.__name__}; "
                          f"valid keys: {_valid_keys(cls)}")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def apply_overrides(cfg: T, overrides: list[str] | None) -> T:
    """Apply ``a.b.c=value`` overrides (values parsed as JSON when possible, else as strings).

    Raises:
        ConfigError: for a malformed override, or an unknown key (the message names the key, its section and
            the section's valid keys; for a renamed key, its new name).
    """
    keys = []
    for ov in overrides or []:
        if "=" not in ov:
            raise ConfigError(f"override {ov!r} must look like key.sub=value")
        key, raw = ov.split("=", 1)
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        parts = key.strip().split(".")
        cfg = _replace_path(cfg, parts, value, key)
        keys.append(parts)
    # A stage given in epochs ignores ``steps``: an explicit ``X.steps=N`` (without ``X.epochs``) means N steps.
    for parts in keys:
        if parts[-1] == "steps" and parts[:-1] + ["epochs"] not in keys and _has_field(cfg, parts[:-1] + ["epochs"]):
            cfg = _replace_path(cfg, parts[:-1] + ["epochs"], None, ".".join(parts[:-1] + ["epochs"]))
    return cfg


def _has_field(obj: Any, parts: list[str]) -> bool:
    """Whether the dotted path ``parts`` names a field below the config ``obj``."""
    for p in parts:
        if not dataclasses.is_dataclass(obj) or p not in {f.name for f in dataclasses.fields(obj)}:
            return False
        obj = getattr(obj, p)
    return True


def _replace_path(obj: Any, parts: list[str], value: Any, key: str, section: str = "") -> Any:
    if not dataclasses.is_dataclass(obj):
        raise ConfigError(f"override {key!r}: {parts[0]!r} is not a config section")
    names = {f.name for f in dataclasses.fields(obj)}
    if parts[0] not in names:
        where = f"section {section!r}" if section else "the top level"
        new = renamed_keys(type(obj)).get(parts[0])
        hint = f"; it was renamed {new!r}" if new else ""
        raise ConfigError(f"override {key!r}: unknown key {parts[0]!r} in {type(obj).__name__} ({where}){hint}; "
                          f"valid keys: {_valid_keys(type(obj))}")
    if len(parts) == 1:
        tp = typing.get_type_hints(type(obj))[parts[0]]
        return dataclasses.replace(obj, **{parts[0]: _coerce(tp, value, key)})
    if not dataclasses.is_dataclass(getattr(obj, parts[0])):
        raise ConfigError(f"override {key!r}: {parts[0]!r} is a value, not a config section")
    sub = f"{section}.{parts[0]}" if section else parts[0]
    child = _replace_path(getattr(obj, parts[0]), parts[1:], value, key, sub)
    return dataclasses.replace(obj, **{parts[0]: child})


def flat_dict(d: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: a config dict (``to_dict``) as the dotted keys ``--set`` takes, so that
    two configs can be compared key by key (resume checks)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat_dict(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as JSON, atomically."""
    atomic_write_text(Path(path), json.dumps(to_dict(cfg), indent=2) + "\n")


def load_config(cls: type[T], path: str | Path) -> T:
    """Read a config saved by :func:`save_config`.

    Raises:
        ConfigError: if the file is missing or unreadable, is not a JSON object, or holds unknown keys.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    except OSError as e:  # a folder, an unreadable file
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file holds a JSON object (sections and keys), not a {type(data).__name__}")
    return from_dict(cls, data, where=str(path))


def resolve_config(
    cls: type[T], preset: str | None = None, config_path: str | Path | None = None, overrides: list[str] | None = None
) -> T:
    """Preset (or class defaults), then a saved config file (replaces the preset), then overrides."""
    if config_path is not None:
        cfg = load_config(cls, config_path)
    elif preset is not None:
        cfg = get_preset(cls, preset)
    else:
        cfg = cls()
    return apply_overrides(cfg, overrides)
