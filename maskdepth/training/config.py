"""The training settings, in one place: :class:`TrainConfig`, its fields and their metadata.

The CLI (``python -m maskdepth train``/``compare``/``evaluate``), the app's Train tab, the recipe
files (``recipes/*.toml``) and the commands written into model cards are all built from this
class, so a setting's name, help text, default and choices are stated once.
:mod:`maskdepth.training.settings` turns the fields into CLI flags and Train-tab controls.

``TrainConfig`` is saved as ``train_config.json``; ``to_dict`` / ``from_dict`` / ``loss_config`` /
``data_settings``. Each field carries its metadata (the keys of
:class:`maskdepth.training.settings.Setting`): ``group`` (argparse group title, one of
:data:`GROUPS`), ``help``, ``flag`` / ``dest`` where the CLI names it otherwise, ``choices``,
``minimum`` / ``maximum``, ``label`` / ``step`` / ``ui`` for the Train tab, ``cli=False`` to keep it
off the command line.

The defaults are the shipped model's data and losses: the full scene mix as two shots with its
effects, mask loss ``bce+dice``, depth loss ``bce+log+grad`` (:class:`maskdepth.model.losses.LossConfig`
has the same default). The shipped run's scale, learning rate and budget (400,000 samples at
96..160 px, lr 2e-4 from the model before it, 80 minutes) are ``recipes/shipped.toml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from maskdepth.errors import TrainingError
from maskdepth.model.losses import LossConfig

if TYPE_CHECKING:
    from maskdepth.data import DataSettings

OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("onecycle", "plateau", "step", "none")
PRECISIONS = ("auto", "bf16", "fp32")
# "rooms": the seed-like room scenes; the others: maskdepth.data.families.MIXES (a test keeps them
# equal; config does not import the data package, which would add scipy to every CLI start).
SCENE_MIXES = ("all", "indoor", "outdoor", "rooms", "heldout")
# The two-shot effects' shares, as TrainConfig names them -> maskdepth.data.twoshot.TwoShot's fields.
TWO_SHOT_SHARES = {
    "wall_shadows": "wall_shadow_p",
    "black_edges": "black_edge_p",
    "camouflage": "camouflage_p",
    "relight": "relight_p",
    "handheld": "handheld_p",
}

# argparse group title -> description (None: no description), in CLI order.
GROUPS: dict[str, str | None] = {
    "data": None,
    "model": None,
    "losses": None,
    "optimisation": None,
    "budget": "the run ends at the first limit reached; with none given, it trains for 1 epoch",
    "evaluation and run": None,
    "run folder": None,
    "distributed (torchrun)": (
        "`torchrun --nproc_per_node=N -m maskdepth train ...` trains N processes with DistributedDataParallel "
        "(gloo on CPUs, nccl on GPUs; several machines: --nnodes, --node_rank, --rdzv_backend c10d, "
        "--rdzv_endpoint host:port). --batch-size is per process, so the effective batch is N x batch-size. "
        "The learning rate is NOT scaled automatically: --scale-lr applies the linear scaling rule, lr x N. "
        "Only rank 0 logs and writes the run folder. See docs/scaling.md."
    ),
}


def _opt(default: Any, group: str, help: str = "", **meta: Any) -> Any:
    """A TrainConfig field with its metadata (the keys of :class:`Setting`)."""
    return field(default=default, metadata={"group": group, "help": help, **meta})


@dataclass
class TrainConfig:
    """Everything a run needs; saved as train_config.json so a run can be reproduced."""

    dataset: str = _opt(
        "synthetic",
        "data",
        "'synthetic' (embedded generator) or a folder in the seed's or plain layout",
        ui=True,
        label="Dataset",
    )
    backgrounds: int = _opt(
        20, "data", "synthetic: number of rooms", minimum=1, maximum=100, ui=True, label="backgrounds (rooms)"
    )
    foregrounds: int = _opt(
        20,
        "data",
        "synthetic: number of objects",
        minimum=1,
        maximum=100,
        ui=True,
        label="foregrounds (objects)",
    )
    positions: int = _opt(
        20,
        "data",
        "synthetic: positions per (room, object)",
        minimum=1,
        maximum=20,
        ui=True,
        label="positions per (room, object)",
    )
    flips: bool = _opt(True, "data", "synthetic: each placement also flipped left-right (the seed's recipe)")
    scene_families: str = _opt(
        "all",
        "data",
        "synthetic: all = the full mix (rooms, corridors, wall scenes, shelving racks, outdoor and tabletop "
        "scenes); indoor = its room-scale part (rooms, corridors, wall scenes, racks); outdoor = open ground "
        "under a sky; rooms = room scenes only, one object each (the seed's kind of data); heldout = street "
        "scenes, kept for evaluation",
        choices=SCENE_MIXES,
        ui=True,
        label="Scene families",
    )
    two_shot: bool = _opt(
        True,
        "data",
        "synthetic: bg and fg_bg as two separate photos (own noise, exposure, JPEG, <= 2 px shift, a shadow); "
        "--no-two-shot: one image and the same image with a paste (the seed's data)",
        ui=True,
        label="Two shots (bg and composite as two photos)",
    )
    # The two-shot effects' shares (maskdepth.data.twoshot.TwoShot); the defaults are the shipped model's.
    wall_shadows: float = _opt(
        0.4,
        "data",
        "two shots: share of shadows cast on a surface behind the object instead of on the ground",
        minimum=0.0,
        maximum=1.0,
    )
    black_edges: float = _opt(
        0.2,
        "data",
        "two shots: share of backgrounds aligned with black borders (as an alignment tool leaves them)",
        minimum=0.0,
        maximum=1.0,
    )
    camouflage: float = _opt(
        0.15,
        "data",
        "two shots, scene mixes: share of main objects wearing a crop of the scene beside them",
        minimum=0.0,
        maximum=1.0,
    )
    relight: float = _opt(
        0.5,
        "data",
        "two shots, scene mixes: share of scenes relit, alike in both shots, by a smooth light field "
        "that ignores depth",
        minimum=0.0,
        maximum=1.0,
    )
    handheld: float = _opt(
        0.0,
        "data",
        "two shots: share of backgrounds re-shot as by hand (turned, moved and zoomed a little, own "
        "exposure) and registered back onto the composite as prediction does, so the model learns what "
        "registration leaves (resampling blur, a small fit error, the colour match, the border filled "
        "from the composite); pairs registration cannot match keep the ordinary background",
        minimum=0.0,
        maximum=1.0,
    )
    data_seed: int = _opt(0, "data")
    size: int = _opt(
        64,
        "data",
        "training and evaluation resolution, square (with a minimum size: the largest side of the random shapes)",
        minimum=32,
        maximum=256,
        step=32,
        ui=True,
        label="Training resolution (pixels)",
    )
    min_size: int = _opt(
        0,
        "data",
        "synthetic: multi-scale training, each batch at a random shape with sides multiples of 32 from "
        "this to --size, aspect up to 2:1 (maskdepth.data.multiscale); 0 = every batch at --size square",
        minimum=0,
        maximum=256,
    )
    test_fraction: float = _opt(0.3, "data", minimum=0.0, maximum=1.0)
    parts: int = _opt(
        1, "data", "train on N parts of the data one after another (seed variant ii)", minimum=1
    )
    augment: bool = _opt(True, "data")
    # Model.
    in_channels: int = _opt(
        6,
        "model",
        "6 = bg + fg_bg, 3 = fg_bg only",
        choices=(6, 3),
        ui=True,
        label="Input channels (6 = bg + fg_bg, 3 = fg_bg only)",
    )
    base_width: int = _opt(
        32, "model", "32 = the seed's W-Net", minimum=1, ui=True, label="Width (32 = the seed's W-Net)"
    )
    # Losses (names from maskdepth.model.losses): the shipped model's; the seed used "bce" for both.
    mask_loss: str = _opt("bce+dice", "losses", choices="mask", ui=True, label="Mask loss")
    depth_loss: str = _opt("bce+log+grad", "losses", choices="depth", ui=True, label="Depth loss")
    bce_weight: float = _opt(1.0, "losses", "weight of BCE in ssim+bce", minimum=0.0)
    ssim_weight: float = _opt(2.0, "losses", "weight of 1-SSIM in ssim+bce", minimum=0.0)
    log_weight: float = _opt(0.25, "losses", "weight of the log-ratio term in bce+log(+grad)", minimum=0.0)
    grad_weight: float = _opt(
        2.0, "losses", "weight of the log-depth gradient-matching term in bce+log+grad", minimum=0.0
    )
    # Optimisation.
    optimizer: str = _opt("adamw", "optimisation", choices=OPTIMIZERS, ui=True, label="Optimiser")
    lr: float = _opt(
        2e-3,
        "optimisation",
        "peak learning rate (OneCycle) or initial one",
        minimum=0.0,
        exclusive_minimum=True,
        ui=True,
        label="Learning rate (peak for onecycle)",
    )
    weight_decay: float = _opt(1e-4, "optimisation", minimum=0.0)
    scheduler: str = _opt("onecycle", "optimisation", choices=SCHEDULERS, ui=True, label="LR schedule")
    batch_size: int = _opt(
        32,
        "optimisation",
        "per process: under torchrun the effective batch is N x this",
        minimum=1,
        maximum=256,
        ui=True,
        label="Batch size",
    )
    # Budget: the run ends at the first limit reached (at least one must be set).
    epochs: float | None = _opt(None, "budget", minimum=0.0, exclusive_minimum=True, ui=True)
    steps: int | None = _opt(None, "budget", minimum=1, ui=True)
    minutes: float | None = _opt(None, "budget", minimum=0.0, exclusive_minimum=True, ui=True)
    # Evaluation.
    eval_every: int | None = _opt(
        None, "evaluation and run", "steps between evaluations (default: once per epoch)", minimum=1, ui=True
    )
    eval_samples: int = _opt(
        512, "evaluation and run", "test samples per evaluation (0 = all)", minimum=0, ui=True
    )
    sample_every: int = _opt(
        25,
        "evaluation and run",
        "steps between sample-prediction events (0 = never)",
        minimum=0,
        cli=False,
        ui=True,
    )
    # Resume from a run folder (its last.pt) or a model folder.
    resume: str | None = _opt(
        None, "run folder", "a run folder (uses its last.pt) or a model folder to start from", ui=True
    )
    resume_lr: Literal["continue", "restart"] = _opt(
        "continue",
        "run folder",
        "on resume or on the next --parts part: continue the lr where it stopped, or restart it",
        ui=True,
        label="On resume, the learning rate",
    )
    # Run.
    out_dir: str = _opt(
        "runs/run",
        "run folder",
        "run folder: best weights, last.pt, metrics, model card",
        flag="--out",
        dest="out",
        ui=True,
    )
    seed: int = _opt(0, "evaluation and run")
    channels_last: bool = _opt(True, "evaluation and run")
    precision: str = _opt(
        "auto",
        "evaluation and run",
        "training forward in bfloat16 (bf16) or float32 (fp32); auto = bf16 if a short probe of fp32 and "
        "bf16 steps on this machine measures it more than 5 percent faster (cached per CPU, torch and width; on CUDA: "
        "where the GPU runs bf16 natively), else fp32. Losses, evaluation and saved weights are always fp32",
        choices=PRECISIONS,
    )
    threads: int | None = _opt(
        None, "evaluation and run", "torch threads (default: torch's choice)", minimum=1
    )
    num_workers: int = _opt(0, "evaluation and run", "DataLoader workers", flag="--workers", minimum=0)
    # Under torchrun (docs/scaling.md): batch_size is per process, so the effective batch is
    # world_size x batch_size; scale_lr applies the linear scaling rule lr x world_size.
    sync_bn: bool = _opt(
        False, "distributed (torchrun)", "BatchNorm statistics over the whole effective batch (SyncBatchNorm)"
    )
    scale_lr: bool = _opt(
        False, "distributed (torchrun)", "multiply --lr by N, the number of processes (linear scaling rule)"
    )

    def __post_init__(self) -> None:
        for name, valid in (
            ("optimizer", OPTIMIZERS),
            ("scheduler", SCHEDULERS),
            ("precision", PRECISIONS),
            ("scene_families", SCENE_MIXES),
        ):
            if getattr(self, name) not in valid:
                raise TrainingError(
                    f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(valid)}"
                )
        if self.resume_lr not in ("continue", "restart"):
            raise TrainingError(f"resume_lr must be 'continue' or 'restart', got {self.resume_lr!r}")
        if self.epochs is None and self.steps is None and self.minutes is None:
            raise TrainingError("set a budget: epochs, steps or minutes")
        for name in ("epochs", "steps", "minutes"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise TrainingError(f"{name} must be > 0, got {value}")
        for name in TWO_SHOT_SHARES:
            if not 0 <= getattr(self, name) <= 1:
                raise TrainingError(f"{name} is a share of the samples, 0..1, got {getattr(self, name)}")
        if self.batch_size < 1 or self.lr <= 0 or self.parts < 1:
            raise TrainingError("batch_size and parts must be >= 1 and lr > 0")
        if self.size < 32:
            raise TrainingError(f"size must be >= 32 (the W-Net pools five times), got {self.size}")
        if self.min_size and not 32 <= self.min_size <= self.size:
            raise TrainingError(
                f"min_size must be 0 (one size) or 32..size ({self.size}), got {self.min_size}"
            )
        if self.min_size and self.dataset != "synthetic":
            raise TrainingError(
                "multi-scale training (min_size) renders each batch at its own shape, which only the "
                "synthetic generator can do; train a folder dataset at one size (min_size 0)"
            )
        self.loss_config()  # validates the loss names

    def loss_config(self) -> LossConfig:
        return LossConfig(
            mask=self.mask_loss,
            depth=self.depth_loss,
            bce_weight=self.bce_weight,
            ssim_weight=self.ssim_weight,
            log_weight=self.log_weight,
            grad_weight=self.grad_weight,
        )

    def data_settings(self) -> DataSettings:
        """What :func:`maskdepth.data.build_dataset` needs from this config."""
        from maskdepth.data import DataSettings, TwoShot  # here: the data package imports scipy

        shares = {field: getattr(self, name) for name, field in TWO_SHOT_SHARES.items()}
        return DataSettings(
            dataset=self.dataset,
            size=self.size,
            backgrounds=self.backgrounds,
            foregrounds=self.foregrounds,
            positions=self.positions,
            flips=self.flips,
            seed=self.data_seed,
            scenes=self.scene_families,
            two_shot=TwoShot(**shares) if self.two_shot else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


__all__ = [
    "GROUPS",
    "OPTIMIZERS",
    "PRECISIONS",
    "SCENE_MIXES",
    "SCHEDULERS",
    "TWO_SHOT_SHARES",
    "TrainConfig",
]
