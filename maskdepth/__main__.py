"""The command line: ``python -m maskdepth {train,evaluate,predict,export-data,compare,push,publish-space,pull}``.

Every command is a thin layer over the library; errors a user can cause print one line
that names the fix and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from maskdepth.errors import MaskDepthError
from maskdepth.hub.checkpoint import SHIPPED_DIR, shipped_source
from maskdepth.naming import IMAGE_SUFFIXES, is_image_name, pair_by_name
from maskdepth.predict.predictor import DEFAULT_RESOLUTION, RESOLUTIONS
from maskdepth.training.config import config_from_args

DEFAULT_MODEL = shipped_source()  # checkpoints/ when present, else the weights' Hub repo


def add_train_args(p: argparse.ArgumentParser, *, run_folder: bool = False) -> None:
    """The TrainConfig flags (maskdepth.training.config); ``run_folder``: also --out, --resume, --resume-lr."""
    from maskdepth.training.config import add_arguments

    add_arguments(p, exclude=() if run_folder else ("out_dir", "resume", "resume_lr"))


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

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
                f"step {event.step} loss {event.loss:.3f} lr {event.lr:.1e} {event.images_per_s:.0f} img/s",
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
    dataset = build_dataset(cfg)
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


def cmd_save(args: argparse.Namespace) -> int:
    from maskdepth.hub.transfer import load_model, save_model
    from maskdepth.training.runs import card_info

    source = Path(args.model)
    card = card_info(source) if source.is_dir() else {}
    save_model(load_model(args.model), args.out, card=card, fp16=args.fp16)
    if source.is_dir():  # carry the run's records so the card can be rebuilt later
        from maskdepth import fileio
        from maskdepth.training.runs import read_json

        for name in ("metrics.json", "train_config.json", "card.json"):
            if (source / name).is_file():
                fileio.write_json(Path(args.out) / name, read_json(source / name))
    print(f"saved {args.model} to {args.out}" + (" (float16 weights)" if args.fp16 else ""))
    return 0


def _pairs(args: argparse.Namespace) -> list[tuple[Path, Path | None, Path]]:
    """(image, bg, out_dir) jobs: one image, or every image in a folder (bg may be a matching folder)."""
    image, bg, out = Path(args.image), Path(args.bg) if args.bg else None, Path(args.out)
    if not image.exists():
        raise MaskDepthError(f"--image {image} does not exist: give a composite image or a folder of them")
    if image.is_file():
        return [(image, bg, out)]
    files = sorted(p for p in image.iterdir() if is_image_name(p.name) and p.is_file())
    if not files:
        raise MaskDepthError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {image}: check the folder")
    if bg is not None and bg.is_dir():
        bg_files = sorted(p for p in bg.iterdir() if is_image_name(p.name) and p.is_file())
        pairs = pair_by_name(files, bg_files, fix=f"name bg files in {bg} like their composites")
    else:
        pairs = [(f, bg) for f in files]  # one background for every composite, or none
    return [(f, b, out / f.stem) for f, b in pairs]


def cmd_predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from maskdepth.predict.predictor import Predictor, depth_source, parse_depth_view, save_prediction

    depth_view = parse_depth_view(args.depth_view)  # a bad value fails before the model loads
    predictor = Predictor.from_source(args.model, resolution=args.resolution)
    predictor.depth_view = depth_view
    jobs = _pairs(args)
    for image, bg, out in tqdm(jobs, unit="img", desc="predict", disable=len(jobs) < 2):
        pred = predictor.predict(image, bg)
        for note in pred.notes:
            print(f"note ({image.name}): {note}", file=sys.stderr)
        written = save_prediction(pred, out)
        if len(jobs) == 1:
            w, h = pred.image.size
            source = depth_source(pred)
            print(
                f"model ran at {pred.working_size[0]}x{pred.working_size[1]}"
                + (f" ({source})" if source else "")
                + f"; outputs at {w}x{h}",
                file=sys.stderr,
            )
            for path in written.values():
                print(path)
    if len(jobs) > 1:
        print(f"wrote {len(jobs)} folders under {args.out}")
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


def cmd_push(args: argparse.Namespace) -> int:
    from maskdepth.hub.transfer import push_to_hub

    url = push_to_hub(args.model, args.repo_id, private=args.private)
    print(f"pushed {args.model} to {url}")
    return 0


def cmd_publish_space(args: argparse.Namespace) -> int:
    from maskdepth.hub.transfer import publish_space, push_to_hub

    if args.model_repo:
        print(f"pushed {args.model} to {push_to_hub(args.model, args.model_repo, private=args.private)}")
    published = publish_space(args.space_id, args.app_folder, private=args.private)
    print(f"uploaded {len(published.files)} files to {published.url}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from maskdepth.hub.transfer import pull

    path = pull(args.repo_id, args.out, revision=args.revision)
    print(f"downloaded {args.repo_id} to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m maskdepth", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a W-Net (the loop the app uses too)")
    add_train_args(p, run_folder=True)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a model on a dataset (prints the metrics table)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="model folder, Hub repo id or seed checkpoint")
    add_train_args(p)
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

    p = sub.add_parser(
        "save", help="copy a run's best weights into a model folder (e.g. checkpoints/), with its card"
    )
    p.add_argument("model", help="run folder, model folder, Hub id or seed checkpoint")
    p.add_argument("--out", required=True, help="destination model folder")
    p.add_argument("--fp16", action="store_true", help="store the weights as float16 (half the size)")
    p.set_defaults(func=cmd_save)

    p = sub.add_parser("predict", help="mask.png, depth.png, depth16.png, depth_color.png for an image pair")
    p.add_argument("--model", default=DEFAULT_MODEL, help="model folder, Hub repo id or seed checkpoint")
    p.add_argument(
        "--bg",
        help="background image (or folder of them named like the composites); omit for a 3-channel model",
    )
    p.add_argument("--image", required=True, help="composite image (fg_bg), or a folder of them")
    p.add_argument("--out", required=True, help="output folder (one subfolder per image in batch mode)")
    p.add_argument(
        "--resolution",
        default=DEFAULT_RESOLUTION,
        help=f"working resolution, the long side the model runs at: {', '.join(f'{k} ({v} px)' for k, v in RESOLUTIONS.items())} "
        f"or a number of pixels (default: {DEFAULT_RESOLUTION}); outputs are always at the input's size",
    )
    p.add_argument(
        "--depth-view",
        default="ensemble",
        help="where the depth comes from: 'ensemble' (default; whole-scene views across the sizes the model "
        "trained at, each also mirrored), a number of pixels (one view of that long side: about twice as "
        "fast) or 'none' (the working-size forward)",
    )
    p.set_defaults(func=cmd_predict)

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

    p = sub.add_parser(
        "compare", help="train loss variants on the same data, seed and budget; write a gallery"
    )
    add_train_args(p)
    p.add_argument("--variants", nargs="+", help="variant names (default: all)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per variant (3+ for intervals)")
    p.add_argument("--out", default="runs/compare", help="comparison folder")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "push", help="upload a model folder to a Hub repo (token from HF_TOKEN or hf auth login)"
    )
    p.add_argument("model", help="a run or model folder")
    p.add_argument("repo_id", help="owner/name")
    p.add_argument("--private", action="store_true")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser(
        "publish-space",
        help="upload the app to a Gradio Space (ZeroGPU-ready) and, with --model-repo, the weights to a model repo",
    )
    p.add_argument("space_id", help="owner/name of the Space (created if missing)")
    p.add_argument("--model-repo", help="also push --model to this model repo (owner/name) first")
    p.add_argument("--model", default=str(SHIPPED_DIR), help="the model folder to push with --model-repo")
    p.add_argument("--app-folder", default=str(SHIPPED_DIR.parent), help="the folder holding app.py")
    p.add_argument("--private", action="store_true")
    p.set_defaults(func=cmd_publish_space)

    p = sub.add_parser("pull", help="download a model from a Hub repo into a folder")
    p.add_argument("repo_id")
    p.add_argument("--out", required=True)
    p.add_argument("--revision")
    p.set_defaults(func=cmd_pull)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in model cards as the command
    try:
        return args.func(args)
    except MaskDepthError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file where a folder should be, no permission, a full disk: the user's to fix
        where = f" ({e.filename})" if e.filename else ""
        print(
            f"error: {e.strerror or e}{where}: check the paths given and the free disk space", file=sys.stderr
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
