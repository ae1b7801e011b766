"""Models tab: load weights from a Hugging Face Hub repo into the pickers; push a model to a repo, download
it as a zip or export it as one ONNX file (:mod:`maskdepth.hub.onnx_export`).

Tokens: locally ``HF_TOKEN`` (or ``hf auth login``) is used by ``maskdepth.hub.transfer``; on a Space
(``SPACE_ID`` set) only the signed-in user's OAuth token is used, never the Space's own secret.
Tokens are passed through, never shown or logged.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from maskdepth.errors import HubError, InputError
from maskdepth.hub.transfer import is_repo_id
from maskdepth.ui.context import DEFAULT_CHOICE, AppContext, register_picker
from maskdepth.ui.errors import gradio_errors

HUB_CONCURRENCY = 2
CLI_HELP = """\
**From the command line** (token from `HF_TOKEN` or `hf auth login`):

```bash
python -m maskdepth push runs/NAME owner/name            # a trained run (weights, card, metrics)
python -m maskdepth push checkpoints owner/name --private
python -m maskdepth pull owner/name --out models/NAME     # and back
python -m maskdepth export-onnx --model runs/NAME --out NAME.onnx   # for onnxruntime (docs/onnx.md)
```
"""
ONNX_LABEL = (
    "ONNX (network only: input (B, C, H, W) normalised, H and W multiples of 32; outputs mask and depth "
    "logits; see docs/onnx.md)"
)


def oauth_available() -> bool:
    """Whether ``gr.LoginButton`` can work: on a real Space (as Gradio detects it; elsewhere Gradio mocks the
    sign-in with the machine's own Hub login) with the ``gradio[oauth]`` extras (authlib, itsdangerous)."""
    from gradio.utils import get_space

    extras = all(importlib.util.find_spec(name) is not None for name in ("authlib", "itsdangerous"))
    return extras and get_space() is not None


def _token(ctx: AppContext, oauth_token: gr.OAuthToken | None, *, writing: bool) -> str | bool | None:
    """The token to use: the signed-in user's on a Space, else None (``maskdepth.hub.transfer`` reads HF_TOKEN)."""
    if not ctx.on_space:
        return None
    if oauth_token is not None:
        return oauth_token.token
    if writing:
        raise HubError("sign in with the Hugging Face button above first: pushing uses your own account")
    return False  # anonymous: do not fall back to the Space's own token for a user-chosen repo


def _repo_id(value: str | None) -> str:
    repo_id = (value or "").strip()
    if not repo_id:
        raise InputError("type a Hub repo id, e.g. your-name/maskdepth-wnet")
    return repo_id


def load_from_hub(ctx: AppContext, repo_id: str | None, oauth_token: gr.OAuthToken | None = None) -> str:
    """Download and load ``repo_id`` (strictly), add it to the model pickers; returns a status line."""
    repo_id = _repo_id(repo_id)
    # Only a well-formed owner/name that is not also a local path: this box never reads local files.
    if not is_repo_id(repo_id) or Path(repo_id).exists():
        raise InputError(f"{repo_id!r} is not a Hub repo id: use owner/name")
    predictor = ctx.predictors.get(repo_id, token=_token(ctx, oauth_token, writing=False))
    ctx.add_hub_model(repo_id)
    m = predictor.model
    return (
        f"Loaded **{repo_id}**: {m.in_channels}-channel W-Net, width {m.base_width}, trained at "
        f"{m.cfg.describe_sizes()}. Pick it in the Predict tab."
    )


def push(
    ctx: AppContext,
    source: str | None,
    repo_id: str | None,
    private: bool,
    oauth_token: gr.OAuthToken | None = None,
) -> str:
    """Push the shipped model or a run (weights, model card, metrics) to ``repo_id``; returns a link."""
    from maskdepth.hub.transfer import push_to_hub

    repo_id = _repo_id(repo_id)
    token = _token(ctx, oauth_token, writing=True)
    path = ctx.resolve_source(source or DEFAULT_CHOICE)
    if not Path(path).exists():
        raise InputError(f"{source!r} is not a local model: pick the shipped model or a trained run to push")
    url = push_to_hub(
        path,
        repo_id,
        token=token or None,
        private=bool(private),
        commit_message=f"Upload {Path(path).name} with the maskdepth app",
    )
    return f"Pushed `{Path(path).name}` to [{repo_id}]({url})."


def export_onnx_file(ctx: AppContext, source: str | None) -> str:
    """The shipped model, a run or a loaded Hub model as one ONNX file (network only, weights inside).

    The model comes from the predictor cache, through the Predict tab's resolution of the picker's value
    (on a Space: only runs, the shipped model and Hub ids, never the Space's own token).
    """
    from maskdepth.hub.onnx_export import export_onnx

    path = ctx.resolve_source(source or DEFAULT_CHOICE)
    model = ctx.predictors.get(path, token=False if ctx.on_space else None).model
    if path == str(ctx.checkpoints_dir):
        name = "maskdepth.onnx"
    else:  # a run folder, or a Hub id owner/name
        name = f"maskdepth-{Path(path).name if Path(path).exists() else path.replace('/', '--')}.onnx"
    return str(export_onnx(model, ctx.outputs.new("onnx") / name))


def download(ctx: AppContext, source: str | None) -> str:
    """The shipped model or a run as a zip (its folder: weights, card, metrics), for the browser."""
    from maskdepth.ui.train_run import zip_folder

    path = Path(ctx.resolve_source(source or DEFAULT_CHOICE))
    if not path.is_dir():
        raise InputError(f"{source!r} is not a local model: pick the shipped model or a trained run")
    return str(zip_folder(path, ctx.outputs.new("download")))


@dataclass
class ModelsTab:
    repo: gr.Textbox
    source: gr.Dropdown


def build(ctx: AppContext) -> ModelsTab:
    """Lay out the tab and wire its events (call inside a ``gr.Tab``)."""
    if ctx.on_space and oauth_available():
        gr.Markdown("Sign in to push to your own account (loading public repos works without signing in).")
        gr.LoginButton()
    elif ctx.on_space:
        gr.Markdown(
            "Pushing needs a Hugging Face sign-in, which is not available here (it needs a Space with "
            "`hf_oauth: true` and `gradio[oauth]` installed). Loading public repos works."
        )
    else:
        gr.Markdown(
            "Running locally: the Hub token comes from `HF_TOKEN` or `hf auth login`; it is never shown."
        )
    gr.Markdown("### Load a model from the Hub")
    with gr.Row():
        repo = gr.Textbox(label="Hub repo id", placeholder="owner/name", scale=4)
        load = gr.Button("Load", variant="primary", scale=1)
    load_status = gr.Markdown()
    gr.Markdown(
        "### Push a model to the Hub (weights, model card, metrics), download it or export it as ONNX"
    )
    with gr.Row():
        source = gr.Dropdown(
            ctx.local_model_choices(),
            value=DEFAULT_CHOICE,
            allow_custom_value=True,
            label="Model (the shipped model or a run)",
            scale=3,
        )
        target = gr.Textbox(label="Target repo id", placeholder="your-name/maskdepth-wnet", scale=3)
        private = gr.Checkbox(label="private", value=False, scale=1)
    with gr.Row():
        push_btn = gr.Button("Push", variant="primary")
        zip_btn = gr.Button("Download as a zip")
        onnx_btn = gr.Button("Export ONNX", elem_id="md-export-onnx")
    push_status = gr.Markdown()
    with gr.Row():
        zipped = gr.File(label="The model's folder (zip)", interactive=False, visible=True)
        onnx_file = gr.File(label=ONNX_LABEL, interactive=False)
    register_picker(ctx, source, ctx.local_model_choices)
    gr.Markdown(CLI_HELP)

    @gradio_errors
    def on_load(repo_id: str | None, oauth_token: gr.OAuthToken | None) -> str:
        return load_from_hub(ctx, repo_id, oauth_token)

    @gradio_errors
    def on_push(
        source: str | None, repo_id: str | None, private: bool, oauth_token: gr.OAuthToken | None
    ) -> str:
        return push(ctx, source, repo_id, private, oauth_token)

    @gradio_errors
    def on_zip(source: str | None) -> str:
        return download(ctx, source)

    @gradio_errors
    def on_onnx(source: str | None) -> str:
        return export_onnx_file(ctx, source)

    hub = {"concurrency_id": "hub", "concurrency_limit": HUB_CONCURRENCY}
    zip_btn.click(on_zip, source, zipped, api_visibility="private", **hub)
    onnx_btn.click(on_onnx, source, onnx_file, api_visibility="private", **hub)
    load_event = load.click(
        on_load,
        repo,
        load_status,
        api_name="load_from_hub",
        api_description="Download a W-Net from a Hub repo (owner/name) and add it to this app's model pickers; "
        "returns a status line. Later calls can pass the repo id as `model` to /predict.",
        **hub,
    )
    ctx.model_events.append(load_event)
    push_btn.click(
        on_push,
        [source, target, private],
        push_status,
        api_name="push_to_hub",
        api_description="Push the shipped model or a run (weights, model card, metrics) to a Hub repo "
        "(owner/name), created if missing (private if asked). Needs a token: locally HF_TOKEN, on a "
        "Space the signed-in visitor's. Returns a status line with the repo's link.",
        **hub,
    )
    return ModelsTab(repo=repo, source=source)
