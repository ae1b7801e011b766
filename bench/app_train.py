"""The Train tab's default run through the app's ``/train`` API against the same run through the CLI.

    .venv/bin/python -m bench.app_train [--minutes 1] [--order app,cli] [--out results.json]

``--order app,app-child,cli`` adds a run of the app training in a child process of its own
(MASKDEPTH_TRAIN_IN_CHILD=1, maskdepth.training.isolated) instead of a thread of its server.

One run each, back to back, on the same settings (the Train tab's defaults, recipes/browser.toml,
with ``--minutes``): ``python app.py`` is started in its own process and driven through
``gradio_client`` the way a page does (the stream is consumed to the end, with the live view on);
the CLI is ``python -m maskdepth train --config recipes/browser.toml``. Both read one
precision cache, measured here before either starts, so neither pays for the probe. The result is
the app's steps as a share of the CLI's in the same wall-clock budget (the aim: >= 0.9), with each
run's held-out IoU, on the CPU named.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support.net import free_port

from bench.common import ROOT, cpu_model

RECIPE = ROOT / "recipes" / "browser.toml"


def _run_summary(run_dir: Path) -> dict:
    """Steps and the best held-out IoU from a run folder's metrics.json."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    history = metrics["history"]
    best = metrics["best"] or {}
    return {
        "steps": history[-1]["step"] if history else 0,
        "iou": (best.get("metrics") or {}).get("mask_iou"),
        "precision": metrics.get("precision"),
    }


def run_cli(minutes: float, out: Path, env: dict[str, str]) -> dict:
    cmd = [sys.executable, "-m", "maskdepth", "train", "--config", str(RECIPE), "--minutes", str(minutes)]
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd, "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"the CLI run failed:\n{proc.stderr[-2000:]}")
    return {**_run_summary(out), "wall_s": wall}


def run_app(minutes: float, runs: Path, env: dict[str, str], in_child: bool = False) -> dict:
    from gradio_client import Client

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={
            **env,
            "MASKDEPTH_RUNS": str(runs),
            "GRADIO_SERVER_PORT": str(port),
            "MASKDEPTH_TRAIN_IN_CHILD": "1" if in_child else "0",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url, deadline = f"http://127.0.0.1:{port}/", time.monotonic() + 180
        while True:
            try:
                client = Client(url, verbose=False)
                break
            except Exception:  # noqa: BLE001 - not listening yet
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the app did not start") from None
                time.sleep(1.0)
        t0 = time.perf_counter()
        job = client.submit(budget=minutes, api_name="/train")
        updates = sum(1 for _ in job)  # every streamed update, as a page receives them
        status = job.outputs()[-1][1]
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(30)
    match = re.search(r"after (\d+) steps", status or "")
    run_dir = next(p for p in sorted(runs.rglob("metrics.json"))).parent
    return {
        **_run_summary(run_dir),
        "wall_s": wall,
        "updates": updates,
        "status_steps": match and int(match[1]),
    }


def warm_precision_cache(cache: Path) -> str:
    """Measure auto precision once for the recipe's model, into ``cache`` (both runs then read it)."""
    from maskdepth.training import distributed, precision
    from maskdepth.training.loop import build_model
    from maskdepth.training.recipes import recipe_config

    os.environ["MASKDEPTH_CACHE_DIR"] = str(cache)
    cfg = recipe_config(RECIPE, out_dir=str(cache / "unused"))
    device = distributed.Context().device
    model, _ = build_model(cfg, device)
    choice = precision.choose(
        "auto", model, device, batch_size=cfg.batch_size, size=cfg.size, channels_last=cfg.channels_last
    )
    return precision.label(choice.dtype, choice.bf16_speedup)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=1.0)
    p.add_argument("--order", default="app,cli", help="which runs first")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="maskdepth-app-train-") as tmp:
        work = Path(tmp)
        chosen = warm_precision_cache(work / "cache")
        env = {**os.environ, "MASKDEPTH_CACHE_DIR": str(work / "cache"), "PYTHONPATH": str(ROOT)}
        res: dict = {"cpu": cpu_model(), "minutes": args.minutes, "precision": chosen}
        for which in args.order.split(","):
            if which in ("app", "app-child"):
                res[which] = run_app(args.minutes, work / f"{which}-runs", env, in_child=which == "app-child")
            else:
                res["cli"] = run_cli(args.minutes, work / "cli-run", env)
    print(
        f"{res['cpu']}; recipes/browser.toml for {args.minutes} min; precision {chosen}; order {args.order}"
    )
    for which in ("cli", "app", "app-child"):
        if which in res:
            r = res[which]
            print(f"  {which}: {r['steps']} steps, IoU {r['iou']:.3f}, {r['wall_s']:.0f} s wall")
            if which != "cli" and "cli" in res:
                res[f"{which}_over_cli_steps"] = r["steps"] / max(res["cli"]["steps"], 1)
                print(f"  {which}/CLI steps: {res[f'{which}_over_cli_steps']:.2f}x (target >= 0.9)")
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
