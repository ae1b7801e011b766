"""maskdepth's Gradio app: Predict, Train, Compare and Models (Hub) tabs.

    python app.py            # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT as usual)

Folders: ``MASKDEPTH_RUNS`` (default ``runs/``) for trained runs, ``MASKDEPTH_DATA`` (default
``data_cache/app``) for uploaded datasets; the shipped model is ``checkpoints/``. On a Hugging Face
Space (``SPACE_ID`` set) local paths are refused, Hub pushes use the visitor's sign-in, each visitor
sees only their own runs, and a training ends after 10 minutes at most. A Space's disk is wiped on
restart: to keep runs, mount a storage bucket and point ``MASKDEPTH_RUNS`` at it (e.g.
``MASKDEPTH_RUNS=/data/runs``); the key naming the visitors' folders (``MASKDEPTH_SECRET``, else one
kept in that folder) then survives restarts too. A training is a server-side job: closing the page
does not stop it, and a reload shows it again.
``MASKDEPTH_MCP=1`` also serves an MCP server (``/gradio_api/mcp/``) whose one tool is predict.
Trainings run in a child process of their own (``MASKDEPTH_TRAIN_IN_CHILD=0``: in a thread of the server).
This file only assembles the tabs from ``maskdepth/ui/`` and launches; no logic lives here.
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from maskdepth.ui import compare_tab, context, mcp, models_tab, predict_tab, train_tab

ROOT = Path(__file__).resolve().parent


def build_demo(
    checkpoints_dir: str | os.PathLike = ROOT / "checkpoints",
    runs_dir: str | os.PathLike | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    comparison_dir: str | os.PathLike = ROOT / "comparisons" / "default",
    examples_dir: str | os.PathLike = ROOT / "examples",
    on_space: bool | None = None,
) -> gr.Blocks:
    """The app's Blocks for these folders (no weights are loaded here; models load on first use)."""
    ctx = context.make_context(
        checkpoints_dir,
        runs_dir,
        data_dir=data_dir,
        comparison_dir=comparison_dir,
        examples_dir=examples_dir,
        on_space=on_space,
    )
    return assemble(ctx)


def assemble(ctx: context.AppContext) -> gr.Blocks:
    with gr.Blocks(title="maskdepth", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# maskdepth\nWhere is the pasted object, and how far is everything? A W-Net answers both."
        )
        with gr.Tab("Predict"):
            predict_tab.build(ctx)
        with gr.Tab("Train"):
            train_tab.build(ctx)
        with gr.Tab("Compare"):
            compare_tab.build(ctx)
        with gr.Tab("Models (Hub)"):
            models_tab.build(ctx)
        context.finish(ctx, demo)
    return demo.queue(max_size=context.QUEUE_MAX_SIZE, default_concurrency_limit=2)


def main() -> None:
    ctx = context.make_context(
        ROOT / "checkpoints", comparison_dir=ROOT / "comparisons" / "default", examples_dir=ROOT / "examples"
    )
    mcp_server = mcp.mcp_requested()  # MASKDEPTH_MCP=1: also an MCP server whose one tool is predict
    if mcp_server:
        mcp.check_installed()
    print(context.warm_up(ctx))  # load the default weights now (not at import), or say why not
    demo = assemble(ctx)
    # On a Space, cap uploads (dataset zips) so one visitor cannot fill the disk; locally, no cap.
    demo.launch(
        show_error=True,
        allowed_paths=[str(ctx.examples_dir)],
        max_file_size="1gb" if ctx.on_space else None,
        mcp_server=mcp_server,
        prevent_thread_lock=True,
    )
    if mcp_server:
        print(f"maskdepth: MCP tools: {', '.join(mcp.keep_tools(demo))}")
    demo.block_thread()


if __name__ == "__main__":
    main()
