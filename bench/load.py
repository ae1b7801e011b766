"""Load: N clients x M predictions against the launched app while a training runs in it.

    python -m bench.load                          # 8 clients x 20 requests; refuses on a busy machine
    python -m bench.load --clients 4 --requests 5 --force

The app (``app.build_demo``) runs in a child process with temporary folders and a W-Net of the
seed's width: the shipped ``checkpoints/`` if installed, else an untrained one (latency does not
depend on the weights). A small training is started through the app's ``/train`` endpoint; once
it is stepping, every client (a thread with its own ``gradio_client.Client``) sends its
predictions one after another. Printed: latency p50 / p95 / max, throughput, failures, and the
training steps done during the flood (the training must keep going). Nothing is written to the repo.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from support.net import build_app, free_port, training_step

ROOT = Path(__file__).resolve().parents[1]
MAX_LOAD = 2.0  # the 1-minute load average above which the numbers would measure someone else's work
EXAMPLE = ("synthetic_1_bg.png", "synthetic_1_fg_bg.png")


def train_controls() -> dict[str, Any]:
    """The Train tab's controls: the shipped recipe (TrainConfig's defaults) for a seed-width W-Net on
    small synthetic scenes, for an hour at most."""
    from maskdepth.training.config import TrainConfig

    d = TrainConfig(steps=1)
    recipe = ("mask_loss", "depth_loss", "optimizer", "lr", "scheduler", "size", "base_width", "in_channels")
    return {
        **{name: getattr(d, name) for name in recipe},
        "dataset_kind": "synthetic",
        "backgrounds": 10,
        "foregrounds": 10,
        "positions": 5,
        "zip_file": None,
        "folder": "",
        "batch_size": 16,
        "budget_kind": "minutes",
        "budget": 60,
        "resume_lr": d.resume_lr,
        "eval_every": 0,
        "eval_samples": 64,
        "sample_every": 0,
        "run_name": "load-bench",
    }


@dataclass
class Flood:
    """What the clients saw."""

    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    steps_before: int = 0
    steps_after: int = 0


def serve(checkpoints: Path, root: Path, port: int) -> None:
    """The child process: build the app on these folders and serve it until killed."""
    demo = build_app(checkpoints, root)  # the repo's app.py, imported by path
    demo.launch(server_name="127.0.0.1", server_port=port, quiet=True)


def model_folder(root: Path) -> Path:
    """The shipped model if installed, else an untrained W-Net of the seed's width saved under ``root``."""
    from maskdepth.hub.transfer import save_model
    from maskdepth.model.wnet import WNet
    from maskdepth.training.runs import is_model_dir

    if is_model_dir(ROOT / "checkpoints"):
        return ROOT / "checkpoints"
    return save_model(WNet(in_channels=6, base_width=32, image_size=64), root / "checkpoints")


def wait_until_up(url: str, proc: subprocess.Popen, timeout_s: float = 120.0) -> None:
    """Poll ``url`` until the app answers (or the child dies, or ``timeout_s`` passes)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise RuntimeError(f"the app did not answer at {url} within {timeout_s:.0f} s")


def flood(url: str, clients: int, requests: int, bg: Path, fg: Path, train_job: Any) -> Flood:
    """``clients`` threads, each sending ``requests`` predictions in turn; returns the latencies."""
    from gradio_client import Client, handle_file

    result = Flood(steps_before=training_step(train_job))
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)

    def one_client() -> None:
        client = Client(url, verbose=False)
        ready.wait()
        for _ in range(requests):
            start = time.perf_counter()
            try:
                client.predict(handle_file(str(bg)), handle_file(str(fg)), api_name="/predict")
            except Exception as err:  # noqa: BLE001 - a failed request is a result, counted below
                with lock:
                    result.errors.append(f"{type(err).__name__}: {str(err)[:200]}")
                continue
            with lock:
                result.latencies_s.append(time.perf_counter() - start)

    threads = [threading.Thread(target=one_client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    ready.wait()  # clients are connected: the clock starts with the first request
    start = time.perf_counter()
    for t in threads:
        t.join()
    result.wall_s = time.perf_counter() - start
    time.sleep(1.0)  # one more progress render of the training
    result.steps_after = training_step(train_job)
    return result


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linear between ranks."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def report(result: Flood, clients: int, requests: int) -> str:
    total = clients * requests
    lines = [
        f"load: {clients} clients x {requests} predictions while a training runs ({os.cpu_count()} CPUs)"
    ]
    if result.latencies_s:
        lat = result.latencies_s
        lines += [
            f"  latency p50 {percentile(lat, 50):.3f} s   p95 {percentile(lat, 95):.3f} s   max {max(lat):.3f} s",
            f"  throughput {len(lat) / result.wall_s:.2f} predictions/s over {result.wall_s:.1f} s",
        ]
    lines.append(f"  succeeded {len(result.latencies_s)}/{total}, failed {len(result.errors)}")
    lines += [f"    {e}" for e in sorted(set(result.errors))[:5]]
    steps = result.steps_after - result.steps_before
    lines.append(
        f"  training steps during the flood: {steps} ({result.steps_before} -> {result.steps_after})"
        + ("" if steps > 0 else "  <- the training did not advance")
    )
    return "\n".join(lines)


def run(clients: int, requests: int) -> int:
    """Start the app, a training in it, flood it, print the figures; 0 if every request succeeded."""
    from gradio_client import Client

    root = Path(tempfile.mkdtemp(prefix="maskdepth-load-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    checkpoints = model_folder(root)
    cmd = [sys.executable, "-m", "bench.load", "--serve", str(checkpoints), str(root), str(port)]
    log = root / "app.log"  # a file, not a pipe: nobody reads a pipe here, and a full one blocks the app
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_up(url, proc)
        trainer = Client(url, verbose=False)
        job = trainer.submit(**train_controls(), api_name="/train")
        deadline = time.monotonic() + 120
        while training_step(job) < 1:
            if time.monotonic() > deadline or job.done():
                raise RuntimeError("the training did not start stepping within 120 s")
            time.sleep(0.2)
        bg, fg = (ROOT / "examples" / name for name in EXAMPLE)
        result = flood(url, clients, requests, bg, fg, job)
        trainer.predict(api_name="/stop_training")
        print(report(result, clients, requests))
        return 0 if not result.errors and result.steps_after > result.steps_before else 1
    except RuntimeError:
        print(f"the app's log ends with:\n{log.read_text()[-2000:]}", file=sys.stderr)
        raise
    finally:
        proc.terminate()  # the child this function started, by its handle
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=20, help="predictions per client")
    parser.add_argument("--force", action="store_true", help=f"run even if the load average is >= {MAX_LOAD}")
    parser.add_argument("--serve", nargs=3, metavar=("CHECKPOINTS", "ROOT", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(Path(args.serve[0]), Path(args.serve[1]), int(args.serve[2]))
        return 0
    load = os.getloadavg()[0]
    if load >= MAX_LOAD and not args.force:
        print(
            f"pending: the machine is busy (1-minute load {load:.2f} >= {MAX_LOAD}); the figures would measure "
            "other work. Run `python -m bench.load` on a quiet machine (or add --force)."
        )
        return 3
    return run(args.clients, args.requests)


if __name__ == "__main__":
    sys.exit(main())
