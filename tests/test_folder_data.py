"""maskdepth.data.folder and maskdepth.data.export: layouts, validation messages, round trips."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from maskdepth.data.export import export_plain_layout, export_seed_layout
from maskdepth.data.folder import (
    SEED_PER_BACKGROUND,
    SEED_PER_SET,
    PlainLayoutDataset,
    SeedLayoutDataset,
    open_folder_dataset,
)
from maskdepth.errors import DatasetError

S = 16  # on-disk side of the hand-written fixtures
KEYS = {"bg": 3, "fg_bg": 3, "mask": 1, "depth": 1}


def _img(path: Path, value: int, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new(mode, (S, S), (value, value, value) if mode == "RGB" else value)
    if mode == "L" and value == 255:  # a mask: object in the top-left quarter only
        img = Image.new("L", (S, S), 0)
        img.paste(255, (0, 0, S // 2, S // 2))
    img.save(path)


def _write_seed(root: Path, numbers: range, per_background: int, bg_dir: Path | None = None) -> None:
    """A seed-layout set with samples ``numbers`` (N) and the backgrounds they need."""
    for n in numbers:
        _img(root / "Fg-Bg" / f"fg-bg{n}.jpg", 100)
        _img(root / "Fg-Bg-Mask" / f"fg-bg-mask{n}.jpg", 255, "L")
        _img(root / "Depth" / f"depth{n}.jpg", 40 + n, "L")
    i_in_set = [(n - 1) % len(numbers) + 1 for n in numbers]
    for k in {math.ceil(i / per_background) for i in i_in_set}:
        _img((bg_dir or root / "Bg") / f"bg{k}.jpg", 10 * k)


def _check_sample(sample: dict, size: int) -> None:
    assert set(sample) == set(KEYS)
    for key, c in KEYS.items():
        t = sample[key]
        assert t.dtype == torch.float32 and t.shape == (c, size, size)
        assert 0.0 <= float(t.min()) and float(t.max()) <= 1.0
    assert set(sample["mask"].unique().tolist()) <= {0.0, 1.0}


def test_seed_constants_follow_the_recipe() -> None:
    assert (SEED_PER_SET, SEED_PER_BACKGROUND) == (80_000, 800)


def test_seed_single_set(tmp_path: Path) -> None:
    _write_seed(tmp_path, range(1, 7), per_background=2)
    ds = SeedLayoutDataset(tmp_path, size=8, per_background=2, per_set=6)
    assert len(ds) == 6 and ds.parts == [ds]
    _check_sample(ds[0], 8)
    assert ds[0]["mask"][0, 0, 0] == 1 and ds[0]["mask"][0, -1, -1] == 0  # white in the file = object
    assert [ds.sample_paths(i)["bg"].name for i in range(6)] == ["bg1.jpg"] * 2 + ["bg2.jpg"] * 2 + [
        "bg3.jpg"
    ] * 2
    assert [ds.background_index(i) for i in range(6)] == [1, 1, 2, 2, 3, 3]
    assert ds[-1]["depth"].mean() > ds[0]["depth"].mean()  # brighter file = nearer = larger value


def test_seed_layout_json_and_loose_backgrounds(tmp_path: Path) -> None:
    _write_seed(tmp_path, range(1, 5), per_background=4, bg_dir=tmp_path)  # bg1.jpg next to Fg-Bg/
    (tmp_path / "layout.json").write_text(json.dumps({"per_background": 4, "per_set": 4}))
    ds = open_folder_dataset(tmp_path, size=S)
    assert isinstance(ds, SeedLayoutDataset) and len(ds) == 4
    assert {ds.sample_paths(i)["bg"] for i in range(4)} == {tmp_path / "bg1.jpg"}


def test_seed_root_of_sets_with_shared_backgrounds(tmp_path: Path) -> None:
    _write_seed(tmp_path / "set1", range(1, 5), per_background=2, bg_dir=tmp_path / "Bg")
    _write_seed(tmp_path / "set2", range(5, 9), per_background=2, bg_dir=tmp_path / "Bg")  # global N
    ds = open_folder_dataset(tmp_path, size=8, per_background=2, per_set=4)
    assert isinstance(ds, SeedLayoutDataset) and len(ds) == 8
    assert [len(p) for p in ds.parts] == [4, 4] and ds.parts[1].root.name == "set2"
    assert ds.sample_paths(4)["fg_bg"].name == "fg-bg5.jpg" and ds.sample_paths(4)["bg"].name == "bg1.jpg"
    assert ds.background_index(0) == ds.background_index(4) != ds.background_index(2)
    _check_sample(ds[7], 8)


def test_plain_layout_mixed_suffixes_natural_order(tmp_path: Path) -> None:
    for stem, ext in (("s2", "png"), ("s10", "jpg"), ("s1", "webp")):
        _img(tmp_path / "bg" / f"{stem}.{ext}", 10)
        _img(tmp_path / "fg_bg" / f"{stem}.png", 20)
        _img(tmp_path / "mask" / f"{stem}.png", 255, "L")
        _img(tmp_path / "depth" / f"{stem}.png", 128, "L")
    (tmp_path / "fg_bg" / ".DS_Store").write_text("junk")
    ds = open_folder_dataset(tmp_path, size=12)
    assert isinstance(ds, PlainLayoutDataset) and len(ds) == 3
    assert [ds.sample_paths(i)["fg_bg"].stem for i in range(3)] == ["s1", "s2", "s10"]
    _check_sample(ds[1], 12)


def test_missing_seed_files_are_named(tmp_path: Path) -> None:
    _write_seed(tmp_path, range(1, 13), per_background=12)
    for n in range(3, 10):
        (tmp_path / "Depth" / f"depth{n}.jpg").unlink()
    with pytest.raises(DatasetError) as info:
        SeedLayoutDataset(tmp_path, per_background=12, per_set=12)
    msg = str(info.value)
    assert "missing 7 files" in msg and "depth3.jpg" in msg and "and 2 more" in msg
    assert "Depth 5 images" in msg


def test_missing_background_is_named(tmp_path: Path) -> None:
    _write_seed(tmp_path, range(1, 5), per_background=2)
    (tmp_path / "Bg" / "bg2.jpg").unlink()
    with pytest.raises(DatasetError, match=r"1 backgrounds are missing: bg2\.jpg"):
        SeedLayoutDataset(tmp_path, per_background=2, per_set=4)


def test_plain_mismatched_counts(tmp_path: Path) -> None:
    for stem in ("a", "b"):
        for key in ("bg", "fg_bg", "mask", "depth"):
            _img(tmp_path / key / f"{stem}.png", 50, "L")
    _img(tmp_path / "depth" / "stray.png", 50, "L")
    (tmp_path / "mask" / "b.png").unlink()
    with pytest.raises(DatasetError) as info:
        PlainLayoutDataset(tmp_path)
    msg = str(info.value)
    assert "mask/ 1" in msg and "depth/ 3" in msg
    assert "mask/ is missing 1 files: b.*" in msg and "stray.png" in msg


def test_unreadable_file_named_at_getitem(tmp_path: Path) -> None:
    _write_seed(tmp_path, range(1, 3), per_background=2)
    bad = tmp_path / "Fg-Bg-Mask" / "fg-bg-mask2.jpg"
    bad.write_text("not a jpeg")
    ds = SeedLayoutDataset(tmp_path, per_background=2, per_set=2)  # listing only: no decode yet
    ds[0]
    with pytest.raises(DatasetError, match="fg-bg-mask2.jpg"):
        ds[1]


def test_unknown_folder_says_what_it_expected(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(DatasetError) as info:
        open_folder_dataset(tmp_path)
    msg = str(info.value)
    assert "Fg-Bg" in msg and "fg_bg" in msg and "images/" in msg and "labels/" in msg
    with pytest.raises(DatasetError, match="not a folder"):
        open_folder_dataset(tmp_path / "nope")


def test_wrapper_folder_is_entered(tmp_path: Path) -> None:
    _write_seed(tmp_path / "wrapped" / "inner", range(1, 3), per_background=2)
    ds = open_folder_dataset(tmp_path / "wrapped", per_background=2, per_set=2)
    assert len(ds) == 2


# ---------------------------------------------------------------- export round trips


class FakeScenes(torch.utils.data.Dataset):
    """Smooth random backgrounds with one pasted rectangle; ``bg_of`` maps sample -> background."""

    def __init__(self, n: int, size: int = 32, bg_of=None) -> None:
        self.n, self.size, self.bg_of = n, size, bg_of
        if bg_of is not None:
            self.background_index = bg_of

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(i)
        b = self.bg_of(i) if self.bg_of is not None else i
        ramp = torch.linspace(0, 1, self.size)
        colour = torch.rand(3, 1, 1, generator=torch.Generator().manual_seed(1000 + b))
        bg = (0.3 + 0.5 * colour * ramp[None, None, :]).expand(3, self.size, self.size).clone()
        y, x, h, w = (int(v) for v in torch.randint(2, self.size // 2, (4,), generator=g))
        mask = torch.zeros(1, self.size, self.size)
        mask[:, y : y + h, x : x + w] = 1
        fg_bg = bg * (1 - mask) + mask * torch.rand(3, 1, 1, generator=g)
        depth = (0.2 + 0.3 * ramp[:, None]).expand(1, self.size, self.size) * (1 - mask) + 0.9 * mask
        return {"bg": bg, "fg_bg": fg_bg, "mask": mask, "depth": depth}


def _compare(src, back, atol_mean: float) -> None:
    assert len(back) == len(src)
    for i in range(len(src)):
        a, b = src[i], back[i]
        _check_sample(b, src.size)
        assert torch.equal(a["mask"], b["mask"])
        for key in ("bg", "fg_bg", "depth"):
            assert (a[key] - b[key]).abs().mean() < atol_mean, key


def test_export_seed_layout_dedupes_backgrounds(tmp_path: Path) -> None:
    src = FakeScenes(6, bg_of=lambda i: i // 3)
    calls = []
    out = export_seed_layout(src, tmp_path / "out", on_progress=lambda i, n: calls.append((i, n)))
    assert calls == [(i, 6) for i in range(1, 7)]
    assert sorted(p.name for p in (out / "Bg").iterdir()) == ["bg1.jpg", "bg2.jpg"]
    assert json.loads((out / "layout.json").read_text())["per_background"] == 3
    back = open_folder_dataset(out, size=32)
    assert isinstance(back, SeedLayoutDataset)
    _compare(src, back, atol_mean=0.02)
    assert [back.background_index(i) for i in range(6)] == [1, 1, 1, 2, 2, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folder left


def test_export_seed_layout_without_background_index(tmp_path: Path) -> None:
    src = FakeScenes(3)
    out = export_seed_layout(src, tmp_path / "out", n=2)
    assert len(list((out / "Bg").iterdir())) == 2
    _compare(FakeScenes(2), SeedLayoutDataset(out, size=32), atol_mean=0.02)


def test_export_seed_layout_interleaved_backgrounds(tmp_path: Path) -> None:
    src = FakeScenes(4, bg_of=lambda i: i % 2)  # not in blocks: layout.json lists each sample's bg
    out = export_seed_layout(src, tmp_path / "out")
    assert json.loads((out / "layout.json").read_text())["backgrounds"] == [1, 2, 1, 2]
    back = SeedLayoutDataset(out, size=32)
    assert [back.sample_paths(i)["bg"].name for i in range(4)] == ["bg1.jpg", "bg2.jpg"] * 2
    _compare(src, back, atol_mean=0.02)


def test_export_plain_layout_round_trip(tmp_path: Path) -> None:
    src = FakeScenes(3)
    out = export_plain_layout(src, tmp_path / "plain")
    back = open_folder_dataset(out, size=32)
    assert isinstance(back, PlainLayoutDataset)
    _compare(src, back, atol_mean=1 / 255)
    with pytest.raises(DatasetError, match="not empty"):
        export_plain_layout(src, out)


def test_export_interrupted_leaves_nothing(tmp_path: Path) -> None:
    class Broken(FakeScenes):
        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            if i == 1:
                raise RuntimeError("generator crashed")
            return super().__getitem__(i)

    with pytest.raises(RuntimeError):
        export_seed_layout(Broken(3), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
