"""bf16 autocast against fp32: training throughput and quality at the same wall-clock budget, one run.

    .venv/bin/python -m bench.precision [--minutes 5] [--eval-n 1000] [--out bench/results-precision.json]

Both trainings use the shipped recipe through the one loop (``TrainConfig.precision`` forced to
``bf16`` and to ``fp32``), each in its own subprocess, in alternating order per budget, and are
scored on the same held-out samples (bench/quality.py). Throughput here is images/s over each
run's own budget, so the two are measured on the same machine in the same run: compare them as a
ratio (the host's speed drifts 15-30% from day to day). Adoption rule (issue 12): bf16 stays the
default where the CPU has it only if its IoU and δ<1.25 are not worse than fp32's by more than 0.005.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench.quality import run_quality

TOLERANCE = 0.005


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--minutes", type=float, nargs="+", default=[5.0], help="budgets (each runs bf16 and fp32)"
    )
    p.add_argument("--eval-n", type=int, default=1000, help="held-out samples scored")
    p.add_argument("--out", help="write the raw results as JSON here")
    args = p.parse_args(argv)
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
        Path(args.out).write_text(json.dumps({"summary": summary, "raw": res.raw}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
