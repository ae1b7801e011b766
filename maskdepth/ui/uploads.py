"""Image inputs whose uploads reach the handler undecoded, so ``maskdepth.imageio`` says what is wrong."""

from __future__ import annotations

from typing import Any

import gradio as gr


def image_upload(**kwargs: Any) -> gr.Image:
    """A ``gr.Image(type="filepath")`` whose upload reaches the handler undecoded.

    ``gr.Image`` opens every upload with PIL before the handler runs, so a non-image failed
    inside Gradio with its internal error text. Here the path (already checked by Gradio to be
    an upload in its cache) is passed on as it is, and ``maskdepth.imageio.open_image``, the one
    door for images (bomb guard, modes, EXIF), says what is wrong. An override on the instance
    rather than a subclass: Gradio writes a ``.pyi`` stub beside the module of every Component
    subclass.
    """
    image = gr.Image(type="filepath", image_mode=None, **kwargs)
    decode = image.preprocess

    def preprocess(payload: Any) -> Any:
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return decode(payload)  # pasted base64 data: Gradio writes it to a file first

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image
