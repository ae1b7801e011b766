"""maskdepth benchmark: training throughput, data pipeline, inference, app cold start, quality.

    python bench/run.py [--quick] [--minutes 5 15] [--out bench/results.json] [--write-benchmarks BENCHMARKS.md]

Every comparison is measured in one run, interleaved, as a ratio with median and min-max.
Prints a table and writes every raw measurement as JSON. ``--quick`` runs tiny budgets to
check that everything works; its numbers are labelled as a smoke test, never as results.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script (python bench/run.py): make the repository importable (maskdepth, bench).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, SEED_DATA, SectionResult, machine_facts  # noqa: E402
from bench.report import render_markdown, render_text, replace_results, results_span  # noqa: E402

SECTIONS = ("throughput", "precision", "step", "data", "inference", "predict", "cold", "app_train", "quality")

# (full, quick) settings; any explicit flag wins.
PRESETS: dict[str, tuple[Any, Any]] = {
    "window_s": (20.0, 4.0),
    "precision_s": (20.0, 4.0),
    "rounds": (6, 2),
    "step_rounds": (3, 1),
    "step_steps": (2, 1),
    "data_window_s": (5.0, 1.5),
    "data_rounds": (3, 1),
    "repeats": (20, 5),
    "cold_runs": (3, 1),
    "predict_repeats": (7, 2),
    "app_minutes": (2.0, 0.2),
    "eval_n": (1000, 32),
    "export_n": (384, 64),
    "minutes": ([5.0, 15.0], [0.2]),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--quick", action="store_true", help="smoke test with tiny budgets (a few minutes); not results"
    )
    p.add_argument(
        "--minutes", type=float, nargs="+", help="quality budgets in minutes (default 5 15; --quick 0.2)"
    )
    p.add_argument(
        "--out", type=Path, help="results JSON (default bench/results.json, --quick bench/results-quick.json)"
    )
    p.add_argument(
        "--write-benchmarks",
        type=Path,
        metavar="PATH",
        help="rewrite only the results section of PATH (BENCHMARKS.md: between its results markers) from this run",
    )
    p.add_argument(
        "--write-md", type=Path, metavar="PATH", help="also write the whole report as one Markdown page"
    )
    p.add_argument(
        "--pending", action="store_true", help="with --write-md: write the 'numbers pending' page and exit"
    )
    p.add_argument(
        "--from-json", type=Path, metavar="PATH", help="render an earlier results JSON instead of measuring"
    )
    p.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    g = p.add_argument_group("budgets (defaults depend on --quick)")
    g.add_argument("--window-s", type=float, help="training throughput window per loop (20; quick 4)")
    g.add_argument(
        "--rounds",
        type=int,
        help="training throughput rounds, one window of each loop per round (6; quick 2)",
    )
    g.add_argument("--ref-batch", type=int, default=32, help="batch size of the seed-style reference loop")
    g.add_argument("--precision-s", type=float, help="interleaved fp32/bf16 training steps for (20; quick 4)")
    g.add_argument("--step-rounds", type=int, help="step-breakdown rounds (3; quick 1)")
    g.add_argument("--step-steps", type=int, help="steps per variant per round (2; quick 1)")
    g.add_argument("--data-window-s", type=float, help="data pipeline window (5; quick 1.5)")
    g.add_argument("--data-rounds", type=int, help="data pipeline rounds (3; quick 1)")
    g.add_argument("--repeats", type=int, help="inference iterations (20; quick 5)")
    g.add_argument("--cold-runs", type=int, help="cold starts of the app (3; quick 1)")
    g.add_argument("--predict-repeats", type=int, help="predictions per big-photo size (7; quick 2)")
    g.add_argument(
        "--app-minutes", type=float, help="the Train tab's run through /train and the CLI (2; quick 0.2)"
    )
    g.add_argument(
        "--eval-n", type=int, help="held-out samples scored in the quality section (1000; quick 32)"
    )
    g.add_argument(
        "--export-n", type=int, help="224x224 samples exported for the folder dataset (384; quick 64)"
    )
    g = p.add_argument_group("what to measure")
    g.add_argument(
        "--model", help="model for inference latency (default: checkpoints/ if present, else a fresh W-Net)"
    )
    g.add_argument(
        "--app", type=Path, default=ROOT / "app.py", help="the app (default: app.py at the repo root)"
    )
    g.add_argument("--app-timeout-s", type=float, default=120.0, help="give up on the app after this long")
    args = p.parse_args(argv)
    for name, (full, quick) in PRESETS.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if args.out is None:
        args.out = ROOT / "bench" / ("results-quick.json" if args.quick else "results.json")
    if args.pending and not args.write_md:
        p.error("--pending needs --write-md PATH")
    if args.write_benchmarks:  # checked now, not after an hour of measuring
        if args.quick:
            p.error("--write-benchmarks takes a full run's numbers; a --quick run's are not results")
        try:
            results_span(args.write_benchmarks.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            p.error(f"--write-benchmarks {args.write_benchmarks}: {e}")
    return args


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def export_folder_dataset(out: Path, n: int) -> Path:
    """The seed-style folder data: ``n`` synthetic samples written at 224x224 in the seed's layout."""
    from maskdepth.data.export import export_seed_layout
    from maskdepth.data.synthetic import SyntheticScenes

    return export_seed_layout(SyntheticScenes(**SEED_DATA, size=224, seed=0), out, n)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the selected sections; returns the results dict (meta, sections, rows, tables, notes)."""
    wanted = set(args.only or SECTIONS)
    start = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "command": "python bench/run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "quick": args.quick,
            "machine": machine_facts(),
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        },
        "sections": {},
    }
    m = results["meta"]["machine"]
    log(
        f"{m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), load {m['loadavg_at_start']}"
    )
    sections: dict[str, SectionResult] = {}

    with tempfile.TemporaryDirectory(prefix="maskdepth-bench-") as tmp:
        work = Path(tmp)
        export_dir = work / "seed-layout-224"
        if wanted & {"throughput", "data"}:
            log(f"exporting {args.export_n} samples at 224x224 in the seed layout ...")
            t = time.perf_counter()
            export_folder_dataset(export_dir, args.export_n)
            results["meta"]["export_s"] = time.perf_counter() - t

        if "throughput" in wanted:
            from bench.throughput import run_throughput

            log(f"1 training throughput: {args.rounds} rounds x 2 windows of {args.window_s:g} s ...")
            sections["throughput"] = run_throughput(
                export_dir,
                window_s=args.window_s,
                rounds=args.rounds,
                ref_batch=args.ref_batch,
                peak_repeats=3 if args.quick else 5,
            )
        if "precision" in wanted:
            from bench.precision import run_precision

            log(
                f"1a precision: fp32 and bf16 steps interleaved for {args.precision_s:g} s, then auto's probe ..."
            )
            sections["precision"] = run_precision(args.precision_s)
        if "step" in wanted:
            from bench.throughput import run_step_breakdown

            log(f"1b step breakdown: {args.step_rounds} rounds x {args.step_steps} steps per variant ...")
            sections["step"] = run_step_breakdown(rounds=args.step_rounds, steps_per_round=args.step_steps)
        if "data" in wanted:
            from bench.data_pipeline import data_wait_row, run_data

            log(f"2 data pipeline: {args.data_rounds} rounds of {args.data_window_s:g} s windows ...")
            sections["data"] = run_data(export_dir, window_s=args.data_window_s, rounds=args.data_rounds)
            if "throughput" in sections:
                row = data_wait_row(sections["data"], sections["throughput"])
                if row is not None:
                    sections["data"].rows.append(row)
        if "inference" in wanted:
            from bench.inference import run_inference

            log(f"3 inference: {args.repeats} iterations ...")
            (work / "infer").mkdir()
            sections["inference"] = run_inference(
                repeats=args.repeats,
                model_source=args.model,
                app_path=args.app,
                work=work / "infer",
                app_timeout_s=args.app_timeout_s,
            )
        if "predict" in wanted:
            from bench.predict_speed import run_predict_speed

            log(f"3b prediction on big photos: {args.predict_repeats} repeats at 1024x768 and 4000x3000 ...")
            sections["predict"] = run_predict_speed(args.predict_repeats)
        if "cold" in wanted:
            from bench.app_bench import run_cold_start
            from bench.inference import make_inputs

            log(f"4 cold start: {args.cold_runs} runs of python app.py ...")
            (work / "cold").mkdir()
            bg, fg = make_inputs(work / "cold")["224x224"]
            sections["cold"] = run_cold_start(
                args.app, fg, bg, runs=args.cold_runs, timeout_s=args.app_timeout_s, log_dir=work / "cold"
            )
        if "app_train" in wanted:
            from bench.app_train import run_app_train

            log(f"4b the Train tab's default run: {args.app_minutes:g} min through /train, then the CLI ...")
            sections["app_train"] = run_app_train(args.app_minutes)
        if "quality" in wanted:
            from bench.quality import run_quality

            log(
                f"5 quality: budgets {args.minutes} min, 2 recipes each, scored on {args.eval_n} held-out samples ..."
            )
            (work / "quality").mkdir()
            sections["quality"] = run_quality(
                list(args.minutes), eval_n=args.eval_n, work=work / "quality", log=log
            )

    results["meta"]["duration_s"] = time.perf_counter() - start
    results["meta"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    results["sections"] = {
        name: {"raw": s.raw, "notes": s.notes, "tables": s.tables} for name, s in sections.items()
    }
    results["rows"] = [dataclasses.asdict(r) for s in sections.values() for r in s.rows]
    results["tables"] = [t for s in sections.values() for t in s.tables]
    results["notes"] = [n for s in sections.values() for n in s.notes]
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.pending:
        args.write_md.write_text(render_markdown(None), encoding="utf-8")
        log(f"wrote the 'numbers pending' page to {args.write_md}")
        return 0
    if args.from_json:
        results = json.loads(args.from_json.read_text())
    else:
        results = measure(args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
        log(f"wrote {args.out}")
    print(render_text(results))
    if args.write_md:
        args.write_md.write_text(render_markdown(results), encoding="utf-8")
        log(f"wrote {args.write_md}")
    if args.write_benchmarks:
        page = args.write_benchmarks.read_text(encoding="utf-8")
        args.write_benchmarks.write_text(replace_results(page, results), encoding="utf-8")
        log(f"rewrote the results section of {args.write_benchmarks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
