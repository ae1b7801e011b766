"""Data-parallel training: the one loop in 2 CPU processes (gloo) against the same loop in 1.

The data make the comparison exact up to float rounding: 16 synthetic samples split 8/8,
so with batch 4 per process (2 x 4 = 8) and batch 8 in one process every step is one
whole epoch of the 8 training samples, whatever order the samplers choose. BatchNorm
statistics then cover the same 8 images only with sync_bn, so the comparison uses it.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from support.net import free_port

from maskdepth import WNet
from maskdepth.data.transforms import split_dataset
from maskdepth.training.evaluate import evaluate
from maskdepth.training.loop import DoneEvent, EvalEvent, StepEvent, TrainConfig, build_dataset, train

WORLD = 2
BATCH = 4
TINY: dict[str, Any] = dict(
    backgrounds=2,
    foregrounds=2,
    positions=2,  # x 2 flips = 16 samples
    test_fraction=0.5,  # 8 train, 8 test
    size=32,
    base_width=4,
    steps=3,
    augment=False,
    eval_samples=0,  # score the whole test split (sharded 4 + 4 under DDP)
    sample_every=1,
    threads=1,
    precision="fp32",  # the comparison with one process is exact to 1e-4 in float32, not in bfloat16
)


class _StopAtCall(threading.Event):
    """A stop signal that turns on at the n-th time the loop looks at it (one rank only)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.calls = n, 0

    def is_set(self) -> bool:
        self.calls += 1
        return self.calls >= self.n


def _summary(events: list) -> list[tuple[str, float | None]]:
    """Events as plain (kind, loss) pairs, picklable across processes."""
    out: list[tuple[str, float | None]] = []
    for e in events:
        loss = e.loss if isinstance(e, StepEvent) else e.test_loss if isinstance(e, EvalEvent) else None
        out.append((type(e).__name__, loss))
    return out


def _worker(rank: int, ports: tuple[int, int], tmp: str) -> None:
    """One process of the run: like torchrun's children, it learns its place from the environment."""
    import maskdepth.training.loop as train_module

    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(ports[0]),
    )
    torch.set_num_threads(1)
    # Keep a handle on the network train() builds, to compare both ranks' final weights.
    built: list[torch.nn.Module] = []
    real_wnet = train_module.WNet

    def capturing_wnet(*args: Any, **kwargs: Any) -> torch.nn.Module:
        built.append(real_wnet(*args, **kwargs))
        return built[-1]

    train_module.WNet = capturing_wnet  # type: ignore[assignment,misc]
    out: dict[str, Any] = {}

    # 1. The comparison run: train() joins the group from the environment (as under torchrun).
    # Rank 1 is given another folder, which must stay unwritten.
    events: list = []
    cfg = TrainConfig(
        **TINY, batch_size=BATCH, sync_bn=True, out_dir=f"{tmp}/ddp" if rank == 0 else f"{tmp}/rank1"
    )
    result = train(cfg, on_event=events.append)
    out["weights"] = {k: v.detach().clone() for k, v in built[-1].state_dict().items()}
    out["events"], out["reason"], out["steps"] = _summary(events), result.reason, result.steps
    out["initialized_after"] = dist.is_initialized()  # train() must close the group it opened

    # 2. A group the caller opened: train() joins it and leaves it open for the next run.
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{ports[1]}", rank=rank, world_size=WORLD)
    # 2a. Only rank 1 is asked to stop (before its 3rd step): both must stop there, no hang.
    stop = _StopAtCall(3) if rank == 1 else None
    result = train(
        TrainConfig(**{**TINY, "steps": 6}, batch_size=BATCH, out_dir=f"{tmp}/stop{rank}"), stop=stop
    )
    out["stop"] = (result.reason, result.steps)
    # 2b. Only rank 1's loss turns NaN at its 2nd step: both must stop with reason "nan".
    real_score = train_module.score_batch
    calls = {"n": 0}

    def nan_on_rank1(output: Any, batch: Any, loss_cfg: Any) -> Any:
        losses = real_score(output, batch, loss_cfg)
        if rank == 1 and output.mask.requires_grad:  # training steps only, not evaluation
            calls["n"] += 1
            if calls["n"] == 2:
                return losses._replace(total=losses.total * float("nan"))
        return losses

    train_module.score_batch = nan_on_rank1  # type: ignore[assignment]
    result = train(TrainConfig(**TINY, batch_size=BATCH, out_dir=f"{tmp}/nan{rank}"))
    out["nan"] = (result.reason, result.steps)
    dist.destroy_process_group()
    torch.save(out, f"{tmp}/out{rank}.pt")


@pytest.fixture(scope="module")
def ddp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """Run the 2-process scenarios once; returns the temp folder and each rank's outputs."""
    tmp = tmp_path_factory.mktemp("ddp")
    # The children inherit the environment: one thread each, so 2 processes fit 2 cores.
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        mp.spawn(_worker, args=((free_port(), free_port()), str(tmp)), nprocs=WORLD, join=True)
    finally:
        if old is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = old
    return tmp, [torch.load(tmp / f"out{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """The same run in this process with the effective batch (2 x 4 = 8) and plain BatchNorm."""
    out = tmp_path_factory.mktemp("single")
    threads = torch.get_num_threads()
    events: list = []
    try:
        train(TrainConfig(**TINY, batch_size=WORLD * BATCH, out_dir=str(out)), on_event=events.append)
    finally:
        torch.set_num_threads(threads)  # TrainConfig.threads is process-wide
    return out, _summary(events)


def test_ranks_end_with_identical_weights(ddp: tuple[Path, list[dict[str, Any]]]) -> None:
    _, (r0, r1) = ddp
    assert r0["reason"] == r1["reason"] == "budget" and r0["steps"] == r1["steps"] == 3
    assert r0["weights"].keys() == r1["weights"].keys()
    for key, value in r0["weights"].items():
        assert torch.equal(value, r1["weights"][key]), key
    assert not r0["initialized_after"] and not r1["initialized_after"]


def test_ddp_matches_one_process_with_the_effective_batch(
    ddp: tuple[Path, list[dict[str, Any]]], single: tuple[Path, list]
) -> None:
    tmp, _ = ddp
    single_dir, single_events = single
    r0_events = ddp[1][0]["events"]
    assert [kind for kind, _ in r0_events] == [kind for kind, _ in single_events]
    # Step losses (train mode, the mean over the effective batch). Float noise here is ~4e-6;
    # without sync-BN (per-shard statistics) the steps differ by 1e-3 to 5e-3.
    steps = [
        (a, b) for (kind, a), (_, b) in zip(r0_events, single_events, strict=True) if kind == "StepEvent"
    ]
    assert len(steps) == 3
    for ours, theirs in steps:
        assert ours == pytest.approx(theirs, rel=1e-4)
    # Final weights, saved by rank 0 without DDP's "module." prefix. Adam turns float noise
    # into +-lr steps where a gradient is ~0 (e.g. conv biases right before BatchNorm), so
    # compare the mean difference: ~8e-5 here, as between two single runs with 1 and 2
    # threads; ~1e-3 without sync-BN.
    ours = torch.load(tmp / "ddp" / "last.pt", weights_only=True)["model"]
    theirs = torch.load(single_dir / "last.pt", weights_only=True)["model"]
    assert ours.keys() == theirs.keys()
    diffs = [
        (ours[k].float() - theirs[k].float()).abs().flatten() for k in theirs if ours[k].is_floating_point()
    ]
    assert torch.cat(diffs).mean().item() < 3e-4


def test_sharded_evaluation_equals_one_process_scoring_everything(
    ddp: tuple[Path, list[dict[str, Any]]],
) -> None:
    tmp, _ = ddp
    last = _history(tmp / "ddp")[-1]  # scored after the last step, with the weights in last.pt
    state = torch.load(tmp / "ddp" / "last.pt", weights_only=True)
    model = WNet(**state["model_config"])
    model.load_state_dict(state["model"])
    cfg = TrainConfig(**TINY)
    _, test_split = split_dataset(build_dataset(cfg.data_settings()), cfg.test_fraction, seed=cfg.seed)
    result = evaluate(model, test_split, loss_cfg=cfg.loss_config(), batch_size=len(test_split))
    assert last["test_loss"] == pytest.approx(result.loss, rel=1e-5)
    assert last["metrics"] == pytest.approx(result.metrics, rel=1e-5, abs=1e-7)


def _history(run_dir: Path) -> list[dict[str, Any]]:
    return json.loads((run_dir / "metrics.json").read_text())["history"]


def test_only_rank0_writes_files_and_gets_events(ddp: tuple[Path, list[dict[str, Any]]]) -> None:
    tmp, (r0, r1) = ddp
    assert not (tmp / "rank1").exists()
    assert not (tmp / "stop1").exists() and not (tmp / "nan1").exists()
    written = {p.name for p in (tmp / "ddp").iterdir()}
    assert {"config.json", "model.safetensors", "train_config.json", "metrics.json", "last.pt"} <= written
    assert r1["events"] == []
    assert r0["events"][-1][0] == DoneEvent.__name__


def test_one_rank_stopping_or_diverging_stops_all(ddp: tuple[Path, list[dict[str, Any]]]) -> None:
    _, (r0, r1) = ddp
    assert r0["stop"] == r1["stop"] == ("stopped", 2)
    assert r0["nan"] == r1["nan"] == ("nan", 1)
