"""The metadata of every training setting, as the CLI and the Train tab use it.

``Setting``
    Frozen dataclass, one per :class:`maskdepth.training.config.TrainConfig` field: ``name``, ``flag``
    (the CLI flag, e.g. ``--workers`` for ``num_workers``, ``--out`` for ``out_dir``, ``--no-flips``
    for ``flips``), ``dest`` (the argparse attribute), ``help``, ``group`` (argparse group title),
    ``default``, ``type`` (``int``/``float``/``str``/``bool``), ``optional`` (None allowed),
    ``choices``, ``minimum``/``maximum`` (inclusive; ``exclusive_minimum`` makes the minimum strict),
    ``step`` and ``label`` (for UI controls), ``cli`` / ``ui`` (shown in the CLI / in the Train tab).
    ``flag`` is the one that changes the default: ``--no-x`` for a boolean that defaults True
    (``negated``), ``--x`` for one that defaults False; the parser takes both ``--x`` and ``--no-x``,
    so a flag can undo what a recipe file set.
``settings() -> list[Setting]`` / ``setting(name) -> Setting``
    All fields in declaration order (loss choices from :func:`maskdepth.model.losses.loss_names`) / one.
``add_arguments(parser, *, only=None, exclude=())``
    Add the CLI settings (``only`` these field names, minus ``exclude``) to an argparse parser, in
    their groups. The parser checks choices and the strict minima (the budget); TrainConfig the rest.
``config_from_args(args, **overrides) -> TrainConfig``
    The config an argparse namespace describes; with no budget given, one epoch.
``to_cli_args(cfg, *, always=()) -> list[str]``
    The CLI arguments reproducing ``cfg``: only the settings that differ from their default
    (and the field names in ``always``), with their exact flags; settings the CLI does not have
    (``sample_every``) are left out.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from maskdepth.model.losses import loss_names
from maskdepth.training.config import GROUPS, TrainConfig

# ---- metadata -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One TrainConfig field as the CLI and the app show it (see the module docstring)."""

    name: str
    flag: str
    dest: str
    help: str
    group: str
    default: Any
    type: type
    optional: bool = False
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    step: float | None = None
    label: str = ""
    cli: bool = True
    ui: bool = False

    @property
    def negated(self) -> bool:
        """A boolean that defaults True: its flag (``--no-...``) turns it off."""
        return self.type is bool and self.default is True


def _setting(f: dataclasses.Field, annotation: Any) -> Setting:
    meta = dict(f.metadata)
    args = typing.get_args(annotation)
    optional = type(None) in args
    if typing.get_origin(annotation) is Literal:
        kind, literal_choices = type(args[0]), tuple(args)
    else:
        kind, literal_choices = next(a for a in (args or (annotation,)) if a is not type(None)), None
    choices = meta.pop("choices", literal_choices)
    if isinstance(choices, str):  # a head's loss names
        choices = tuple(loss_names()[choices])
    negated = kind is bool and f.default is True
    flag = meta.pop("flag", ("--no-" if negated else "--") + f.name.replace("_", "-"))
    return Setting(
        name=f.name,
        flag=flag,
        dest=meta.pop("dest", f.name),
        default=f.default,
        type=kind,
        optional=optional,
        choices=choices,
        **meta,
    )


@cache
def _settings() -> tuple[Setting, ...]:
    hints = typing.get_type_hints(TrainConfig)
    return tuple(_setting(f, hints[f.name]) for f in dataclasses.fields(TrainConfig))


def settings() -> list[Setting]:
    """Every TrainConfig field's metadata, in declaration order."""
    return list(_settings())


def setting(name: str) -> Setting:
    """The metadata of the TrainConfig field ``name``."""
    for s in _settings():
        if s.name == name:
            return s
    raise KeyError(name)


# ---- the CLI ------------------------------------------------------------------------------------


def _strictly_above(minimum: float, kind: type) -> Any:
    def parse(value: str) -> Any:
        v = kind(value)
        if v <= minimum:
            raise argparse.ArgumentTypeError(f"must be > {minimum:g}, got {value}")
        return v

    parse.__name__ = kind.__name__  # argparse names the type in its "invalid value" message
    return parse


def add_arguments(
    parser: argparse.ArgumentParser, *, only: Iterable[str] | None = None, exclude: Iterable[str] = ()
) -> None:
    """Add the CLI's TrainConfig flags to ``parser`` in their argparse groups (``only`` these field
    names if given, minus ``exclude``)."""
    keep = None if only is None else set(only)
    skip = set(exclude)
    groups: dict[str, Any] = {}
    for s in _settings():
        if not s.cli or s.name in skip or (keep is not None and s.name not in keep):
            continue
        if s.group not in groups:
            groups[s.group] = parser.add_argument_group(s.group, GROUPS[s.group])
        kwargs: dict[str, Any] = {"dest": s.dest, "help": s.help or None}
        if s.type is bool:  # --x and --no-x, so the command line can undo a recipe file's choice
            kwargs.update(action=argparse.BooleanOptionalAction, default=s.default)
            groups[s.group].add_argument("--" + s.name.replace("_", "-"), **kwargs)
            continue
        strict = s.exclusive_minimum and s.minimum is not None
        kwargs.update(
            type=_strictly_above(s.minimum, s.type) if strict else s.type,
            default=s.default,
            choices=s.choices,
        )
        groups[s.group].add_argument(s.flag, **kwargs)


def config_from_args(args: argparse.Namespace, **overrides: Any) -> TrainConfig:
    """The TrainConfig an argparse namespace (from :func:`add_arguments`) describes.

    ``overrides`` (field names) win; with no budget at all the run trains for one epoch.
    """
    given = vars(args)
    values = {s.name: given[s.dest] for s in _settings() if s.dest in given}
    values.update(overrides)
    if values.get("epochs") is None and values.get("steps") is None and values.get("minutes") is None:
        values["epochs"] = 1.0
    return TrainConfig(**values)


def to_cli_args(cfg: TrainConfig, *, always: Sequence[str] = ()) -> list[str]:
    """The CLI arguments that reproduce ``cfg``: non-default settings (and ``always``) with their flags."""
    out: list[str] = []
    for s in _settings():
        value = getattr(cfg, s.name)
        if not s.cli or (value == s.default and s.name not in always):
            continue
        if s.type is bool:
            if value != s.negated:  # --no-x when False, --x when True
                out.append(s.flag)
        elif value is not None:
            out += [s.flag, str(value)]
    return out
