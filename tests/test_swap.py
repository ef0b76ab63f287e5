"""`zoo swap`: the written recipe loads from where it is written, keeps its comments, and passes the full check."""

from __future__ import annotations

import difflib
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from zoo.cli.main import app
from zoo.errors import DataError, RecipeError
from zoo.recipe import load_recipe, resolve_file, swap_component

from .conftest import ROOT

RECIPES = ROOT / "recipes"


def _renamed(changed: list[str]) -> list[str]:
    """The changed lines besides the recipe's own name and description (which a swap to a new file updates)."""
    return [line for line in changed if not line[1:].startswith(("name:", "description:"))]


def _changed_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_swap_into_another_folder_rewrites_base_and_loads(tmp_path):
    out = tmp_path / "other" / "folder" / "demo_ppo.yaml"
    result = CliRunner().invoke(
        app, ["swap", str(RECIPES / "rl_edit_demo.yaml"), "model.algorithm", "ppo", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert (out.parent / written["base"]).resolve() == (RECIPES / "rl_edit.yaml").resolve()
    recipe = load_recipe(out)  # loads from where it was written
    assert recipe.model.algorithm["name"] == "ppo"
    # everything else resolves as the original did
    original, swapped = resolve_file(RECIPES / "rl_edit_demo.yaml"), resolve_file(out)
    assert swapped["model"]["algorithm"]["lr"] == original["model"]["algorithm"]["lr"]
    swapped["model"].pop("algorithm")
    original["model"].pop("algorithm")
    # a recipe named after its file takes the new file's name (its own run folder and MLflow experiment), and its
    # description says what was swapped
    assert swapped.pop("name") == "demo_ppo" and original.pop("name") == "rl_edit_demo"
    assert swapped.pop("description") == original.pop("description") + " [zoo swap: model.algorithm reinforce -> ppo]"
    assert swapped == original


def test_swap_keeps_comments_and_changes_only_the_swapped_lines(tmp_path):
    source = RECIPES / "enlightengan.yaml"
    before = source.read_text(encoding="utf-8")
    out = tmp_path / "sub" / "e.yaml"
    text, kind, old, dropped = swap_component(source, "model.discriminators.local.objective", "ralsgan", output=out)
    assert (kind, old, dropped) == ("loss", "lsgan", [])
    comments = [line.split("#", 1)[1] for line in before.splitlines() if "#" in line]
    assert comments and all(c in text for c in comments)
    assert _renamed(_changed_lines(before, text)) == [
        "-      objective: {name: lsgan}",
        "+      objective: {name: ralsgan}",
    ]
    assert yaml.safe_load(text)["name"] == "e"
    # a block-style block is edited in place: its comments stay, a dropped key goes
    text, _, old, dropped = swap_component(source, "model.losses.sfp.loss", "mse", output=out)
    assert old == "self_feature_preserving" and set(dropped) == {
        "pretrained",
        "backbone",
        "layer",
        "skip",
        "preprocess",
        "instance_norm",
    }
    changed = _renamed(_changed_lines(before, text))
    assert "-        name: self_feature_preserving" in changed and "+        name: mse" in changed
    assert all(line.startswith("-") for line in changed if "name:" not in line)  # only removals besides the name
    assert "# plus the mean over the local discriminator's patches" in text


def test_swap_with_base_in_the_same_folder_keeps_base_and_comments(tmp_path):
    for name in ("rl_edit.yaml", "rl_edit_demo.yaml"):
        shutil.copy(RECIPES / name, tmp_path / name)
    before = (tmp_path / "rl_edit_demo.yaml").read_text(encoding="utf-8")
    text, *_ = swap_component(tmp_path / "rl_edit_demo.yaml", "model.algorithm", "a2c", output=tmp_path / "x.yaml")
    assert yaml.safe_load(text)["base"] == "rl_edit.yaml"
    assert "# - 3 critic steps per update (lr 3e-4) instead of 5;" in text
    changed = _renamed(_changed_lines(before, text))
    assert len(changed) == 2 and "reinforce" in changed[0] and "{name: a2c, lr: 1.0e-3" in changed[1]


def test_swap_of_a_block_that_lives_in_the_base_writes_an_override(tmp_path):
    out = tmp_path / "deeper" / "critic.yaml"
    text, kind, old, _ = swap_component(
        RECIPES / "rl_edit_demo.yaml", "model.discriminators.critic.objective", "hinge", output=out
    )
    assert (kind, old) == ("loss", "wgan_gp")
    own = yaml.safe_load(text)
    assert own["model"]["discriminators"]["critic"]["objective"] == {"name": "hinge"}  # gp_weight dropped
    out.parent.mkdir(parents=True)
    out.write_text(text, encoding="utf-8")
    recipe = load_recipe(out)
    assert recipe.model.discriminators["critic"].objective["name"] == "hinge"


def test_output_never_replaces_an_input(tmp_path):
    for name in ("rl_edit.yaml", "rl_edit_demo.yaml"):
        shutil.copy(RECIPES / name, tmp_path / name)
    demo = tmp_path / "rl_edit_demo.yaml"
    before = demo.read_text(encoding="utf-8")
    for target in (demo, tmp_path / "rl_edit.yaml", tmp_path / "." / "rl_edit_demo.yaml"):
        with pytest.raises(DataError, match="would replace the input .*nothing was written"):
            swap_component(demo, "model.algorithm", "ppo", output=target)
    result = CliRunner().invoke(app, ["swap", str(demo), "model.algorithm", "ppo", "-o", str(demo)])
    assert result.exit_code != 0 and "would replace the input" in str(result.exception)
    assert demo.read_text(encoding="utf-8") == before


def test_impossible_combination_is_refused_before_writing(tmp_path):
    out = tmp_path / "bad.yaml"
    with pytest.raises(RecipeError) as info:
        swap_component(RECIPES / "enlightengan.yaml", "model.discriminators.global.objective", "mse", output=out)
    message = str(info.value)
    assert "model.discriminators.global.objective" in message and "mse" in message
    assert "not an adversarial objective" in message and "\n" not in message
    result = CliRunner().invoke(
        app,
        [
            "swap",
            str(RECIPES / "enlightengan.yaml"),
            "model.discriminators.global.network",
            "kosugi_critic",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code != 0 and "kosugi_critic takes 64 x 64 images" in str(result.exception)
    assert not out.exists()
    with pytest.raises(RecipeError, match="must be a loss"):  # the kind check
        swap_component(RECIPES / "enlightengan.yaml", "model.discriminators.global.objective", "kosugi_critic")
