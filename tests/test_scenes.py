"""Tests for the scene families (maskdepth.data.families), realistic compositing and SyntheticScenes' options."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy import ndimage

from maskdepth.data.compose import compose, furnish
from maskdepth.data.families import FAMILIES, HELDOUT_FAMILY, MIXES, family_of, resolve
from maskdepth.data.geometry import SUPERSAMPLE, downsample
from maskdepth.data.synthetic import NOTHING_PASTED, SyntheticScenes
from maskdepth.data.twoshot import TwoShot

H, W = 64, 96  # non-square on purpose
# The shadow alone: no camera effects, and the objects and the light of the scene as they are.
NO_CAMERA = TwoShot(
    shift_px=0, rotate_deg=0, exposure=0, white_balance=0, blur=(0, 0), read_noise=(0, 0), shot_noise=(0, 0),
    jpeg_p=0, shadow_p=1, reflection_p=0, clean_p=0, camouflage_p=0, relight_p=0,
)  # fmt: skip


def test_the_mix_table_sums_to_one_and_holds_one_family_out() -> None:
    train, weights = resolve("all")
    assert HELDOUT_FAMILY not in train and len(train) >= 3  # rooms plus at least two more
    assert abs(sum(weights) - 1) < 1e-9
    assert FAMILIES[HELDOUT_FAMILY].split == "heldout" and FAMILIES[HELDOUT_FAMILY].weight == 0
    assert resolve("heldout") == ((HELDOUT_FAMILY,), (1.0,))
    drawn = [family_of(b, train, weights) for b in range(2000)]
    assert HELDOUT_FAMILY not in drawn
    for name, w in zip(train, weights, strict=True):
        assert abs(drawn.count(name) / len(drawn) - w) < 0.02, name
    assert set(drawn[: 2 * len(train)]) == set(train)  # every family shows up early
    with pytest.raises(ValueError, match="valid"):
        resolve(["room", "moon"])


def test_the_mixes_are_named_by_what_they_draw() -> None:
    assert resolve("all")[0] == ("classic_room", "room", "corridor", "outdoor", "tabletop", "wall", "racks")
    assert resolve("indoor")[0] == ("classic_room", "room", "corridor", "wall", "racks")
    assert resolve("outdoor") == (("outdoor",), (1.0,))
    assert set(resolve("indoor")[0]) < set(resolve("all")[0])
    from maskdepth.training.config import SCENE_MIXES
    from maskdepth.ui.train_tab import SCENES_TEXT

    assert set(SCENE_MIXES) == {"rooms", *MIXES}  # the CLI's choices are the mixes that exist
    assert set(SCENES_TEXT) == set(SCENE_MIXES)  # and the Train tab words each of them
    # "rooms" is the seed-like generator, by name or by default.
    rooms = SyntheticScenes(3, 2, 2, size=32, families="rooms")
    assert rooms.families is None and torch.equal(
        rooms[5]["fg_bg"], SyntheticScenes(3, 2, 2, size=32)[5]["fg_bg"]
    )


def test_at_shape_copies_draw_the_same_families() -> None:
    """Multi-scale training draws its batches from at_shape copies: they keep the mix and its weights."""
    for mix in ("all", "indoor"):
        base = SyntheticScenes(100, 4, 2, size=32, families=mix, two_shot=True)
        view = base.at_shape((48, 64))
        assert all(view.sample_family(i) == base.sample_family(i) for i in range(0, len(base), 7)), mix


def test_camouflaged_objects_wear_the_scene_beside_them() -> None:
    from maskdepth.data.compose import camouflaged
    from maskdepth.data.objects import Projection

    # A scene that says where each pixel is: red = row, green = column, blue = a constant.
    h, w = 120, 160
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    scene = np.stack([rows / (h - 1), cols / (w - 1), np.full_like(rows, 0.5)], -1)

    def worn_at(region: tuple[slice, slice], seed: int) -> tuple[np.ndarray, np.ndarray]:
        shape = (region[0].stop - region[0].start, region[1].stop - region[1].start)
        obj = Projection(region, np.ones(shape, bool), np.zeros((*shape, 3), np.float32), np.ones(shape))
        worn = camouflaged(scene, obj, np.random.default_rng(seed))
        assert worn.alpha is obj.alpha and worn.z is obj.z
        gain = worn.colour[..., 2:] / 0.5  # brightness change and own-colour share, the same everywhere
        src = worn.colour / gain
        return np.rint(src[..., 0] * (h - 1)), np.rint(src[..., 1] * (w - 1))

    for seed in range(10):
        # In the middle: a crop of the scene moved 0.6-1.5 of the object's size, not what is behind it.
        ys, xs = worn_at((slice(50, 70), slice(70, 90)), seed)
        dy, dx = ys - rows[50:70, 70:90], xs - cols[50:70, 70:90]
        assert np.ptp(dy) == 0 and np.ptp(dx) == 0  # one shift for the whole object
        assert 0.6 - 0.1 <= np.hypot(dy[0, 0] / 20, dx[0, 0] / 20) <= 1.5 + 0.1
        # At a corner the crop is mirrored at the border: every pixel a scene pixel, neighbours adjacent.
        ys, xs = worn_at((slice(0, 30), slice(w - 40, w)), seed)
        assert ys.min() >= 0 and ys.max() <= h - 1 and xs.min() >= 0 and xs.max() <= w - 1
        assert np.all(np.abs(np.diff(ys, axis=0)) == 1) and np.all(np.abs(np.diff(xs, axis=1)) == 1)


def _effect_changes(share: str) -> tuple[int, int]:
    """(unchanged, changed) pairs among every 7th sample with the two-shot effect ``share`` off and at its
    default; every other draw of a sample has its own stream, so the rest of the pair stays as it was."""
    off, on = (
        SyntheticScenes(20, 6, 3, size=(32, 48), families="all", two_shot=t)
        for t in (TwoShot(**{share: 0.0}), TwoShot())
    )
    same = changed = 0
    for i in range(0, len(off), 7):
        a, b = off[i], on[i]
        assert torch.equal(a["mask"], b["mask"]) and torch.equal(a["depth"], b["depth"])  # the same scene
        if torch.equal(a["fg_bg"], b["fg_bg"]) and torch.equal(a["bg"], b["bg"]):
            same += 1
        else:
            changed += 1
            assert on.sample_family(i) != "classic_room"  # the seed-like rooms keep their look
            if share == "camouflage_p":
                assert torch.equal(a["bg"], b["bg"])  # only the main object changes its colours
    return same, changed


def test_camouflage_dresses_some_main_objects_and_leaves_the_rest() -> None:
    same, worn = _effect_changes("camouflage_p")
    assert same > 2 * worn and worn >= 1  # 3 in 20 main objects (fewer: the classic rooms keep theirs)


def test_relight_changes_about_half_the_scene_samples_and_leaves_the_rest() -> None:
    same, relit = _effect_changes("relight_p")
    assert relit >= 0.3 * (same + relit) and same >= 0.3 * (same + relit)


def test_rooms_render_as_they_did_when_the_shipped_numbers_were_measured() -> None:
    # Sums of rooms rendered by the code that measured the model card's, BENCHMARKS.md's and
    # comparisons/default's numbers on room scenes: those commands reproduce while these hold.
    from maskdepth.data.families.room import render_background

    for index, (rgb, z) in enumerate([(3094.833, 13395.313), (2441.789, 15182.691), (1684.868, 11537.99)]):
        bg = render_background(0, index, (24, 32))
        assert float(bg.rgb.astype(np.float64).sum()) == pytest.approx(rgb, rel=1e-6)
        assert float(bg.z.astype(np.float64).sum()) == pytest.approx(z, rel=1e-6)


def test_wall_scenes_face_a_wall_with_the_floor_below_and_fittings_standing_out() -> None:
    import dataclasses

    from maskdepth.data.families.room import WALL, render_background

    in_view = 0
    for index in range(8):
        bg = render_background(0, index, (H, W), WALL)
        assert np.median(bg.z[: bg.z.shape[0] // 4]) < 6.0  # the wall 1.5-4.5 m away, not a room's far end
        # The fittings are drawn last: without them the scene is the same but for where they stand.
        bare = render_background(0, index, (H, W), dataclasses.replace(WALL, shelves=0))
        fitted = bg.z != bare.z
        in_view += bool(fitted.any())
        assert np.all(bg.z[fitted] < bare.z[fitted])  # in front of the wall (or of a box behind)
        assert np.all(bare.z[fitted] - bg.z[fitted] < 0.65)  # at most 0.45 m out, along a tilted ray
        # Without furniture the floor fills at least min_floor of the frame's height (bar side walls).
        empty = render_background(0, index, (H, W), dataclasses.replace(WALL, max_boxes=0))
        assert empty.floor.mean() > 0.8 * WALL.min_floor
    assert in_view >= 5  # fittings may be above the tilted frame or behind furniture, but mostly show


def test_rack_scenes_load_shelves_against_the_wall_and_keep_furniture_clear_of_the_camera() -> None:
    import dataclasses

    from maskdepth.data.families.room import RACKS, render_background

    in_view, items = 0, []
    for index in range(8):
        bg = render_background(0, index, (H, W), RACKS)
        bare = render_background(0, index, (H, W), dataclasses.replace(RACKS, racks=0))
        racked = bg.z != bare.z
        in_view += bool(racked.any())
        # The racks stand against the wall (at most 0.6 m deep, along a tilted ray), not out in the room.
        assert np.all(bare.z[racked] - bg.z[racked] < 0.85)
        # Boards, uprights and loaded items each wear their own texture and tint: many colours.
        colours = bg.rgb[racked].round(1)
        items.append(len(np.unique(colours, axis=0)))
        # Furniture keeps its front face box_near (1.2 m) away: nothing in view is within half a metre.
        assert bg.z.min() > 0.5
    assert in_view >= 6 and np.median(items) > 20


def test_train_datasets_never_render_the_held_out_family() -> None:
    train = SyntheticScenes(60, 1, 1, size=32, families="all")
    assert HELDOUT_FAMILY not in {train.family(b) for b in range(60)}
    held = SyntheticScenes(5, 1, 1, size=32, families="heldout")
    assert {held.family(b) for b in range(5)} == {HELDOUT_FAMILY}
    assert SyntheticScenes(2, 1, 1, size=32).family(0) == "room"  # the seed-like rooms


@pytest.mark.parametrize("name", list(FAMILIES))
def test_each_family_renders_at_a_non_square_size(name: str) -> None:
    for index in range(3):
        bg = FAMILIES[name].render(0, index, (H, W))
        assert bg.rgb.shape == (SUPERSAMPLE * H, SUPERSAMPLE * W, 3) and bg.rgb.dtype == np.float32
        assert bg.z.shape == bg.floor.shape == bg.rgb.shape[:2]
        assert 0 <= bg.rgb.min() and bg.rgb.max() <= 1 and bg.rgb.std() > 0.02
        assert bg.floor.mean() > 0.05  # objects have somewhere to stand
        assert np.all(bg.z > 0) and np.all(np.isfinite(bg.z[bg.floor]))
    ds = SyntheticScenes(2, 3, 2, size=(H, W), families=[name], two_shot=True)
    for i in range(0, len(ds), 5):
        s = ds[i]
        assert s["bg"].shape == s["fg_bg"].shape == (3, H, W) and s["mask"].shape == s["depth"].shape == (
            1,
            H,
            W,
        )
        for key, value in s.items():
            assert value.dtype == torch.float32 and value.min() >= 0 and value.max() <= 1, key
        assert 0 < s["mask"].sum() < H * W / 2


@pytest.mark.parametrize("name", ["outdoor", "street"])
def test_the_sky_is_at_depth_zero(name: str) -> None:
    bg = FAMILIES[name].render(0, 0, (H, W))
    sky = np.isinf(bg.z)
    assert sky.mean() > 0.02
    ds = SyntheticScenes(1, 2, 1, size=(H, W), families=[name])
    depth = ds[0]["depth"][0].numpy()
    all_sky = downsample(sky.astype(np.float32), SUPERSAMPLE) == 1
    mask = ds[0]["mask"][0].numpy() > 0
    assert np.all(depth[all_sky & ~mask] == 0)
    assert np.all(depth[~all_sky] > 0)  # everything else is a surface at a finite distance


def test_samples_with_every_option_are_a_pure_function_of_seed_and_index() -> None:
    kwargs = dict(backgrounds=4, foregrounds=2, positions=2, size=(48, 64), families="all", two_shot=True)
    first = SyntheticScenes(**kwargs)
    samples = [first[i] for i in range(len(first))]
    again = SyntheticScenes(**kwargs)
    for i in reversed(range(len(again))):
        for key, value in again[i].items():
            assert torch.equal(value, samples[i][key]), (i, key)
    assert not torch.equal(SyntheticScenes(**kwargs, seed=1)[0]["fg_bg"], samples[0]["fg_bg"])
    assert "two shots" in first.describe() and "tabletop" in first.describe()


def test_objects_occlude_and_are_occluded_with_exact_mask_and_depth() -> None:
    """compose() at render resolution: outside the mask nothing changes; inside, the depth is the objects'."""
    ds = SyntheticScenes(8, 6, 2, size=(H, W), families="all")
    several = 0
    for b in range(8):
        bg, _ = ds._background(b)
        family = FAMILIES[ds.family(b)]
        for f in range(3):
            rng = np.random.default_rng([0, 3, b, f])
            comp = compose(bg, 0, family, [f, (f + 1) % 6, (f + 2) % 6], rng, flip=False)
            mask = comp["mask"] > 0
            assert mask.any()
            assert np.array_equal(comp["fg_bg"][~mask], bg.rgb[~mask])  # the mask holds every change
            assert np.array_equal(comp["z"][~mask], bg.z[~mask])
            assert np.all(comp["z"][mask] < bg.z[mask])  # pasted objects are in front of what they hide
            several += ndimage.label(mask)[1] >= 2
    assert several >= 4  # several objects, at different places and depths


def test_the_shadow_changes_fg_bg_but_not_the_mask_or_depth() -> None:
    kwargs = dict(backgrounds=2, foregrounds=2, positions=2, size=(H, W), families=["room", "outdoor"])
    plain, shaded = SyntheticScenes(**kwargs), SyntheticScenes(**kwargs, two_shot=NO_CAMERA)
    darkened = 0
    for i in range(len(plain)):
        a, b = plain[i], shaded[i]
        assert torch.equal(a["mask"], b["mask"]) and torch.equal(a["depth"], b["depth"])
        mask = a["mask"][0].numpy() > 0
        change = (a["fg_bg"] - b["fg_bg"]).amax(dim=0).numpy()
        if not mask.any():  # NOTHING_PASTED: no object, so no shadow
            continue
        assert change[mask].max() <= 1 / 255  # the object itself is not shadowed (8-bit rounding only)
        darkened += (change[~mask] > 0.02).sum() > 5
    assert darkened >= len(plain) // 2


def test_the_mix_keeps_exact_pastes_classic_rooms_and_a_clean_share_of_two_shots() -> None:
    """classic_room samples are the first generator's (one exact paste); of the others, ~clean_p stay exact."""
    ds = SyntheticScenes(40, 2, 1, flips=False, size=32, families="all", two_shot=True)
    exact = {"classic": [], "other": []}
    for i in range(len(ds)):
        s = ds[i]
        outside = ~ndimage.binary_dilation(s["mask"][0].numpy() > 0, iterations=1)
        same = torch.equal(s["bg"][:, outside], s["fg_bg"][:, outside])
        exact["classic" if ds.sample_family(i) == "classic_room" else "other"].append(same)
    assert exact["classic"] and all(exact["classic"])
    share = sum(exact["other"]) / len(exact["other"])
    assert 0.02 < share < 0.4  # TwoShot.clean_p = 0.15 of 64 samples


def test_defaults_are_the_seeds_recipe_on_rooms() -> None:
    ds = SyntheticScenes(2, 2, 2, size=32)
    assert ds.families is None and ds.two_shot is None
    assert ds.describe().endswith("= 16 samples at 32x32")
    s = ds[0]
    mask = s["mask"][0].numpy() > 0
    outside = ~ndimage.binary_dilation(mask, iterations=1)
    assert torch.equal(
        s["bg"][:, outside], s["fg_bg"][:, outside]
    )  # one image with a paste: no two-shot effects


def test_train_config_has_the_families_and_two_shots_on_by_default(tmp_path) -> None:
    """--scene-families / --no-two-shot reach the generator through build_dataset (on by default: the mix)."""
    from maskdepth.data import build_dataset
    from maskdepth.training.config import TrainConfig

    base = dict(backgrounds=4, foregrounds=2, positions=2, steps=1, out_dir=str(tmp_path))
    rooms = build_dataset(TrainConfig(**base, scene_families="rooms", two_shot=False).data_settings())
    mixed = build_dataset(TrainConfig(**base).data_settings())
    assert mixed.families == resolve("all") and mixed.two_shot == TwoShot() and rooms.two_shot is None
    held = build_dataset(TrainConfig(**base, scene_families="heldout").data_settings())
    assert {rooms.family(b) for b in range(4)} == {"room"}
    assert {held.family(b) for b in range(4)} == {HELDOUT_FAMILY}
    assert HELDOUT_FAMILY not in {mixed.family(b) for b in range(4)}
    a, b = rooms[0], mixed[0]
    assert a["fg_bg"].shape == b["fg_bg"].shape == (3, 64, 64)


def test_scene_objects_stand_in_the_scene_and_in_its_depth_but_not_in_the_mask() -> None:
    bare = FAMILIES["room"].render(0, 3, (H, W))
    furnished = furnish(bare, 0, FAMILIES["room"], [0, 1], np.random.default_rng(5))
    changed = (furnished.z != bare.z) & np.isfinite(bare.z)
    assert changed.mean() > 0.01  # two objects are visible in the scene...
    assert (furnished.z[changed] < bare.z[changed]).all()  # ...in front of what they hide
    assert not (furnished.floor & changed).any()  # pasted objects never stand on them
    assert np.abs(furnished.rgb - bare.rgb).max(axis=-1)[changed].mean() > 0.02

    # In the dataset they are in both photos and in the depth target, never in the mask.
    ds = SyntheticScenes(4, 3, 4, size=(H, W), families=["room"])
    seen = 0
    for i in range(len(ds)):
        s = ds[i]
        bg_depth = torch.from_numpy(
            downsample(np.clip(1.0 / ds._background(ds.background_index(i))[0].z, 0, 1), SUPERSAMPLE)
        )
        outside = s["mask"][0] == 0
        seen += int(((s["depth"][0] - bg_depth).abs() > 0.02)[outside].sum() > 20)
    assert seen >= len(ds) // 3


def test_a_share_of_scene_samples_paste_nothing() -> None:
    ds = SyntheticScenes(10, 10, 4, flips=False, size=32, families=["room", "outdoor"])
    empty = [i for i in range(len(ds)) if ds[i]["mask"].sum() == 0]
    assert 0 < len(empty) / len(ds) < 3 * NOTHING_PASTED
    s = ds[empty[0]]
    assert torch.equal(s["bg"], s["fg_bg"])  # one photo given twice (no two-shot effects asked)
    classic = SyntheticScenes(10, 10, 4, flips=False, size=32)
    assert all(classic[i]["mask"].sum() > 0 for i in range(0, len(classic), 7))  # the first generator: always


def test_classic_samples_are_the_first_generators_own_on_every_background() -> None:
    """The classic share is drawn per sample, so every room of the first generator's set is trained on."""
    mix = SyntheticScenes(30, 4, 2, flips=False, size=32, families="all", two_shot=True)
    first = SyntheticScenes(30, 4, 2, flips=False, size=32)
    classic = [i for i in range(len(mix)) if mix.sample_family(i) == "classic_room"]
    share = dict(zip(*resolve("all"), strict=True))["classic_room"]  # its share of the mix
    assert abs(len(classic) / len(mix) - share) < 0.06
    assert len({mix.background_index(i) for i in classic}) > 0.9 * 30 * (1 - (1 - share) ** 8)
    for i in classic[::5]:
        a, b = mix[i], first[i]
        assert all(torch.equal(a[k], b[k]) for k in ("bg", "fg_bg", "mask", "depth"))
    assert "classic_room" not in {mix.family(b) for b in range(30)}  # backgrounds go to the others


def test_handheld_backgrounds_are_registered_reshots_and_leave_every_other_draw_alone() -> None:
    """In its share a background is re-shot by hand and registered back: the composite, mask and depth
    stay as they were, the new background still lies on the composite's grid (compared with the
    ordinary background, here not moved), and a pair registration cannot match keeps the ordinary one."""
    import cv2

    still = dataclasses.replace(TwoShot(), shift_px=0, rotate_deg=0)  # the ordinary bg: the composite's grid
    off = SyntheticScenes(8, 4, 2, size=128, families="all", two_shot=still)
    on = SyntheticScenes(8, 4, 2, size=128, families="all", two_shot=dataclasses.replace(still, handheld_p=1))
    registered = 0
    for i in (0, 10, 30, 35, 45, 65, 105):  # textured scenes register; a few plain ones do not
        a, b = off[i], on[i]
        assert all(torch.equal(a[k], b[k]) for k in ("fg_bg", "mask", "depth"))
        if torch.equal(a["bg"], b["bg"]):
            continue
        registered += 1
        grey = [cv2.cvtColor(s["bg"].permute(1, 2, 0).numpy(), cv2.COLOR_RGB2GRAY) for s in (a, b)]
        (dx, dy), _ = cv2.phaseCorrelate(*grey)
        assert np.hypot(dx, dy) < 1.5, (i, dx, dy)
        assert (b["bg"] - a["bg"]).abs().mean() > 0.01  # another shot, not the same one
    assert registered >= 4
    # Its own stream, spawned last: the streams every other draw uses are the ones they were before it.
    children = np.random.SeedSequence([0, 30]).spawn(6)
    assert on._streams(30)["shots"].random() == np.random.default_rng(children[5]).random()
    assert "handheld 1" in on.describe() and "handheld" not in off.describe()
