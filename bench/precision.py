"""bf16 autocast against fp32: step throughput, what ``--precision auto`` picks, and quality.

    .venv/bin/python -m bench.precision [--seconds 20] [--recipe browser] [--minutes 5] [--eval-n 1000]

Throughput (always): full training steps (forward, losses, backward, AdamW) of the recipe's
model at its batch and size, fp32 and bf16 interleaved one step at a time for ``--seconds``,
on the CPU named in the output; then what auto picks there (its own short probe, run fresh in a
temporary cache dir) and whether that is the faster of the two (within 5%).
Images/s is the batch over the median step; read the ratio, not the absolute numbers (the host's
speed drifts, and the cores may be shared).

Quality (with ``--minutes``): both trainings use the shipped recipe through the one loop
(``TrainConfig.precision`` forced to ``bf16`` and to ``fp32``), each in its own subprocess, in
alternating order per budget, scored on the same held-out samples (bench/quality.py). bf16 is
worth adopting only if its IoU and δ<1.25 are not worse than fp32's by more than 0.005.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.common import Row, SectionResult, cpu_model, verdict

TOLERANCE = 0.005


def step_throughput(recipe: str, seconds: float) -> dict:
    """fp32 and bf16 training steps of ``recipe``'s model, interleaved; images/s of each, the ratio,
    and what auto's probe picks (fresh, in a temporary cache dir)."""
    from maskdepth.training import distributed, precision
    from maskdepth.training.loop import build_model, train_step
    from maskdepth.training.recipes import recipe_config, recipe_path
    from maskdepth.training.schedule import make_optimizer

    cfg = recipe_config(recipe_path(recipe), out_dir=tempfile.gettempdir())
    ddp = distributed.Context()
    model, _ = build_model(cfg, ddp.device)
    optimizer = make_optimizer(cfg, model)
    g = torch.Generator().manual_seed(0)
    shape = (cfg.batch_size, 3, cfg.size, cfg.size)
    batch = {
        "bg": torch.rand(shape, generator=g),
        "fg_bg": torch.rand(shape, generator=g),
        "mask": (torch.rand((cfg.batch_size, 1, cfg.size, cfg.size), generator=g) > 0.5).float(),
        "depth": torch.rand((cfg.batch_size, 1, cfg.size, cfg.size), generator=g),
    }
    if cfg.channels_last:
        batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
    loss_cfg = cfg.loss_config()

    def step(dtype: str) -> float:
        t0 = time.perf_counter()
        train_step(model, batch, model.in_channels, loss_cfg, optimizer, ddp, dtype)
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    step("fp32"), step("bf16")  # warm-up
    start, r = time.perf_counter(), 0
    while time.perf_counter() - start < seconds or r < 4:
        for dtype in ("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32"):
            times[dtype].append(step(dtype))
        r += 1
    img_s = {d: cfg.batch_size / statistics.median(t) for d, t in times.items()}
    with tempfile.TemporaryDirectory(prefix="maskdepth-cache-") as cache:
        before = os.environ.get("MASKDEPTH_CACHE_DIR")
        os.environ["MASKDEPTH_CACHE_DIR"] = cache
        try:
            t0 = time.perf_counter()
            auto = precision.choose(
                "auto",
                model,
                ddp.device,
                batch_size=cfg.batch_size,
                size=cfg.size,
                channels_last=cfg.channels_last,
            )
            probe_s = time.perf_counter() - t0
        finally:
            if before is None:
                del os.environ["MASKDEPTH_CACHE_DIR"]
            else:
                os.environ["MASKDEPTH_CACHE_DIR"] = before
    ratio = img_s["bf16"] / img_s["fp32"]
    faster = "bf16" if ratio > 1 else "fp32"
    return {
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "recipe": recipe,
        "base_width": cfg.base_width,
        "batch_size": cfg.batch_size,
        "size": cfg.size,
        "rounds": r,
        "img_s": img_s,
        "bf16_over_fp32": ratio,
        "auto_picks": auto.dtype,
        "auto_probe_bf16_speedup": auto.bf16_speedup,
        "auto_probe_s": probe_s,
        # Right if it picked the faster one, or the two are within the 5% margin.
        "auto_right": auto.dtype == faster or abs(ratio - 1) <= precision.BF16_MARGIN - 1,
    }


def run_precision(seconds: float, recipe: str = "browser") -> SectionResult:
    """bench/run.py's section: the bf16/fp32 step-throughput ratio and whether auto picks the faster."""
    speed = step_throughput(recipe, seconds)
    where = f"{speed['cpu']}, recipe {recipe}: width {speed['base_width']}, batch {speed['batch_size']}, {speed['size']} px"
    rows = [
        Row("precision", "bf16 / fp32 training-step throughput", speed["bf16_over_fp32"], "x", note=where),
        Row(
            "precision",
            f"--precision auto picks the faster (it picked {speed['auto_picks']}, "
            f"its probe {speed['auto_probe_bf16_speedup']:.2f}x in {speed['auto_probe_s']:.1f} s)",
            None,
            target="faster of the two, within 5%",
            verdict=verdict(speed["auto_right"]),
        ),
    ]
    return SectionResult(rows=rows, raw=speed)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0, help="of interleaved fp32/bf16 steps")
    p.add_argument("--recipe", default="browser", help="recipe whose model, batch and size are timed")
    p.add_argument("--minutes", type=float, nargs="+", help="quality budgets (each trains bf16 and fp32)")
    p.add_argument("--eval-n", type=int, default=1000, help="held-out samples scored")
    p.add_argument("--out", help="write the raw results as JSON here")
    args = p.parse_args(argv)
    speed = step_throughput(args.recipe, args.seconds)
    print(
        f"{speed['cpu']}, {speed['torch_threads']} torch threads; recipe {speed['recipe']} "
        f"(width {speed['base_width']}, batch {speed['batch_size']}, {speed['size']} px), {speed['rounds']} rounds:\n"
        f"  fp32 {speed['img_s']['fp32']:.0f} img/s, bf16 {speed['img_s']['bf16']:.0f} img/s: "
        f"bf16/fp32 {speed['bf16_over_fp32']:.2f}x\n"
        f"  auto picks {speed['auto_picks']} (its probe: bf16 {speed['auto_probe_bf16_speedup']:.2f}x fp32 "
        f"in {speed['auto_probe_s']:.1f} s) -> " + ("right" if speed["auto_right"] else "WRONG")
    )
    if not args.minutes:
        if args.out:
            Path(args.out).write_text(json.dumps({"throughput": speed}, indent=2) + "\n")
        return 0
    from bench.quality import run_quality

    with tempfile.TemporaryDirectory(prefix="maskdepth-precision-") as tmp:
        res = run_quality(args.minutes, eval_n=args.eval_n, work=Path(tmp), recipes=("bf16", "fp32"))
    for table in res.tables:
        print(table["title"])
        print(" | ".join(table["headers"]))
        for row in table["rows"]:
            print(" | ".join(row))
    summary = []
    for minutes, by in res.raw["runs"].items():
        if {"bf16", "fp32"} <= set(by):
            b, f = by["bf16"], by["fp32"]
            d_iou = b["metrics"]["mask_iou"] - f["metrics"]["mask_iou"]
            d_delta = b["metrics"]["depth_delta1"] - f["metrics"]["depth_delta1"]
            ok = d_iou >= -TOLERANCE and d_delta >= -TOLERANCE
            line = {
                "minutes": minutes,
                "throughput_ratio": b["img_s"] / f["img_s"],
                "steps": {"bf16": b["steps"], "fp32": f["steps"]},
                "iou_diff": d_iou,
                "delta1_diff": d_delta,
                "adopt_bf16": ok,
            }
            summary.append(line)
            print(
                f"{minutes} min: bf16/fp32 throughput {line['throughput_ratio']:.2f}x; "
                f"IoU {d_iou:+.4f}, δ<1.25 {d_delta:+.4f} (bf16 - fp32) -> "
                + ("bf16 not worse: adopt" if ok else "bf16 worse: keep fp32")
            )
    for note in res.notes:
        print("note:", note)
    if args.out:
        Path(args.out).write_text(
            json.dumps({"throughput": speed, "summary": summary, "raw": res.raw}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
