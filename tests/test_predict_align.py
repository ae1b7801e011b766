"""Every pair the predictor reads is registered first: handheld shots are aligned, exact pastes are left
alone, two different scenes are refused with the fix (in the library, the CLI and the app), and the
part of the composite the background shot does not show is never the object."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data
from support.models import tiny_model

from maskdepth.align import AlignmentError
from maskdepth.data.handheld import handheld_shot
from maskdepth.imageio import rgb_tile
from maskdepth.predict.predictor import Predictor

ALIGNMENT_ADVICE = "shoot the background again from where the composite was taken"


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(tiny_model(in_channels=6, image_size=32))


def pasted(photo: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``photo`` with a grey-blue square pasted over ``box`` (x0, y0, x1, y1)."""
    out = photo.copy()
    x0, y0, x1, y1 = box
    out[y0:y1, x0:x1] = (70, 90, 160)
    return out


def handheld_pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(background, composite): the composite is the coffee photo (600x400) with a square pasted in, the
    background a second handheld shot of the photo (turned, moved, zoomed, its own exposure)."""
    photo = data.coffee()
    shot, _ = handheld_shot(photo, np.random.default_rng(seed))
    background = rgb_tile(shot)
    return background, pasted(photo, (250, 150, 330, 230))


def test_a_handheld_pair_is_registered_before_the_model_sees_it(predictor: Predictor) -> None:
    background, composite = handheld_pair()
    pred = predictor.predict(Image.fromarray(composite), Image.fromarray(background))
    fit = pred.alignment
    assert fit is not None and not fit.identity and fit.coverage > 0.7
    assert "aligned: turned" in fit.describe()
    # What the model compared (at twice its working size): the aligned background agrees with the
    # composite away from the paste, far better than the shot as taken.
    aligned = np.asarray(pred.background, np.float32)
    h, w = aligned.shape[:2]
    assert max(h, w) == 512

    def small(image: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR), np.float32)

    outside = np.ones((h, w), bool)
    outside[int(0.3 * h) : int(0.65 * h), int(0.36 * w) : int(0.6 * w)] = False
    before = np.abs(small(background) - small(composite))[outside].mean()
    after = np.abs(aligned - small(composite))[outside].mean()
    assert after < 0.5 * before, (before, after)
    assert pred.mask.shape == composite.shape[:2]


def test_the_composite_the_background_does_not_show_is_never_the_object(predictor: Predictor) -> None:
    photo = data.coffee()
    background = photo[:, 60:]  # a shot that misses the left 60 columns of the composite
    composite = pasted(photo, (250, 150, 330, 230))
    pred = predictor.predict(Image.fromarray(composite), Image.fromarray(np.ascontiguousarray(background)))
    assert pred.uncovered is not None and pred.uncovered[:, :55].all() and not pred.uncovered[:, 70:].any()
    assert (pred.mask[pred.uncovered] == 0).all()
    assert any("does not show" in note for note in pred.notes)


def test_an_exact_paste_is_left_exactly_as_it_is(predictor: Predictor) -> None:
    photo = data.astronaut()
    composite = pasted(photo, (100, 100, 180, 200))
    pred = predictor.predict(Image.fromarray(composite), Image.fromarray(photo))
    assert pred.alignment is not None and pred.alignment.identity and pred.uncovered is None
    assert np.array_equal(np.asarray(pred.background), photo)
    off = Predictor(predictor.model, align=False).predict(Image.fromarray(composite), Image.fromarray(photo))
    assert off.alignment is None
    # One call without registration leaves the predictor as it was (the app's cached predictors serve
    # concurrent requests, each with its own checkbox).
    once = predictor.predict(Image.fromarray(composite), Image.fromarray(photo), align=False)
    assert once.alignment is None and predictor.align
    np.testing.assert_array_equal(once.mask, off.mask)
    np.testing.assert_array_equal(pred.mask, off.mask)
    np.testing.assert_array_equal(pred.depth, off.depth)


def test_two_different_scenes_are_refused_with_the_fix(predictor: Predictor) -> None:
    with pytest.raises(AlignmentError, match=ALIGNMENT_ADVICE):
        predictor.predict(Image.fromarray(data.coffee()), Image.fromarray(data.chelsea()))
    # Off, the user takes the pair as it is.
    assert (
        Predictor(predictor.model, align=False)
        .predict(Image.fromarray(data.coffee()), Image.fromarray(data.chelsea()))
        .alignment
        is None
    )


def test_the_cli_prints_the_alignment_and_refuses_different_scenes(tmp_path: Path, capsys) -> None:
    from maskdepth.__main__ import main
    from maskdepth.hub.checkpoint import save_model

    model = save_model(tiny_model(in_channels=6, image_size=32), tmp_path / "model")
    background, composite = handheld_pair(seed=1)
    Image.fromarray(background).save(tmp_path / "bg.jpg", quality=92)
    Image.fromarray(composite).save(tmp_path / "fg.jpg", quality=92)
    args = [
        "predict",
        "--model",
        str(model),
        "--image",
        str(tmp_path / "fg.jpg"),
        "--bg",
        str(tmp_path / "bg.jpg"),
    ]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "alignment: aligned: turned" in err, err
    with Image.open(tmp_path / "out" / "mask.png") as mask:
        assert mask.size == (600, 400)

    assert main([*args, "--out", str(tmp_path / "off"), "--align", "off"]) == 0
    assert "alignment:" not in capsys.readouterr().err

    Image.fromarray(data.chelsea()).save(tmp_path / "other.jpg")
    other = ["--bg", str(tmp_path / "other.jpg"), "--out", str(tmp_path / "refused")]
    assert main([*args[:-2], *other]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and ALIGNMENT_ADVICE in err[0]
    assert not (tmp_path / "refused").exists() or not any((tmp_path / "refused").iterdir())
