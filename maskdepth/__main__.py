"""The command line: ``python -m maskdepth {train,evaluate,predict,export-onnx,export-data,compare,push,publish-space,pull}``.

Every command is a thin layer over the library; errors a user can cause print one line
that names the fix and exit with status 2. The data and training commands (train, evaluate,
compare, export-data) live in :mod:`maskdepth.train_cli`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maskdepth.errors import MaskDepthError
from maskdepth.hub.checkpoint import SHIPPED_DIR, shipped_source
from maskdepth.naming import IMAGE_SUFFIXES, is_image_name, pair_by_name
from maskdepth.predict.cloud import DEFAULT_FOV_DEG, SCENE_PLY, check_fov
from maskdepth.predict.predictor import DEFAULT_RESOLUTION, RESOLUTIONS, Prediction
from maskdepth.train_cli import add_training_commands, with_recipe

DEFAULT_MODEL = shipped_source()  # checkpoints/ when present, else the weights' Hub repo


def cmd_save(args: argparse.Namespace) -> int:
    from maskdepth.hub.card import card_info
    from maskdepth.hub.transfer import load_model, save_model

    source = Path(args.model)
    card = card_info(source) if source.is_dir() else {}
    save_model(load_model(args.model), args.out, card=card, fp16=args.fp16)
    if source.is_dir():  # carry the run's records so the card can be rebuilt later
        from maskdepth import fileio
        from maskdepth.fileio import read_json

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


def _cloud_options(args: argparse.Namespace) -> dict | None:
    """predict's point-cloud options (``--fov`` and ``--object-only`` imply ``--ply``), checked before the
    model loads; None without them."""
    if not (args.ply or args.fov is not None or args.object_only):
        return None
    return {
        "fov_deg": check_fov(DEFAULT_FOV_DEG if args.fov is None else args.fov),
        "object_only": args.object_only,
    }


def _write_cloud(pred: Prediction, path: Path, name: str, *, fov_deg: float, object_only: bool) -> Path:
    """The prediction's point cloud as a binary PLY at ``path`` (the object tinted and marked)."""
    from maskdepth.predict.cloud import point_cloud, write_ply

    cloud = point_cloud(pred, fov_deg=fov_deg, object_only=object_only)
    if object_only and len(cloud) == 0:
        print(
            f"note ({name}): no point is the object's (the mask found none): {path.name} is empty",
            file=sys.stderr,
        )
    return write_ply(cloud, path)


def cmd_predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from maskdepth.predict.outputs import save_prediction
    from maskdepth.predict.predictor import Predictor, depth_source
    from maskdepth.predict.views import parse_depth_view

    depth_view = parse_depth_view(args.depth_view)  # a bad value fails before the model loads
    cloud = _cloud_options(args)
    predictor = Predictor.from_source(args.model, resolution=args.resolution)
    predictor.depth_view = depth_view
    predictor.align = args.align == "on"
    jobs = _pairs(args)
    for image, bg, out in tqdm(jobs, unit="img", desc="predict", disable=len(jobs) < 2):
        pred = predictor.predict(image, bg)
        for note in pred.notes:
            print(f"note ({image.name}): {note}", file=sys.stderr)
        written = save_prediction(pred, out)
        if cloud is not None:
            written[SCENE_PLY] = _write_cloud(pred, out / SCENE_PLY, image.name, **cloud)
        if len(jobs) == 1:
            w, h = pred.image.size
            source = depth_source(pred)
            if pred.alignment is not None:
                print(f"alignment: {pred.alignment.describe()}", file=sys.stderr)
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


def _add_cloud_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ply",
        action="store_true",
        help=f"also write {SCENE_PLY}: the depth as a coloured point cloud in metres (binary PLY; vertex x, y, "
        "z, red, green, blue and object, 1 for the object's points, which are tinted), z towards the viewer",
    )
    p.add_argument(
        "--fov",
        type=float,
        metavar="DEGREES",
        help=f"the camera's horizontal field of view for the point cloud (default: {DEFAULT_FOV_DEG:g}; "
        "implies --ply)",
    )
    p.add_argument(
        "--object-only", action="store_true", help="the point cloud holds the object alone (implies --ply)"
    )


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from maskdepth.hub.checkpoint import load_model
    from maskdepth.hub.onnx_export import SIZE_MULTIPLE, export_onnx, input_contract

    model = load_model(args.model, device="cpu")
    out = export_onnx(model, args.out, opset=args.opset)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    print(
        f"{input_contract(model)['maskdepth.input']}; H, W multiples of {SIZE_MULTIPLE}; outputs mask, depth "
        "(B, 1, H, W) logits; running it: docs/onnx.md"
    )
    return 0


def _add_export_onnx(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-onnx", help="write a model as one ONNX file for onnxruntime (network only; see docs/onnx.md)"
    )
    p.add_argument(
        "--model", default=DEFAULT_MODEL, help="model folder, run folder, Hub repo id or seed checkpoint"
    )
    p.add_argument(
        "--out", required=True, metavar="FILE.onnx", help="the file to write (replaced atomically)"
    )
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    p.set_defaults(func=cmd_export_onnx)


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

    add_training_commands(sub, DEFAULT_MODEL)

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
    p.add_argument(
        "--align",
        choices=("on", "off"),
        default="on",
        help="register the background onto the composite first (on, the default: two handheld shots may be "
        "turned, moved and zoomed a little and differ in exposure; an exact paste is left as it is); off: "
        "use the pair as given",
    )
    _add_cloud_options(p)
    p.set_defaults(func=cmd_predict)
    _add_export_onnx(sub)

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
    parser = build_parser()
    args = parser.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if getattr(args, "config", None):  # train --config: the recipe's settings, then the flags given
            args = with_recipe(parser, args, argv)
        args.argv = argv  # recorded in model cards as the command
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
