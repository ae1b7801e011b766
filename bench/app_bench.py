"""The app as a user meets it: its Predict endpoint through ``gradio_client``, and its cold start.

The app (``app.py`` with ``build_demo(...)``, endpoint ``api_name="predict"``) is written by
another developer; this module only talks to it from outside. Which endpoint parameter is
the background and which the composite is read from the endpoint's own description
(``Client.view_api``), never assumed by position unless the labels say nothing.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from support.net import free_port

from bench.common import ROOT, Row, SectionResult, Stats, verdict

API_NAME = "/predict"
COLD_TARGET_S = 10.0


class AppUnavailable(RuntimeError):
    """The app cannot be benchmarked (missing, or an interface this bench cannot drive); the row is skipped."""


def _is_image_param(p: dict) -> bool:
    kind = str((p.get("python_type") or {}).get("type", "")).lower()
    return p.get("component") in ("Image", "File", "ImageEditor") or "filepath" in kind


def _role(p: dict) -> str | None:
    """'fg' for the composite, 'bg' for the background, None when the label does not say."""
    text = f"{p.get('parameter_name') or ''} {p.get('label') or ''}".lower().replace("-", "_")
    if any(k in text for k in ("fg_bg", "fgbg", "composite", "foreground")):
        return "fg"
    if "bg" in text or "background" in text:
        return "bg"
    return None


def endpoint_kwargs(api_info: dict, fg: Path, bg: Path) -> tuple[dict[str, Any], str]:
    """Keyword arguments for ``Client.predict`` on /predict, and how the images were mapped.

    Parameters with defaults are left to their defaults; a required non-image parameter
    makes the endpoint undrivable (AppUnavailable names it).
    """
    from gradio_client import handle_file

    endpoint = (api_info.get("named_endpoints") or {}).get(API_NAME)
    if endpoint is None:
        names = sorted((api_info.get("named_endpoints") or {}).keys())
        raise AppUnavailable(f"the app has no {API_NAME} endpoint (it has {names or 'none'})")
    params = endpoint.get("parameters", [])
    images = [p for p in params if _is_image_param(p)]
    roles = [_role(p) for p in images]
    if len(images) == 1:
        mapping = {images[0]["parameter_name"]: fg}
    elif len(images) == 2 and sorted(r or "" for r in roles) == ["bg", "fg"]:
        mapping = {p["parameter_name"]: (fg if r == "fg" else bg) for p, r in zip(images, roles, strict=True)}
    elif len(images) == 2:
        # No telling labels: the project's order is bg first, then fg_bg.
        mapping = {images[0]["parameter_name"]: bg, images[1]["parameter_name"]: fg}
    else:
        raise AppUnavailable(f"{API_NAME} takes {len(images)} image inputs; this bench drives 1 or 2")
    for p in params:
        if p["parameter_name"] not in mapping and not p.get("parameter_has_default"):
            raise AppUnavailable(
                f"{API_NAME} needs a value for {p['parameter_name']!r} ({p.get('label')}), which this bench cannot guess"
            )
    described = ", ".join(f"{name}={'fg_bg' if path == fg else 'bg'}" for name, path in mapping.items())
    return {name: handle_file(str(path)) for name, path in mapping.items()}, described


def connect(url: str, *, download_files: bool = True) -> Any:
    """A quiet gradio_client Client (``download_files=False``: outputs stay on the server)."""
    from gradio_client import Client

    return Client(url, verbose=False, download_files=download_files)


def predict_once(client: Any, kwargs: dict[str, Any]) -> Any:
    """One /predict call (uploads the inputs, downloads the outputs)."""
    return client.predict(**kwargs, api_name=API_NAME)


def no_download_call(client: Any, pair: tuple[Path, Path]) -> Callable[[], Any]:
    """A zero-argument /predict call on ``client``'s app, (bg, fg_bg) ``pair`` up, outputs left on the server."""
    quiet = connect(client.src, download_files=False)
    kwargs, _ = endpoint_kwargs(quiet.view_api(print_info=False, return_format="dict"), pair[1], pair[0])
    return lambda: predict_once(quiet, kwargs)


# ---- the app in this process ------------------------------------------------------------------


def _load_module(app_path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("maskdepth_app_under_bench", app_path)
    if spec is None or spec.loader is None:
        raise AppUnavailable(f"cannot import {app_path}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(app_path.parent))
    spec.loader.exec_module(module)
    return module


class InProcessApp:
    """``build_demo(...)`` from app.py, launched in this process on a free port.

    Arguments of ``build_demo`` are filled by name: ``predictor`` gets the bench's Predictor,
    ``model`` its model, and ``folders`` fill the ones they name (e.g. ``checkpoints_dir`` with
    the bench model saved in the ``save_pretrained`` layout, ``runs_dir`` / ``data_dir`` with
    scratch folders, so the app touches nothing in the repository). Any other required
    argument makes it AppUnavailable (the caller then falls back to a subprocess).
    """

    def __init__(self, app_path: Path, predictor: Any, folders: dict[str, Path] | None = None):
        module = _load_module(app_path)
        build = getattr(module, "build_demo", None)
        if not callable(build):
            raise AppUnavailable(f"{app_path} has no build_demo()")
        folders = folders or {}
        kwargs: dict[str, Any] = {}
        for name, p in inspect.signature(build).parameters.items():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if name in folders:
                kwargs[name] = folders[name]
            elif p.default is not inspect.Parameter.empty:
                continue
            elif "predictor" in name:
                kwargs[name] = predictor
            elif name == "model":
                kwargs[name] = predictor.model
            else:
                raise AppUnavailable(f"build_demo needs {name!r}, which this bench cannot provide")
        self.demo = build(**kwargs)
        self.port = free_port()
        self.demo.launch(server_name="127.0.0.1", server_port=self.port, prevent_thread_lock=True, quiet=True)
        self.url = f"http://127.0.0.1:{self.port}/"
        self.how = f"in-process build_demo({', '.join(kwargs)})"

    def close(self) -> None:
        self.demo.close()


class GradioFloor:
    """The least a Gradio predict endpoint can cost: two filepath images in, the composite back out.

    Same transport as the app (queue, upload, download through gradio_client) with no work in
    the handler, so "app - floor" is what the app's own handler and outputs add.
    """

    def __init__(self) -> None:
        import gradio as gr

        def echo(bg: str | None, fg_bg: str | None) -> str | None:
            return fg_bg

        with gr.Blocks(analytics_enabled=False) as demo:
            bg = gr.Image(type="filepath", label="Background (bg)")
            fg = gr.Image(type="filepath", label="Composite (fg_bg)")
            out = gr.Image(format="png")
            gr.Button().click(echo, [bg, fg], out, api_name="predict")
        self.demo = demo.queue()
        self.port = free_port()
        self.demo.launch(server_name="127.0.0.1", server_port=self.port, prevent_thread_lock=True, quiet=True)
        self.url = f"http://127.0.0.1:{self.port}/"

    def close(self) -> None:
        self.demo.close()


# ---- the app as a subprocess (cold start) ------------------------------------------------------


class SubprocessApp:
    """``python app.py`` with GRADIO_SERVER_PORT set; its output goes to ``log``."""

    def __init__(self, app_path: Path, log: Path):
        self.port = free_port()
        env = dict(os.environ)
        env.update(
            GRADIO_SERVER_PORT=str(self.port),
            GRADIO_SERVER_NAME="127.0.0.1",
            GRADIO_ANALYTICS_ENABLED="False",
            PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        )
        self.log = log
        self._log_file = open(log, "wb")  # closed in close()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, str(app_path)],
            cwd=str(app_path.parent),
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}/"
        self.how = f"subprocess python {app_path.name}"

    def log_tail(self, n: int = 600) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:].strip()
        except OSError:
            return ""

    def wait_client(self, timeout_s: float) -> Any:
        """Connect as soon as the server answers; raise AppUnavailable if it dies or times out."""
        deadline = self.started + timeout_s
        last = ""
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise AppUnavailable(
                    f"python app.py exited with code {self.proc.returncode}: {self.log_tail()}"
                )
            try:
                return connect(self.url)
            except Exception as e:  # not up yet: connection refused, config not served, ...
                last = f"{type(e).__name__}: {e}"
                time.sleep(0.1)
        raise AppUnavailable(
            f"no answer from python app.py within {timeout_s:.0f} s ({last}); log: {self.log_tail()}"
        )

    def close(self) -> None:
        """Stop the app we started (terminate, then kill if it lingers)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._log_file.close()


@dataclass
class ColdStart:
    """One cold start: seconds to the server answering and to the first successful predict."""

    up_s: float | None = None
    first_predict_s: float | None = None
    mapping: str = ""
    error: str = ""


def cold_start_once(app_path: Path, fg: Path, bg: Path, log: Path, timeout_s: float) -> ColdStart:
    """``python app.py``, then connect and predict as early as the server allows."""
    out = ColdStart()
    app = SubprocessApp(app_path, log)
    try:
        client = app.wait_client(timeout_s)
        out.up_s = time.perf_counter() - app.started
        kwargs, out.mapping = endpoint_kwargs(client.view_api(print_info=False, return_format="dict"), fg, bg)
        predict_once(client, kwargs)
        out.first_predict_s = time.perf_counter() - app.started
    except AppUnavailable as e:
        out.error = str(e)
    except Exception as e:  # the predict failed inside the app (gradio_client's AppError, ...): report it
        out.error = f"first predict failed: {type(e).__name__}: {e}"
    finally:
        app.close()
    return out


def run_cold_start(
    app_path: Path | None, fg: Path, bg: Path, *, runs: int, timeout_s: float, log_dir: Path
) -> SectionResult:
    """Section 4: ``python app.py`` to the first successful predict via gradio_client."""
    res = SectionResult()
    sec = "4 cold start"
    target = f"<= {COLD_TARGET_S:.0f} s"
    if app_path is None or not app_path.is_file():
        res.rows.append(
            Row(
                sec,
                "python app.py -> first predict",
                None,
                "s",
                target=target,
                verdict="n/a",
                note="skipped: app.py not found",
            )
        )
        res.notes.append("cold start skipped: app.py is not there yet")
        return res
    starts: list[ColdStart] = []
    for r in range(runs):
        starts.append(cold_start_once(app_path, fg, bg, log_dir / f"app-cold-{r}.log", timeout_s))
        if starts[-1].error:
            break  # the same error would come again
    res.raw = {"runs": [dataclasses.asdict(c) for c in starts]}
    ups = [c.up_s for c in starts if c.up_s is not None]
    firsts = [c.first_predict_s for c in starts if c.first_predict_s is not None]
    if ups:
        res.rows.append(Row.from_stats(sec, "python app.py -> server answers", Stats.of(ups), "s"))
    errors = [c.error for c in starts if c.error]
    if firsts and not errors:
        st = Stats.of(firsts)
        ok = verdict(st.median <= COLD_TARGET_S)
        res.rows.append(
            Row.from_stats(
                sec,
                "python app.py -> first predict",
                st,
                "s",
                target=target,
                verdict=ok,
                note=f"inputs {starts[-1].mapping}",
            )
        )
    else:
        res.rows.append(
            Row(
                sec, "python app.py -> first predict", None, "s", target=target, verdict="n/a", note=errors[0]
            )
        )
        res.notes.append(f"cold start: {errors[0]}")
    return res


def open_app_for_latency(
    app_path: Path | None,
    predictor: Any,
    fg: Path,
    bg: Path,
    log_dir: Path,
    timeout_s: float,
    folders: dict[str, Path] | None = None,
) -> tuple[Any, Callable[[], Any], Callable[[], None], str]:
    """A connected client, a zero-argument predict call, a closer, and how the app runs.

    Prefers build_demo in this process; falls back to ``python app.py`` in a subprocess
    when build_demo needs arguments this bench cannot provide.
    """
    if app_path is None or not app_path.is_file():
        raise AppUnavailable("app.py not found")
    app: InProcessApp | SubprocessApp
    try:
        app = InProcessApp(app_path, predictor, folders)
        client = connect(app.url)
        how = app.how
    except AppUnavailable as e:
        app = SubprocessApp(app_path, log_dir / "app-latency.log")
        client = app.wait_client(timeout_s)
        how = f"{app.how} (in-process not possible: {e})"
    kwargs, mapping = endpoint_kwargs(client.view_api(print_info=False, return_format="dict"), fg, bg)
    return client, (lambda: predict_once(client, kwargs)), app.close, f"{how}; inputs {mapping}"
