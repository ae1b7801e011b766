"""Training throughput: the shipped loop against the seed-style reference, interleaved.

The shipped loop is ``maskdepth.training.loop.train`` itself (no copy): one long run whose
``on_event`` callback measures windows of steps and, between them, runs the reference's
windows (the train loop simply waits inside the callback). Order alternates per round
(S R, R S, S R, ...) so slow drifts of the machine hit both loops alike; each round gives
one ratio, and the ratios' median / min / max is the result.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.common import Row, SectionResult, Stats, shipped_config
from bench.reference import SeedStyleLoop
from maskdepth.data.fetch import one_thread_batches
from maskdepth.data.transforms import model_input
from maskdepth.model.losses import LossConfig, score_batch
from maskdepth.model.wnet import WNet
from maskdepth.training.config import TrainConfig
from maskdepth.training.loop import Event, StepEvent, train

TARGET_RATIO = 1.6  # the loop against the seed-style reference on one machine (BENCHMARKS.md)


def flops_per_image(size: int = 64, batch: int = 4) -> float:
    """Counted FLOPs of one forward + backward per image (convolutions and matmuls)."""
    model = WNet(image_size=size).train()
    x = torch.randn(batch, 6, size, size)
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        (out.mask.sum() + out.depth.sum()).backward()
    return counter.get_total_flops() / batch


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> list[float]:
    """fp32 GFLOP/s of ``torch.mm`` on n x n matrices, one value per timed call."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up: threads, caches
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        rates.append(2 * n**3 / (time.perf_counter() - t) / 1e9)
    return rates


class _Interleaver:
    """The ``on_event`` callback that measures shipped windows and runs reference windows between them."""

    def __init__(
        self,
        order: list[str],
        window_s: float,
        warmup_steps: int,
        batch: int,
        ref: SeedStyleLoop,
        ref_warmup: int,
    ):
        self.order, self.window_s, self.warmup_steps, self.batch = order, window_s, warmup_steps, batch
        self.ref, self.ref_warmup = ref, ref_warmup
        self.stop = threading.Event()
        self.rates: dict[str, list[float]] = {"shipped": [], "reference": []}
        self.pos = 0
        self.seen = 0
        self.t0 = 0.0
        self.steps = 0
        self.last_loss = float("nan")

    def __call__(self, event: Event) -> None:
        if not isinstance(event, StepEvent) or self.stop.is_set():
            return
        self.seen += 1
        self.last_loss = event.loss
        if self.seen < self.warmup_steps:
            return
        if self.seen == self.warmup_steps:
            for _ in range(self.ref_warmup):
                self.ref.step()
            self._hand_over()
            return
        self.steps += 1
        elapsed = time.perf_counter() - self.t0
        if elapsed >= self.window_s:
            self.rates["shipped"].append(self.steps * self.batch / elapsed)
            self.pos += 1
            self._hand_over()

    def _hand_over(self) -> None:
        """Run reference windows until the shipped loop is next; then restart the shipped clock."""
        while self.pos < len(self.order) and self.order[self.pos] == "reference":
            images, elapsed = self.ref.run_for(self.window_s)
            self.rates["reference"].append(images / elapsed)
            self.pos += 1
        if self.pos >= len(self.order):
            self.stop.set()
        self.steps = 0
        self.t0 = time.perf_counter()  # the loop resumes right after this callback returns


def window_order(rounds: int) -> list[str]:
    """S R, R S, S R, ...: each round holds one window of each loop, in alternating order."""
    order: list[str] = []
    for r in range(rounds):
        order += ["shipped", "reference"] if r % 2 == 0 else ["reference", "shipped"]
    return order


def run_throughput(
    export_dir: Path,
    *,
    window_s: float,
    rounds: int,
    ref_batch: int = 32,
    warmup_steps: int = 2,
    peak_repeats: int = 5,
) -> SectionResult:
    """Section 1: shipped loop vs seed-style reference, img/s, ratio, GFLOP/s vs matmul peak."""
    res = SectionResult()
    peaks = matmul_peak_gflops(repeats=peak_repeats)
    flops = flops_per_image()
    ref = SeedStyleLoop(export_dir, batch_size=ref_batch)
    with tempfile.TemporaryDirectory(prefix="bench-shipped-") as tmp:
        # A budget far beyond the windows; the callback stops the run. eval_every / sample_every
        # keep evaluation and previews out of the loop; eval_samples=1 makes the final one cheap.
        cfg = shipped_config(tmp, minutes=24 * 60.0, eval_every=10**9, sample_every=0, eval_samples=1)
        inter = _Interleaver(
            window_order(rounds), window_s, warmup_steps, cfg.batch_size, ref, ref_warmup=warmup_steps
        )
        result = train(cfg, on_event=inter, stop=inter.stop)
    peaks += matmul_peak_gflops(repeats=peak_repeats)  # before and after: the machine's state drifts

    s, r = inter.rates["shipped"], inter.rates["reference"]
    if not s or not r:
        res.notes.append(f"throughput: the shipped run ended early ({result.reason}: {result.message})")
        return res
    # One ratio per round: windows of the same round were measured back to back.
    ratios = [a / b for a, b in zip(s, r, strict=False)]  # equal unless the run ended early
    st_s, st_r, st_ratio, st_peak = Stats.of(s), Stats.of(r), Stats.of(ratios), Stats.of(peaks)
    gf_s = [x * flops / 1e9 for x in s]
    gf_r = [x * flops / 1e9 for x in r]
    res.raw = {
        "window_s": window_s,
        "rounds": rounds,
        "order": window_order(rounds),
        "shipped_img_s": s,
        "reference_img_s": r,
        "ratio": ratios,
        "flops_per_image": flops,
        "matmul_peak_gflops": peaks,
        "shipped": {"batch": cfg.batch_size, "config": cfg.to_dict(), "last_loss": inter.last_loss},
        "reference": {
            "batch": ref_batch,
            "samples_on_disk": len(ref.dataset),
            "steps": ref.steps,
            "last_loss": ref.last_loss,
        },
        "summary": {
            "shipped": st_s.to_dict(),
            "reference": st_r.to_dict(),
            "ratio": st_ratio.to_dict(),
            "peak_gflops": st_peak.to_dict(),
            "shipped_gflops": Stats.of(gf_s).to_dict(),
            "reference_gflops": Stats.of(gf_r).to_dict(),
        },
    }
    sec = "1 training"
    res.rows += [
        Row.from_stats(sec, f"shipped loop (train(), batch {cfg.batch_size})", st_s, "img/s"),
        Row.from_stats(sec, f"seed-style reference (JPEG DataLoader, batch {ref_batch})", st_r, "img/s"),
        Row.at_least(sec, "ratio shipped / reference (per round)", st_ratio, "x", TARGET_RATIO),
        Row(sec, "FLOPs per 64x64 image, fwd+bwd (counted)", flops / 1e9, "GFLOP"),
        Row.from_stats(sec, "fp32 matmul peak (2048^2 mm, before+after)", st_peak, "GFLOP/s"),
        Row.from_stats(
            sec,
            "shipped achieved",
            Stats.of(gf_s),
            "GFLOP/s",
            note=f"{100 * Stats.of(gf_s).median / st_peak.median:.0f}% of peak",
        ),
        Row.from_stats(
            sec,
            "reference achieved",
            Stats.of(gf_r),
            "GFLOP/s",
            note=f"{100 * Stats.of(gf_r).median / st_peak.median:.0f}% of peak",
        ),
    ]
    return res


# ---- where a step's time goes --------------------------------------------------------------


def _variant_step(
    model: WNet,
    opt: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    loss_cfg: LossConfig,
    *,
    channels_last: bool,
    bf16: bool,
) -> dict[str, float]:
    """One training step split into timed phases (CPU ops are synchronous, so wall time is exact)."""
    t0 = time.perf_counter()
    if channels_last:
        batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
    x = model_input(batch["bg"], batch["fg_bg"], 6)
    t1 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model(x)
    if bf16:
        out = type(out)(mask=out.mask.float(), depth=out.depth.float())  # losses in fp32
    t2 = time.perf_counter()
    losses = score_batch(out, batch, loss_cfg)
    t3 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    losses.total.backward()
    t4 = time.perf_counter()
    opt.step()
    t5 = time.perf_counter()
    return {
        "prep": t1 - t0,
        "forward": t2 - t1,
        "loss": t3 - t2,
        "backward": t4 - t3,
        "optimizer": t5 - t4,
        "step": t5 - t0,
    }


VARIANTS: dict[str, dict] = {
    # name: channels_last, bf16 autocast, AdamW kwargs
    "shipped (channels_last, AdamW default)": {"channels_last": True, "bf16": False, "adamw": {}},
    "contiguous NCHW": {"channels_last": False, "bf16": False, "adamw": {}},
    "AdamW foreach=True": {"channels_last": True, "bf16": False, "adamw": {"foreach": True}},
    "AdamW fused=True": {"channels_last": True, "bf16": False, "adamw": {"fused": True}},
    "bf16 autocast": {"channels_last": True, "bf16": True, "adamw": {}},
}


def run_step_breakdown(
    *, rounds: int, steps_per_round: int, batch_size: int = 32, data_batches: int = 3
) -> SectionResult:
    """Section 1b: per-phase times of the shipped step and of candidate changes, interleaved per round.

    Every variant trains its own copy of the same initial weights on the same fixed batch
    (the shipped recipe's losses); the data cost is measured separately on the shipped
    data pipeline (synthetic scenes + joint augmentation, warm background cache).
    """
    from torch.utils.data import DataLoader

    from bench.data_pipeline import synthetic_augmented

    res = SectionResult()
    data = synthetic_augmented(prefill=True)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    it, fetched = iter(loader), one_thread_batches(loader)
    next(it)
    next(fetched)
    # Data with torch's default threads in the calling thread, alternating with the shipped
    # loop's fetch: a helper thread limited to one core (tiny augmentation ops, no fan-out).
    data_s, data_s1 = [], []
    for _ in range(data_batches):
        t = time.perf_counter()
        batch = next(it)
        data_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        next(fetched)
        data_s1.append(time.perf_counter() - t)

    recipe = TrainConfig(steps=1)  # the shipped recipe's losses and AdamW settings
    loss_cfg = recipe.loss_config()
    torch.manual_seed(0)
    init = WNet().state_dict()
    states = {}
    for name, v in VARIANTS.items():
        model = WNet()
        model.load_state_dict(init)
        if v["channels_last"]:
            model = model.to(memory_format=torch.channels_last)
        model.train()
        try:
            opt = torch.optim.AdamW(
                model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay, **v["adamw"]
            )
            _variant_step(
                model, opt, batch, loss_cfg, channels_last=v["channels_last"], bf16=v["bf16"]
            )  # warm-up
        except (RuntimeError, TypeError, ValueError) as e:  # an option this torch build lacks
            res.notes.append(f"step breakdown: variant {name!r} skipped ({e})")
            continue
        states[name] = (model, opt, v)

    times: dict[str, list[dict[str, float]]] = {name: [] for name in states}
    names = list(states)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            model, opt, v = states[name]
            for _ in range(steps_per_round):
                times[name].append(
                    _variant_step(
                        model, opt, batch, loss_cfg, channels_last=v["channels_last"], bf16=v["bf16"]
                    )
                )

    base_name = names[0]
    base_step = Stats.of(t["step"] for t in times[base_name])
    sec = "1b step"
    data_stats = Stats.of(data_s)
    res.rows.append(
        Row.from_stats(
            sec,
            f"data: one batch of {batch_size} (synthetic + augment, workers=0)",
            Stats.of(x * 1e3 for x in data_s),
            "ms",
        )
    )
    res.rows.append(
        Row.from_stats(
            sec,
            "data: same, fetched as train() does (helper thread on 1 core)",
            Stats.of(x * 1e3 for x in data_s1),
            "ms",
            note=f"{Stats.of(data_s).median / Stats.of(data_s1).median:.1f}x faster",
        )
    )
    for phase in ("prep", "forward", "loss", "backward", "optimizer"):
        st = Stats.of(t[phase] * 1e3 for t in times[base_name])
        res.rows.append(
            Row.from_stats(
                sec,
                f"shipped step: {phase}",
                st,
                "ms",
                note=f"{100 * st.median / (base_step.median * 1e3):.1f}% of compute step",
            )
        )
    res.rows.append(
        Row.from_stats(
            sec,
            "shipped step: compute total",
            Stats.of(t["step"] * 1e3 for t in times[base_name]),
            "ms",
            note=f"data adds {100 * data_stats.median / base_step.median:.1f}% on top (workers=0)",
        )
    )
    for name in names[1:]:
        st = Stats.of(t["step"] * 1e3 for t in times[name])
        # Per-step pairs in the same round, as ratios to the shipped step.
        speedups = [a["step"] / b["step"] for a, b in zip(times[base_name], times[name], strict=True)]
        sp = Stats.of(speedups)
        res.rows.append(
            Row.from_stats(
                sec,
                f"variant: {name}, step",
                st,
                "ms",
                note=f"speed-up vs shipped {sp.median:.2f}x ({sp.min:.2f}-{sp.max:.2f})",
            )
        )
        opt_st = Stats.of(t["optimizer"] * 1e3 for t in times[name])
        if name.startswith("AdamW"):
            res.rows.append(Row.from_stats(sec, f"variant: {name}, optimizer phase", opt_st, "ms"))
    res.raw = {
        "batch_size": batch_size,
        "rounds": rounds,
        "steps_per_round": steps_per_round,
        "data_batch_s": data_s,
        "data_batch_one_thread_s": data_s1,
        "variants": {name: {"spec": dict(VARIANTS[name]), "times": times[name]} for name in names},
    }
    return res
