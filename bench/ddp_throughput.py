"""Training throughput on one machine: 1 process x 2 threads against 2 processes x 1 thread (DDP).

    python bench/ddp_throughput.py                 # ~60 s per configuration
    python bench/ddp_throughput.py --seconds 120 --per-process-batch 16 32 --out ddp.json

Every configuration runs the real training loop (``maskdepth.training.loop.train``, via the CLI's
config) on the default model (W-Net width 32, 64x64 inputs): one process with 2 threads
and batch 32, then ``torchrun --nproc_per_node=2`` with 1 thread per process and each
``--per-process-batch`` (16: the same effective batch of 32, i.e. the same optimisation;
32: the same per-process batch, an effective batch of 64). The rate is images per second
of the whole job (all processes) between the first step after warm-up and the last step,
so start-up, data-set construction and the final evaluation are left out.

A shared machine makes the comparison meaningless, so the script refuses to run while the
1-minute load average is at or above ``--max-load`` (1.0) unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARMUP_STEPS = 3  # the first steps pay for allocator growth and lazy initialisation


def _worker(args: argparse.Namespace) -> None:
    """One process of a configuration: train for ``seconds`` and (rank 0) write step times."""
    sys.path.insert(0, str(ROOT))
    from maskdepth.training import distributed
    from maskdepth.training.loop import StepEvent, TrainConfig, train

    times: list[tuple[int, float]] = []

    def on_event(event: object) -> None:
        if isinstance(event, StepEvent):
            times.append((event.step, event.elapsed_s))

    cfg = TrainConfig(
        scene_families="rooms",  # the data of the earlier measurements (bench.common.ROOM_SCENES)
        two_shot=False,
        batch_size=args.batch,
        threads=args.threads,
        minutes=args.seconds / 60,
        eval_samples=64,  # the final evaluation is outside the measured window; keep it short
        sample_every=0,
        out_dir=args.run_dir,
        # --smoke: a tiny model and data set, to check the script itself in seconds.
        **(
            {"base_width": 4, "size": 32, "backgrounds": 4, "foregrounds": 4, "positions": 4}
            if args.smoke
            else {}
        ),
    )
    world = distributed.world_size()
    train(cfg, on_event=on_event)
    if distributed.is_main():
        Path(args.result).write_text(json.dumps({"world": world, "batch": args.batch, "times": times}))


def _rate(result: dict) -> dict:
    """Images per second of the whole job over the steps after warm-up."""
    times = result["times"]
    if len(times) <= WARMUP_STEPS + 1:
        raise SystemExit(f"only {len(times)} steps: give the configuration more --seconds")
    (s0, t0), (s1, t1) = times[WARMUP_STEPS], times[-1]
    images = (s1 - s0) * result["batch"] * result["world"]
    return {
        "processes": result["world"],
        "threads_per_process": None,
        "batch_per_process": result["batch"],
        "effective_batch": result["batch"] * result["world"],
        "steps_measured": s1 - s0,
        "seconds_measured": round(t1 - t0, 2),
        "images_per_s": round(images / (t1 - t0), 2),
    }


def _run(processes: int, threads: int, batch: int, seconds: float, tmp: Path, smoke: bool) -> dict:
    """Launch one configuration (torchrun when processes > 1) and return its rate."""
    result = tmp / f"p{processes}_t{threads}_b{batch}.json"
    worker = [
        str(Path(__file__).resolve()),
        "--worker",
        f"--batch={batch}",
        f"--threads={threads}",
        f"--seconds={seconds}",
        f"--run-dir={tmp / result.stem}",
        f"--result={result}",
        *(["--smoke"] if smoke else []),
    ]
    if processes > 1:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            *worker,
        ]
    else:
        command = [sys.executable, *worker]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    print("running:", " ".join(command), f"(OMP_NUM_THREADS={threads})", flush=True)
    subprocess.run(command, env=env, check=True, cwd=ROOT)
    rate = _rate(json.loads(result.read_text()))
    rate["threads_per_process"] = threads
    return rate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="training time per configuration")
    p.add_argument(
        "--per-process-batch", type=int, nargs="+", default=[16, 32], help="DDP batch sizes per process"
    )
    p.add_argument("--batch", type=int, default=32, help="batch of the single process (and of --worker)")
    p.add_argument("--max-load", type=float, default=1.0, help="refuse to measure above this 1-minute load")
    p.add_argument("--force", action="store_true", help="measure even on a busy machine")
    p.add_argument("--out", help="also write the results as JSON here")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny model (width 4, 32x32): checks the script, measures nothing",
    )
    # Internal: one process of a configuration.
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--run-dir", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0

    load = os.getloadavg()[0]
    if load >= args.max_load and not (args.force or args.smoke):
        print(
            f"load average {load:.2f} >= {args.max_load}: another job is using the CPU, so the numbers "
            "would measure it too; try again later or pass --force",
            file=sys.stderr,
        )
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="ddp-bench-") as tmp:
        rows.append(_run(1, 2, args.batch, args.seconds, Path(tmp), args.smoke))
        for batch in args.per_process_batch:
            rows.append(_run(2, 1, batch, args.seconds, Path(tmp), args.smoke))
    base = rows[0]["images_per_s"]
    model = (
        "SMOKE TEST, tiny model (width 4, 32x32)" if args.smoke else "default model (W-Net width 32, 64x64)"
    )
    print(f"\nload average before: {load:.2f}; {model}, {args.seconds:.0f} s each\n")
    print("| processes x threads | batch / process | effective batch | img/s | vs 1x2 |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['processes']} x {r['threads_per_process']} | {r['batch_per_process']} | {r['effective_batch']} "
            f"| {r['images_per_s']:.1f} | {r['images_per_s'] / base:.2f} |"
        )
    if args.out:
        Path(args.out).write_text(
            json.dumps({"load_before": load, "seconds": args.seconds, "rows": rows}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
