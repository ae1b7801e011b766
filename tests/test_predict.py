"""Tests for maskdepth.predict.predictor: sizes, backgrounds, 3-channel models, output files, colour map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support.models import tiny_model, write_image

from maskdepth.data.transforms import model_input
from maskdepth.errors import InputError
from maskdepth.hub.transfer import save_model
from maskdepth.predict.outputs import OUTPUT_FILES, colorize_depth, save_prediction
from maskdepth.predict.predictor import Predictor


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(tiny_model(in_channels=6, image_size=32))


@pytest.fixture(scope="module")
def unaligned(predictor: Predictor) -> Predictor:
    """The same model with registration off: the pair goes to the model as given."""
    return Predictor(predictor.model, align=False)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("images")
    return {
        "fg_bg": write_image(folder / "fg_bg.png", 48, 36, seed=1),
        "bg": write_image(folder / "bg.png", 48, 36, seed=2),
        "bg_small": write_image(folder / "bg_small.png", 20, 30, seed=3),
        "tall": write_image(folder / "tall.png", 33, 70, seed=4),
        "tall_bg": write_image(folder / "tall_bg.png", 33, 70, seed=5),
    }


def test_outputs_are_at_the_input_size(predictor: Predictor, images: dict[str, Path]) -> None:
    pred = predictor.predict(images["fg_bg"], images["bg"])
    assert pred.mask.shape == pred.depth.shape == (36, 48)
    assert pred.mask.dtype == pred.depth.dtype == np.float32
    for arr in (pred.mask, pred.depth):
        assert arr.min() >= 0 and arr.max() <= 1 and arr.std() > 0
    assert pred.image.size == (48, 36) and pred.notes == []

    tall = predictor.predict(images["tall"], images["tall_bg"])
    assert tall.mask.shape == tall.depth.shape == (70, 33)


def test_prediction_is_the_model_on_normalised_inputs(unaligned: Predictor) -> None:
    """At the model's own resolution nothing is resized: the output is sigmoid(logits) of [bg, fg_bg], the
    depth (the default ensemble, one view here) averaged with that of the mirror image."""
    rng = np.random.default_rng(0)
    fg = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    bg = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    pred = unaligned.predict(Image.fromarray(fg), Image.fromarray(bg))

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255

    with torch.no_grad():
        out = unaligned.model(model_input(tensor(bg), tensor(fg), 6))
        mirror = unaligned.model(model_input(tensor(bg).flip(-1), tensor(fg).flip(-1), 6))
    np.testing.assert_allclose(pred.mask, torch.sigmoid(out.mask)[0, 0].numpy(), atol=1e-6)
    both = (torch.sigmoid(out.depth) + torch.sigmoid(mirror.depth).flip(-1)) / 2
    np.testing.assert_allclose(pred.depth, both[0, 0].numpy(), atol=1e-6)
    one = Predictor(unaligned.model, resolution=32, depth_view=None, align=False).predict(
        Image.fromarray(fg), Image.fromarray(bg)
    )
    np.testing.assert_allclose(one.depth, torch.sigmoid(out.depth)[0, 0].numpy(), atol=1e-6)


def test_background_of_another_size_is_resized_with_a_note(
    unaligned: Predictor, images: dict[str, Path]
) -> None:
    pred = unaligned.predict(images["fg_bg"], images["bg_small"])
    assert pred.mask.shape == (36, 48)
    assert len(pred.notes) == 1 and "resized" in pred.notes[0] and "20x30" in pred.notes[0]


def test_missing_background_names_the_fix(predictor: Predictor, images: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="background") as info:
        predictor.predict(images["fg_bg"])
    assert "add the background" in str(info.value) and "3-channel model" in str(info.value)


def test_three_channel_model_needs_no_background(images: dict[str, Path]) -> None:
    predictor = Predictor(tiny_model(in_channels=3, image_size=32))
    assert not predictor.needs_background
    pred = predictor.predict(images["fg_bg"])
    assert pred.mask.shape == (36, 48) and pred.notes == []
    with_bg = predictor.predict(images["fg_bg"], images["bg"])
    np.testing.assert_array_equal(with_bg.mask, pred.mask)  # the background is ignored...
    assert len(with_bg.notes) == 1 and "not used" in with_bg.notes[0]  # ...and the user is told


def test_predict_many_equals_predict_one_by_one(predictor: Predictor, images: dict[str, Path]) -> None:
    pairs = [
        (images["fg_bg"], images["bg"]),
        (images["tall"], images["tall_bg"]),
        (images["bg"], images["fg_bg"]),
    ]
    batched = predictor.predict_many(pairs, batch_size=2)
    assert len(batched) == 3
    for (image, bg), many in zip(pairs, batched, strict=True):
        one = predictor.predict(image, bg)
        np.testing.assert_allclose(many.mask, one.mask, atol=1e-5)
        np.testing.assert_allclose(many.depth, one.depth, atol=1e-5)


def test_from_source_loads_a_saved_model(
    tmp_path: Path, images: dict[str, Path], predictor: Predictor
) -> None:
    save_model(predictor.model, tmp_path / "model")
    loaded = Predictor.from_source(tmp_path / "model")
    assert loaded.model.image_size == 32
    a = loaded.predict(images["fg_bg"], images["bg"])
    b = predictor.predict(images["fg_bg"], images["bg"])
    np.testing.assert_allclose(a.depth, b.depth, atol=1e-6)


def test_save_prediction_writes_four_pngs_at_the_input_size(
    tmp_path: Path, predictor: Predictor, images: dict[str, Path]
) -> None:
    pred = predictor.predict(images["tall"], images["tall_bg"])
    written = save_prediction(pred, tmp_path / "out")
    assert set(written) == set(OUTPUT_FILES) == {"mask.png", "depth.png", "depth16.png", "depth_color.png"}
    expected_modes = {
        "mask.png": ("L",),
        "depth.png": ("L",),
        "depth16.png": ("I;16", "I"),
        "depth_color.png": ("RGB",),
    }
    opened = {}
    for name, path in written.items():
        assert path == tmp_path / "out" / name and path.is_file()
        with Image.open(path) as img:
            assert img.size == (33, 70), name
            assert img.mode in expected_modes[name], (name, img.mode)
            opened[name] = np.asarray(img)
    np.testing.assert_allclose(opened["mask.png"] / 255, pred.mask, atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(opened["depth.png"] / 255, pred.depth, atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(opened["depth16.png"].astype(np.float64) / 65535, pred.depth, atol=1e-4)
    np.testing.assert_array_equal(opened["depth_color.png"], colorize_depth(pred.depth))


def test_colorize_depth_maps_near_to_red_and_far_to_blue() -> None:
    rgb = colorize_depth(np.array([[1.0, 0.05, 0.0, 0.5]], np.float32))
    assert rgb.shape == (1, 4, 3) and rgb.dtype == np.uint8
    near, far, farthest, middle = (px.astype(int) for px in rgb[0])
    assert near[0] > 100 and near[0] > near[2] + 80  # red
    assert far[2] > 120 and far[2] > far[0] + 50 and far[2] > far[1] + 50  # blue
    assert farthest.max() < 80  # turbo ends in a dark blue-black (the polynomial fit is near black at 0)
    assert middle[1] > 150  # and is green-ish in the middle
    np.testing.assert_array_equal(
        colorize_depth(np.array([[2.0, -1.0]])), rgb[:, [0, 2]]
    )  # clipped to [0, 1]
