"""Gradio controls built from the training settings (training.settings), and handlers that name them.

One control per :class:`~maskdepth.training.settings.Setting`: its kind follows the setting's type, choices
and range; its label, help, range and step are the setting's. An optional number (None = "the
default", e.g. ``eval_every``) is shown as 0. :func:`named_handler` gives a handler taking
``*args`` the signature Gradio reads parameter names from, so the API lists every setting by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from maskdepth.errors import InputError
from maskdepth.training.settings import Setting

RADIO_MAX_CHOICES = 3  # more choices than this: a dropdown
SLIDER_MIN_WIDTH = 320  # pixels


def label_of(s: Setting) -> str:
    """The setting's label, else its help (capitalised), else its name."""
    text = s.label or s.help or s.name.replace("_", " ")
    return text[:1].upper() + text[1:]


def control(s: Setting, value: Any, *, choices: Sequence[Any] | None = None, **kwargs: Any) -> Any:
    """The control of one setting, showing ``value`` (``choices`` replace the setting's own)."""
    label = label_of(s)
    # The help as a hint under the label, unless the label already says it (or is the help).
    info = s.help if s.label and s.help and s.help.lower() not in s.label.lower() else None
    if s.optional and s.type in (int, float):
        info = f"{info or ''}{'; ' if info else ''}0 = {_unset(s)}"
    options = list(choices if choices is not None else s.choices or ())
    if options:
        kind = gr.Radio if len(options) <= RADIO_MAX_CHOICES else gr.Dropdown
        return kind(options, value=value, label=label, info=info, **kwargs)
    if s.type is bool:
        return gr.Checkbox(value=bool(value), label=label, info=info, **kwargs)
    if s.type in (int, float) and not s.optional and s.minimum is not None and s.maximum is not None:
        step = s.step or (1 if s.type is int else None)
        kwargs.setdefault("min_width", SLIDER_MIN_WIDTH)  # a row of two: the slider takes a line of its own
        return gr.Slider(s.minimum, s.maximum, value=value, step=step, label=label, info=info, **kwargs)
    if s.type in (int, float):
        shown = 0 if value is None else value
        minimum = 0 if s.optional else s.minimum
        precision = 0 if s.type is int else None
        return gr.Number(value=shown, minimum=minimum, precision=precision, label=label, info=info, **kwargs)
    return gr.Textbox(value=value, label=label, info=info, **kwargs)


def _unset(s: Setting) -> str:
    """What an optional setting's None means, from its help's "(default: ...)", else "not set"."""
    if "(default: " in s.help:
        return s.help.split("(default: ", 1)[1].rstrip(")")
    return "not set"


def from_control(s: Setting, value: Any) -> Any:
    """A control's value as the TrainConfig field wants it (numbers typed; 0 -> None for optional ones)."""
    if s.type not in (int, float):
        return value
    if value is None or (s.optional and value == 0):
        if s.optional:
            return None
        raise InputError(f"{label_of(s)}: a number is needed")
    try:
        return s.type(value)
    except (TypeError, ValueError) as err:
        raise InputError(f"{label_of(s)}: {value!r} is not a number") from err


def named_handler(
    fn: Callable[..., Any], names: Sequence[str], *, request: bool = True
) -> Callable[..., Any]:
    """``fn(**values)`` as a handler Gradio calls positionally with one value per name in ``names``
    (and the ``gr.Request`` last, as ``request``, if ``request``).

    Gradio reads an endpoint's parameter names from ``inspect.signature`` and injects the request
    by type hint, so the handler carries a matching ``__signature__`` and ``__annotations__``.
    Generator functions stay generators (Gradio streams them).
    """
    count = len(names)

    if inspect.isgeneratorfunction(fn):

        def handler(*args: Any) -> Any:
            yield from fn(**dict(zip(names, args[:count], strict=True)), **_request(args, count, request))

    else:

        def handler(*args: Any) -> Any:
            return fn(**dict(zip(names, args[:count], strict=True)), **_request(args, count, request))

    # Every parameter defaults to None in the signature: Gradio then makes an input whose control starts
    # empty (the dataset zip, the folder box) optional for API clients too, so /train can be called with
    # no arguments at all; inputs whose control has a value take that value as their API default.
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(n, kind, default=None) for n in names]
    if request:
        params.append(inspect.Parameter("request", kind, default=None, annotation=gr.Request))
    handler.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    handler.__annotations__ = {"request": gr.Request} if request else {}
    handler.__name__ = handler.__qualname__ = fn.__name__
    handler.__doc__ = fn.__doc__
    return handler


def _request(args: tuple[Any, ...], count: int, wanted: bool) -> dict[str, Any]:
    return {"request": args[count] if len(args) > count else None} if wanted else {}
