"""Big photos: Predictor.predict end to end against the model's forward alone, and peak memory.

    .venv/bin/python -m bench.predict_speed [--sizes 1024x768,4000x3000,6000x4000] [--repeats 3]

Each size runs in its own subprocess so its peak RSS (VmHWM) is its own: a real photo pair
(examples/checkset.py's coffee + cat, upscaled to the size and saved as JPEG quality 92) goes
through ``Predictor.predict`` from the files (decode, working size, model, guided refinement to
full size), then ``save_prediction`` (4 PNGs) is timed apart, and after them what the app's
Predict tab writes of the same prediction (``maskdepth.ui.result_files``). "forward" is the model
alone on a tensor of the same working size (padded), so the ratio says what the rest costs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Row, SectionResult, Stats, cpu_model


def _status(field: str) -> int:
    """A VmRSS / VmHWM line of /proc/self/status, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(width: int, height: int, repeats: int, work: Path) -> dict:
    """Inside the subprocess: one size, ``repeats`` predictions."""
    import torch
    from PIL import Image

    sys.path.insert(0, str(ROOT / "examples"))
    from checkset import PASTES, _backgrounds, _objects, make

    from maskdepth.predict.outputs import save_prediction
    from maskdepth.predict.predictor import Predictor
    from maskdepth.predict.refine import pad_to_multiple
    from maskdepth.ui.result_files import result_files

    bg, fg_bg, _ = make(PASTES[0], _backgrounds(), _objects())
    paths = []
    for name, img in (("bg", bg), ("fg_bg", fg_bg)):
        path = work / f"{name}-{width}x{height}.jpg"
        img.resize((width, height), Image.BICUBIC).save(path, quality=92)
        paths.append(path)
    del bg, fg_bg
    predictor = Predictor.from_source(str(ROOT / "checkpoints"))
    w, h = predictor.predict(paths[1], paths[0]).working_size  # warm-up (allocator, kernels)
    x, _ = pad_to_multiple(torch.zeros(1, 6, h, w))
    with torch.inference_mode():
        predictor.model(x)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    idle = _status("VmRSS")
    e2e, save, fwd = [], [], []
    for _ in range(repeats):  # the three take turns: each ratio is of neighbouring measurements
        t = time.perf_counter()
        pred = predictor.predict(paths[1], paths[0])
        e2e.append(time.perf_counter() - t)
        t = time.perf_counter()
        save_prediction(pred, work / "out")
        save.append(time.perf_counter() - t)
        with torch.inference_mode():
            t = time.perf_counter()
            predictor.model(x)
            fwd.append(time.perf_counter() - t)
    peak_predict = _status("VmHWM") - idle
    app_files = []
    for _ in range(repeats):  # what the app's Predict tab writes of the same prediction
        t = time.perf_counter()
        result_files(pred, work / "app", align=True)
        app_files.append(time.perf_counter() - t)
    ratios = [e / f for e, f in zip(e2e, fwd, strict=True)]
    return {
        "size": f"{width}x{height}",
        "working_size": f"{w}x{h}",
        "predict_s": statistics.median(e2e),
        "forward_s": statistics.median(fwd),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "save_s": statistics.median(save),
        "saves_s": save,
        "app_files_s": app_files,
        "idle_rss_mib": idle,
        "peak_growth_mib": peak_predict,
        "repeats": repeats,
    }


def measure_sizes(sizes: list[str], repeats: int) -> list[dict]:
    """Each ``WxH`` of ``sizes`` measured in its own subprocess (its own peak RSS)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="maskdepth-predict-speed-") as tmp:
        for size in sizes:
            cmd = [sys.executable, "-m", "bench.predict_speed", "--repeats", str(repeats)]
            out = subprocess.run([*cmd, "--child", f"{size}:{tmp}"], cwd=ROOT, capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"bench.predict_speed at {size} failed:\n{out.stderr[-2000:]}")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


TARGETS = {"1024x768": 2.0}  # predict / one forward at the working size (goal 1.5x)


def _row(metric: str, stats: Stats, unit: str, limit: float | None) -> Row:
    """A row of section 3b, with the target "median <= limit" when there is one."""
    if limit is None:
        return Row.from_stats("3b predict", metric, stats, unit)
    return Row.at_most("3b predict", metric, stats, unit, limit)


def run_predict_speed(repeats: int, sizes: tuple[str, ...] = ("1024x768", "4000x3000")) -> SectionResult:
    """bench/run.py's section: predict against one forward at 1024x768, and a 12 MP photo's files."""
    rows: list[Row] = []
    measured = measure_sizes(list(sizes), repeats)
    for r in measured:
        where = f"{r['size']} photo at {r['working_size']}"
        rows.append(Row("3b predict", f"Predictor.predict, {where}", r["predict_s"] * 1000, "ms"))
        rows.append(
            Row(
                "3b predict",
                f"one forward at {r['working_size']} (the model alone)",
                r["forward_s"] * 1000,
                "ms",
            )
        )
        big = r["size"] == "4000x3000"
        rows.append(
            _row(f"predict / forward, {r['size']}", Stats.of(r["ratios"]), "x", TARGETS.get(r["size"]))
        )
        rows.append(
            _row(f"save_prediction (4 PNGs), {r['size']}", Stats.of(r["saves_s"]), "s", 1.5 if big else None)
        )
        rows.append(
            _row(
                f"the Predict tab's files (PNGs, JPEG views, scene.ply), {r['size']}",
                Stats.of(r["app_files_s"]),
                "s",
                1.5 if big else None,
            )
        )
        rows.append(
            Row("3b predict", f"process growth while predicting, {r['size']}", r["peak_growth_mib"], "MiB")
        )
    return SectionResult(rows=rows, raw={"sizes": measured})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1024x768,4000x3000,6000x4000")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", help="write the rows as JSON here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:  # WxH:workdir
        size, work = args.child.split(":", 1)
        w, h = (int(v) for v in size.split("x"))
        print(json.dumps(measure(w, h, args.repeats, Path(work))))
        return 0
    rows = measure_sizes(args.sizes.split(","), args.repeats)
    print(
        f"{cpu_model()}\n{'photo':>10} {'works at':>9} {'predict':>8} {'forward':>8} {'ratio':>6} {'4 PNGs':>7} "
        f"{'app files':>9} {'RSS growth':>10}"
    )
    for r in rows:
        print(
            f"{r['size']:>10} {r['working_size']:>9} {r['predict_s']:>7.3f}s {r['forward_s']:>7.3f}s "
            f"{r['ratio']:>5.2f}x {r['save_s']:>6.2f}s "
            f"{statistics.median(r['app_files_s']):>8.2f}s {r['peak_growth_mib']:>7d} MiB"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
