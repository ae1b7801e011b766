"""The CLI's data and training commands: ``train``, ``evaluate``, ``compare``, ``export-data``,
``make-dataset``.

Their parsers and handlers; :mod:`maskdepth.__main__` assembles the whole command line. The
commands that take training settings take them from :mod:`maskdepth.training.settings`, each only
those that mean something to it; ``train --config`` reads a recipe file first
(:mod:`maskdepth.training.recipes`), the flags given winning over it.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from maskdepth.errors import MaskDepthError
from maskdepth.training.settings import add_arguments, config_from_args

# The TrainConfig settings each command takes besides train's all. evaluate scores a saved model on
# data (its split seed, losses and batch); compare trains variants that set their own losses, parts
# and resume, in one process, into its own --out folder.
DATA = ("dataset", "backgrounds", "foregrounds", "positions", "flips", "scene_families", "two_shot")
DATA += ("wall_shadows", "black_edges", "camouflage", "relight", "handheld", "data_seed", "size")
DATA += ("test_fraction",)
LOSSES = ("mask_loss", "depth_loss", "bce_weight", "ssim_weight", "log_weight", "grad_weight")
EVALUATE_SETTINGS = (*DATA, "seed", *LOSSES, "batch_size")
NOT_COMPARE = (*LOSSES, "parts", "resume", "resume_lr", "out_dir", "sync_bn", "scale_lr")


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from maskdepth.training import precision
    from maskdepth.training.distributed import is_main
    from maskdepth.training.loop import DoneEvent, EvalEvent, StepEvent, train

    cfg = config_from_args(args)
    main = is_main()  # under torchrun only rank 0 draws progress, prints and writes the card
    bar = tqdm(
        total=1000, unit="‰", bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}", disable=not main
    )

    def on_event(event) -> None:
        if isinstance(event, StepEvent):
            bar.n = int(event.progress * 1000)
            bar.set_postfix_str(
                f"step {event.step} loss {event.loss:.3f} lr {event.lr:.1e} {event.images_per_s:.0f} img/s "
                + precision.label(event.precision, event.bf16_speedup),
                refresh=True,
            )
        elif isinstance(event, EvalEvent):
            m = event.metrics
            bar.write(
                f"eval step {event.step}: test loss {event.test_loss:.4f}  IoU {m['mask_iou']:.3f}  "
                f"Dice {m['mask_dice']:.3f}  RMSE {m['depth_rmse']:.4f}  δ<1.25 {m['depth_delta1']:.3f}"
                + ("  (best, saved)" if event.is_best else "")
            )
        elif isinstance(event, DoneEvent):
            bar.n = 1000 if event.reason == "budget" else bar.n
            bar.close()

    stop = threading.Event()
    try:  # the run's model card names this command
        result = train(cfg, on_event, stop, command="python -m maskdepth " + " ".join(args.argv))
    except KeyboardInterrupt:
        stop.set()
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        bar.close()  # an error message then starts on its own line
    if main:
        print(f"{result.message}\nrun folder: {result.run_dir}")
    return 3 if result.reason == "nan" else 0


def _advance(bar, done: int, total: int) -> None:
    """Move a tqdm bar to ``done`` of ``total`` (callbacks report absolute counts)."""
    bar.total = total
    bar.update(done - bar.n)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from maskdepth.data import build_dataset, describe_dataset, spread
    from maskdepth.data.transforms import split_dataset
    from maskdepth.hub.transfer import load_model
    from maskdepth.model.metrics import format_table
    from maskdepth.training.evaluate import evaluate

    model = load_model(args.model)
    cfg = config_from_args(args, size=args.size or model.image_size)
    dataset = build_dataset(cfg.data_settings())
    if args.split == "all":
        subset = dataset
    else:
        train_split, test_split = split_dataset(dataset, cfg.test_fraction, seed=cfg.seed)
        subset = test_split if args.split == "test" else train_split
    if args.limit:  # spread over the split: the first N samples would all show one or two scenes
        from torch.utils.data import Subset

        subset = Subset(subset, spread(list(range(len(subset))), args.limit))
    with tqdm(total=len(subset), unit="batch", desc="evaluate") as bar:
        result = evaluate(
            model,
            subset,
            loss_cfg=cfg.loss_config(),
            batch_size=args.batch_size,
            on_progress=lambda d, t: _advance(bar, d, t),
        )
    split = f"{result.n_images} images of the {args.split} split of {describe_dataset(dataset)}"
    print(f"{split}; model {args.model}")
    print(
        format_table({Path(str(args.model)).name or str(args.model): {**result.metrics, "loss": result.loss}})
    )
    if args.update_card:
        from maskdepth import fileio
        from maskdepth.training.runs import write_run_card

        folder = Path(args.model)
        if not folder.is_dir():
            raise MaskDepthError(f"--update-card needs a model folder, and {folder} is not one")
        command = "python -m maskdepth " + " ".join(args.argv)
        fileio.write_json(
            folder / "evaluation.json", {"metrics": result.metrics, "split": split, "command": command}
        )
        print(f"wrote the metrics into {write_run_card(folder)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from maskdepth.data.export import export_plain_layout, export_seed_layout
    from maskdepth.data.synthetic import SyntheticScenes

    ds = SyntheticScenes(
        args.backgrounds, args.foregrounds, args.positions, args.flips, size=args.size, seed=args.data_seed
    )
    n = min(args.n, len(ds))
    export = export_seed_layout if args.layout == "seed" else export_plain_layout
    with tqdm(total=n, unit="img", desc="export") as bar:
        out = export(ds, args.out, n, on_progress=lambda i, total: _advance(bar, i, total))
    print(f"wrote {n} samples in the {args.layout} layout to {out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from maskdepth.compare.comparison import VARIANTS, run_comparison
    from maskdepth.model.metrics import format_table
    from maskdepth.training.loop import StepEvent

    base = config_from_args(args, out_dir=args.out)
    variants = args.variants or list(VARIANTS)
    runs = len(variants) * args.seeds
    bar = tqdm(total=runs * 1000, unit="‰", bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")

    def on_event(key, event) -> None:  # key: maskdepth.compare.comparison.RunKey
        if isinstance(event, StepEvent):
            bar.n = key.index * 1000 + int(event.progress * 1000)
            where = f"run {key.index + 1}/{runs} seed {key.seed_index + 1}/{args.seeds} {key.variant}"
            bar.set_postfix_str(f"{where}: step {event.step} loss {event.loss:.3f}", refresh=True)

    try:
        result = run_comparison(
            base,
            variants,
            args.out,
            on_event=on_event,
            command="python -m maskdepth " + " ".join(args.argv),
            seeds=args.seeds,
        )
    finally:
        bar.close()  # an error message then starts on its own line
    print(format_table(result.table(), name_header="variant", mark_best=True))
    print(f"\n{result.verdict}\nresults: {Path(args.out) / 'results.json'}")
    return 0


def add_training_commands(sub, default_model: str) -> None:
    """Add train, evaluate, compare, export-data and make-dataset to the CLI's subparsers (``--model`` defaults to
    ``default_model``)."""
    _add_train(sub)
    _add_evaluate(sub, default_model)
    _add_compare(sub)
    _add_export(sub)
    _add_make_dataset(sub)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a W-Net (the loop the app uses too)")
    p.add_argument(
        "--config",
        metavar="RECIPE.toml",
        help="a recipe file (recipes/shipped.toml: the shipped weights' recipe): its settings replace the "
        "defaults, and the flags given here replace its settings",
    )
    add_arguments(p)
    p.set_defaults(func=cmd_train, command_parser=p)


def _add_evaluate(sub, default_model: str) -> None:
    p = sub.add_parser("evaluate", help="score a model on a dataset (prints the metrics table)")
    p.add_argument("--model", default=default_model, help="model folder, Hub repo id or seed checkpoint")
    add_arguments(p, only=EVALUATE_SETTINGS)
    p.add_argument(
        "--split",
        choices=("test", "train", "all"),
        default="test",
        help="test = the held-out part of the seeded split (as training used)",
    )
    p.add_argument("--limit", type=int, help="score at most this many samples")
    p.add_argument(
        "--update-card",
        action="store_true",
        help="write these metrics and this command into the model folder's card (README.md)",
    )
    p.set_defaults(func=cmd_evaluate, size=None)


def _add_export(sub) -> None:
    p = sub.add_parser("export-data", help="write N synthetic samples in the seed's (or plain) folder layout")
    p.add_argument("--out", required=True)
    p.add_argument("-n", type=int, default=1000, help="number of samples")
    p.add_argument("--layout", choices=("seed", "plain"), default="seed")
    p.add_argument("--size", type=int, default=224, help="image size (the seed's were 224x224)")
    p.add_argument("--backgrounds", type=int, default=100)
    p.add_argument("--foregrounds", type=int, default=100)
    p.add_argument("--positions", type=int, default=20)
    p.add_argument("--no-flips", dest="flips", action="store_false")
    p.add_argument("--data-seed", type=int, default=0)
    p.set_defaults(func=cmd_export)


def cmd_make_dataset(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from maskdepth.data.make_dataset import MakeSettings, make_dataset
    from maskdepth.predict.teachers import open_teacher

    settings = MakeSettings(
        backgrounds=args.backgrounds,
        objects=args.objects,
        out=args.out,
        positions=args.positions,
        depth=args.depth,
        size=args.size,
        layout=args.layout,
        seed=args.seed,
        key_border=args.key_border,
        batch_size=args.batch_size,
    )
    bars = []  # opened at the first sample, so a refused input prints its one line alone

    def on_progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit="img", desc="make-dataset"))
        _advance(bars[0], done, total)

    try:
        made = make_dataset(
            settings, lambda depth: open_teacher(depth, batch_size=args.batch_size), on_progress
        )
    finally:
        for bar in bars:
            bar.close()
    if made.written == 0:
        print(f"{made.out} is already made with these settings ({made.samples} samples): nothing to do")
        return 0
    resumed = "" if made.written == made.samples else f" ({made.written} written now, the rest before)"
    print(f"wrote {made.samples} samples in the {args.layout} layout to {made.out}{resumed}")
    if args.depth == "none":
        print(
            "masks only (no depth/): training needs depth targets, see docs/your-photos.md", file=sys.stderr
        )
    else:
        print(f"train on it: python -m maskdepth train --dataset {made.out} --out runs/my-photos")
    return 0


def _add_make_dataset(sub) -> None:
    p = sub.add_parser(
        "make-dataset",
        help="paste your cut-outs on your backgrounds the seed's way, with depth from a teacher model",
    )
    p.add_argument("--backgrounds", required=True, metavar="DIR", help="folder of background photos")
    p.add_argument(
        "--objects",
        required=True,
        metavar="DIR",
        help="folder of cut-outs: PNGs whose transparency is the outline",
    )
    p.add_argument(
        "--positions",
        type=int,
        default=20,
        help="seeded places per cut-out and background (each also mirrored)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="the dataset folder to make (new or empty)")
    p.add_argument(
        "--depth",
        default="shipped",
        metavar="SOURCE",
        help="where depth comes from: 'shipped' (this project's model, default), a W-Net folder or file or "
        "wnet:owner/name; a transformers depth model (Hub id such as depth-anything/Depth-Anything-V2-Small-hf "
        "or a save_pretrained folder; needs pip install transformers); 'none' (masks only)",
    )
    p.add_argument(
        "--size", type=int, default=224, help="side of the square images written (the seed's: 224)"
    )
    p.add_argument("--layout", choices=("plain", "seed"), default="plain", help="folder layout written")
    p.add_argument("--seed", type=int, default=0, help="seed of the places and sizes")
    p.add_argument(
        "--key-border",
        action="store_true",
        help="for cut-outs without transparency: make their uniform border colour transparent",
    )
    p.add_argument("--batch-size", type=int, default=8, help="composites per teacher batch")
    p.set_defaults(func=cmd_make_dataset)


def _add_compare(sub) -> None:
    p = sub.add_parser(
        "compare", help="train loss variants on the same data, seed and budget; write a gallery"
    )
    add_arguments(p, exclude=NOT_COMPARE)
    p.add_argument("--variants", nargs="+", help="variant names (default: all)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per variant (3+ for intervals)")
    p.add_argument("--out", default="runs/compare", help="comparison folder")
    p.set_defaults(func=cmd_compare)


def with_recipe(
    parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str]
) -> argparse.Namespace:
    """``argv`` parsed again with ``--config``'s settings as the command's defaults, so the flags given
    win over the file."""
    from maskdepth.training.recipes import load_recipe
    from maskdepth.training.settings import setting

    recipe = load_recipe(args.config)
    args.command_parser.set_defaults(**{setting(name).dest: value for name, value in recipe.items()})
    return parser.parse_args(argv)
