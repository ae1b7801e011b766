"""Errors in app handlers -> ``gr.Error``: our own messages as they are, anything else without internals."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import gradio as gr

from maskdepth.errors import MaskDepthError

logger = logging.getLogger("maskdepth.app")

F = TypeVar("F", bound=Callable[..., Any])


def _to_gr_error(err: Exception) -> gr.Error:
    """A user-facing gr.Error: our own messages as they are; anything else without internals."""
    if isinstance(err, MaskDepthError):
        return gr.Error(str(err), print_exception=False)
    # Unexpected: the traceback goes to the server log only, never to the browser.
    logger.exception("unexpected error in an app handler")
    return gr.Error(
        f"Something went wrong on the server ({type(err).__name__}). The details are in the server log; "
        "please try again or report the problem.",
        print_exception=False,
    )


def user_message(err: Exception) -> str:
    """What the user is told about ``err`` (as :func:`gradio_errors` would; unexpected ones are logged)."""
    return _to_gr_error(err).message


def gradio_errors(fn: F) -> F:
    """Decorate a handler so MaskDepthError -> gr.Error(message) and other errors -> a generic gr.Error.

    Keeps generator handlers generators (Gradio streams them) and the signature intact
    (Gradio injects ``gr.Request`` / ``gr.OAuthToken`` by type hint and ``gr.Progress`` by default).
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as err:  # noqa: BLE001 - every other error becomes a message, see _to_gr_error
                raise _to_gr_error(err) from err

        return gen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as err:  # noqa: BLE001 - every other error becomes a message, see _to_gr_error
            raise _to_gr_error(err) from err

    return wrapper  # type: ignore[return-value]
