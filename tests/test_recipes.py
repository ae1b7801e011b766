"""Tests for the recipe files (maskdepth.training.recipes, recipes/*.toml) and the shipped weights' record."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from maskdepth.__main__ import main
from maskdepth.errors import TrainingError
from maskdepth.training.config import TrainConfig
from maskdepth.training.recipes import load_recipe, recipe_path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "recipes" / "shipped.toml"
RUN_SCALE = ("backgrounds", "foregrounds", "positions", "size", "min_size", "lr", "resume_lr")
RUN_SCALE += ("minutes", "eval_every", "eval_samples")  # what the shipped run chose beyond the defaults


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[TrainConfig]:
    """The configs ``main(["train", ...])`` starts runs with; no training happens."""
    import maskdepth.training.loop as loop

    configs: list[TrainConfig] = []

    def fake_train(cfg, on_event=None, stop=None, command=None):
        configs.append(cfg)
        return SimpleNamespace(message="done", run_dir=cfg.out_dir, reason="budget")

    monkeypatch.setattr(loop, "train", fake_train)
    return configs


def test_the_shipped_recipe_starts_the_run_the_shipped_weights_record(started: list[TrainConfig]) -> None:
    assert main(["train", "--config", "recipes/shipped.toml"]) == 0
    recorded = json.loads((ROOT / "checkpoints" / "train_config.json").read_text())
    aside = ("epochs", "steps", "minutes", "resume", "out_dir")  # the budget, where it started and wrote
    config = started[0].to_dict()
    assert set(config) == set(recorded)  # the record names every setting there is, no more
    assert {k: v for k, v in config.items() if k not in aside} == {
        k: v for k, v in recorded.items() if k not in aside
    }


def test_the_defaults_are_the_shipped_recipe_but_for_its_scale() -> None:
    """TrainConfig, TwoShot and LossConfig default to the shipped model's data, effects and losses."""
    from maskdepth.data import TwoShot
    from maskdepth.model.losses import LossConfig

    recipe, defaults = load_recipe(SHIPPED), TrainConfig(steps=1)
    assert {k: v for k, v in recipe.items() if k not in RUN_SCALE} == {
        k: getattr(defaults, k) for k in recipe if k not in RUN_SCALE
    }
    assert defaults.data_settings().two_shot == TwoShot()
    assert defaults.loss_config() == LossConfig()


def test_flags_override_the_file_both_ways(started: list[TrainConfig]) -> None:
    argv = [
        "train",
        "--config",
        str(SHIPPED),
        "--minutes",
        "1",
        "--lr",
        "1e-3",
        "--no-two-shot",
        "--size",
        "128",
    ]
    assert main(argv) == 0
    cfg = started[-1]
    assert (cfg.minutes, cfg.lr, cfg.two_shot, cfg.size) == (1.0, 1e-3, False, 128)
    assert (cfg.backgrounds, cfg.depth_loss, cfg.min_size) == (100, "bce+log+grad", 96)  # the file's
    # A boolean the file turns off comes back on with its flag; settings the CLI has no flag for
    # (the Train tab's sample_every) reach the config from the file too.
    assert main(["train", "--config", str(recipe_path("browser")), "--two-shot", "--steps", "2"]) == 0
    cfg = started[-1]
    assert (cfg.two_shot, cfg.scene_families, cfg.base_width, cfg.sample_every) == (True, "rooms", 16, 50)
    assert (cfg.steps, cfg.minutes) == (2, 2.0)  # the first limit reached ends the run


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("lr = 1e-3\nlearning_rate = 2\n", "unknown setting 'learning_rate'"),
        ('size = "big"\n', "size = 'big' is not a whole number"),
        ("two_shot = 1\n", "two_shot = 1 is not true or false"),
        ('scene_families = "studio"\n', "scene_families = 'studio' is not one of all, indoor"),
        ("relight = 2\n", "relight = 2.0 must be <= 1"),
        ("lr = 0\n", "lr = 0.0 must be > 0"),
        ("lr = \n", "is not valid TOML"),
    ],
)
def test_a_bad_recipe_fails_in_one_line_naming_the_file_and_the_setting(
    tmp_path: Path, capsys, text: str, needle: str
) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(TrainingError, match="mine.toml"):
        load_recipe(path)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: recipe file") and str(path) in err and needle in err, err
    assert len(err.splitlines()) == 1 and not (tmp_path / "run").exists()


def test_a_missing_recipe_file_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["train", "--config", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"error: no recipe file {tmp_path / 'nope.toml'}: give the path of a .toml recipe, e.g. "
        + str(recipe_path("shipped"))
    )


def test_the_train_tab_starts_from_the_browser_recipe() -> None:
    from support.ui import train_tab

    recipe = load_recipe(recipe_path("browser"))
    controls = {s.name for s in train_tab.form_settings()} | set(train_tab.OWN_CONTROLS)
    assert set(recipe) <= controls  # every value the file gives has a control to start from
    defaults = train_tab.tab_defaults()
    assert {k: defaults[k] for k in recipe} == recipe and defaults["budget_kind"] == "minutes"
    assert "2 minutes" in train_tab.defaults_text(SimpleNamespace(on_space=False))


def test_the_model_card_names_the_recipe_and_the_commit_and_is_built_from_its_records() -> None:
    from maskdepth.hub.card import card_info, model_card

    folder = ROOT / "checkpoints"
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert model_card(card_info(folder)) == card  # regenerated by the card code, never edited by hand
    assert "python -m maskdepth train --config recipes/shipped.toml" in card
    assert "git checkout 9aec3e5" in card
    for research_name in ("stage ", "recipe v", "two_shot_recipe", "train-v", "studio"):
        assert research_name not in card, research_name
