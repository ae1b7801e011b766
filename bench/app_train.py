"""The Train tab's default run through the app's ``/train`` API against the same run through the CLI.

    .venv/bin/python -m bench.app_train [--minutes 1] [--order app,cli] [--rounds 3] [--out results.json]

"app" is the app as it ships (the loop in a child process of its own, maskdepth.training.isolated);
``--order app,app-thread,cli`` adds a run with the loop in a thread of the server
(MASKDEPTH_TRAIN_IN_CHILD=0), the way it trained before.

One run each per round, back to back, on the same settings (the Train tab's defaults, recipes/browser.toml,
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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support.net import free_port

from bench.common import ROOT, Row, SectionResult, Stats, cpu_model, verdict

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
        # The client's thread receives every streamed update, as a page does; wait on the job's end
        # (iterating the job would poll it every millisecond, CPU the training then lacks).
        job.result()
        updates = len(job.outputs())
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


RUNS = {"app", "app-thread", "cli"}  # the app as it ships (a child process), the app training in a thread


def iou_text(iou: float | None) -> str:
    """A run's best held-out IoU, or why there is none (no finite evaluation)."""
    return "no evaluation" if iou is None else f"{iou:.3f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=1.0)
    p.add_argument("--order", default="app,cli", help="the runs of a round, in order")
    p.add_argument("--rounds", type=int, default=1, help="repeat the order; ratios are per round")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    order = args.order.split(",")
    if not order or set(order) - RUNS:
        p.error(f"--order takes runs of {', '.join(sorted(RUNS))}, comma-separated; got {args.order!r}")
    res = measure(args.minutes, order, args.rounds)
    print(
        f"{res['cpu']}; recipes/browser.toml for {args.minutes} min; precision {res['precision']}; "
        f"order {args.order} x {args.rounds}"
    )
    for line in summary_lines(res):
        print("  " + line)
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    return 0


def measure(minutes: float, order: list[str], rounds: int = 1) -> dict:
    """``rounds`` rounds of the runs in ``order`` ("app", "app-thread", "cli"); per round, each app
    run's steps over the CLI's."""
    with tempfile.TemporaryDirectory(prefix="maskdepth-app-train-") as tmp:
        work = Path(tmp)
        chosen = warm_precision_cache(work / "cache")
        env = {**os.environ, "MASKDEPTH_CACHE_DIR": str(work / "cache"), "PYTHONPATH": str(ROOT)}
        res: dict = {"cpu": cpu_model(), "minutes": minutes, "precision": chosen, "rounds": []}
        for k in range(rounds):
            row: dict = {}
            for which in order:
                if which.startswith("app"):
                    runs = work / f"{which}-runs-{k}"
                    row[which] = run_app(minutes, runs, env, in_child=which == "app")
                else:
                    row["cli"] = run_cli(minutes, work / f"cli-run-{k}", env)
                done = row["cli" if which == "cli" else which]
                print(f"round {k + 1} {which}: {json.dumps(done)}", file=sys.stderr, flush=True)
            for which in list(row):
                if which != "cli" and "cli" in row:
                    row[f"{which}_over_cli_steps"] = row[which]["steps"] / max(row["cli"]["steps"], 1)
            res["rounds"].append(row)
    return res


def summary_lines(res: dict) -> list[str]:
    """Each run's steps and IoU, and per app mode the median (min-max) of its per-round step ratios."""
    lines = []
    for k, row in enumerate(res["rounds"]):
        runs = [
            f"{w} {r['steps']} steps IoU {iou_text(r['iou'])}" for w, r in row.items() if isinstance(r, dict)
        ]
        lines.append(f"round {k + 1}: " + "; ".join(runs))
    for which in ("app", "app-thread"):
        ratios = [row[f"{which}_over_cli_steps"] for row in res["rounds"] if f"{which}_over_cli_steps" in row]
        if ratios:
            lines.append(
                f"{which}/CLI steps: median {statistics.median(ratios):.2f}x "
                f"({min(ratios):.2f}-{max(ratios):.2f}, {len(ratios)} rounds; target >= 0.9)"
            )
    return lines


def run_app_train(minutes: float = 2.0, rounds: int = 1) -> SectionResult:
    """bench/run.py's section: the Train tab's default run through /train against the CLI, per round."""
    res = measure(minutes, ["app", "cli"], rounds)
    rows: list[Row] = []
    for k, row in enumerate(res["rounds"], 1):
        app, cli = row["app"], row["cli"]
        rows += [
            Row(
                "4b app train",
                f"app /train, round {k}: steps",
                app["steps"],
                note=f"{app['wall_s']:.0f} s wall",
            ),
            Row(
                "4b app train",
                f"CLI, same recipe, round {k}: steps",
                cli["steps"],
                note=f"{cli['wall_s']:.0f} s wall",
            ),
            Row(
                "4b app train",
                f"app /train, round {k}: held-out mask IoU within 180 s",
                app["iou"],
                target=">= 0.9",
                verdict=verdict(app["iou"] is not None and app["iou"] >= 0.9 and app["wall_s"] <= 180),
                note=f"CLI {iou_text(cli['iou'])}; precision {res['precision']}",
            ),
        ]
    ratios = Stats.of(row["app_over_cli_steps"] for row in res["rounds"])
    rows.append(Row.at_least("4b app train", "app steps / CLI steps (per round)", ratios, "x", 0.9))
    return SectionResult(rows=rows, raw=res)


if __name__ == "__main__":
    raise SystemExit(main())
