"""Recipe files: named training settings in TOML, one file per recipe (``recipes/*.toml``).

A recipe holds TrainConfig field names and values, flat (``lr = 2e-4``, ``scene_families = "all"``);
what it leaves out keeps TrainConfig's default. ``recipes/shipped.toml`` is the recipe of the shipped
weights (``python -m maskdepth train --config recipes/shipped.toml``, flags on the command line
override it); ``recipes/browser.toml`` the Train tab's two-minute first run.

:func:`load_recipe` reads and checks one (every key a setting, every value of its type, choice and
range), so a typo fails at once with the file and the key named, not after minutes of training.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from maskdepth.errors import TrainingError
from maskdepth.training.config import TrainConfig
from maskdepth.training.settings import Setting, setting, settings

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
    import tomli as tomllib

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"  # next to checkpoints/ in the app folder
KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}  # in TOML's words


def recipe_path(name: str) -> Path:
    """The file of a recipe named in ``recipes/`` ("shipped" -> recipes/shipped.toml)."""
    return RECIPES_DIR / f"{name}.toml"


def load_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """The settings a recipe file gives, by TrainConfig field name, checked against their metadata.

    Raises:
        TrainingError: the file is missing, unreadable or not TOML, or a key is no setting, or a
            value is of the wrong type, not one of the choices, or out of range.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise TrainingError(
            f"no recipe file {path}: give the path of a .toml recipe, e.g. {recipe_path('shipped')}"
        ) from None
    except OSError as e:
        raise TrainingError(f"cannot read the recipe file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise TrainingError(f"recipe file {path} is not valid TOML: {e}") from None
    names = {s.name for s in settings()}
    values = {}
    for key, value in raw.items():
        if key not in names:
            raise TrainingError(
                f"recipe file {path}: unknown setting {key!r}; the settings are TrainConfig's fields "
                f"({', '.join(sorted(names))})"
            )
        values[key] = _checked(path, setting(key), value)
    return values


def recipe_config(path: str | os.PathLike, **overrides: Any) -> TrainConfig:
    """The TrainConfig of a recipe file, ``overrides`` (field names) winning."""
    return TrainConfig(**{**load_recipe(path), **overrides})


def _checked(path: Path, s: Setting, value: Any) -> Any:
    """``value`` as setting ``s`` takes it (an int where a float is due becomes a float)."""
    if s.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    why = None
    if not isinstance(value, s.type) or (s.type is int and isinstance(value, bool)):
        why = f"is not {KINDS[s.type]}"
    elif s.choices is not None and value not in s.choices:
        why = f"is not one of {', '.join(map(str, s.choices))}"
    elif s.minimum is not None and (value <= s.minimum if s.exclusive_minimum else value < s.minimum):
        why = f"must be {'>' if s.exclusive_minimum else '>='} {s.minimum:g}"
    elif s.maximum is not None and value > s.maximum:
        why = f"must be <= {s.maximum:g}"
    if why:
        raise TrainingError(f"recipe file {path}: {s.name} = {value!r} {why}")
    return value
