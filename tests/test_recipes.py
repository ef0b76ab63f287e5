"""Recipes: safe loading, base chains, overrides, strict validation with suggestions, and every shipped recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from zoo import registry
from zoo.errors import RecipeError
from zoo.recipe import Component, apply_overrides, load_recipe, merge, parse_override, recipe_from_dict
from zoo.specs import CommonTrainSpec, StrictModel

from .conftest import ROOT, SHARED

RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))


class ToyGenerator:
    """Toy generator used only by these tests."""

    def __init__(self, width: int = 8, depth: int = 2) -> None:
        self.width, self.depth = width, depth


class ToyData:
    """Toy dataset used only by these tests."""

    def __init__(self, size: int = 4) -> None:
        self.size = size


class ToySlot(StrictModel):
    critic: Component("generator")
    weight: float = 1.0


class ToyTrainer:
    """Toy trainer used only by these tests."""

    class ModelSpec(StrictModel):
        generator: Component("generator")
        slots: dict[str, ToySlot] = {}

    class TrainSpec(CommonTrainSpec):
        lr: float = 1e-4


@pytest.fixture(autouse=True)
def toys():
    registry.register("generator", "zz_toy_gen")(ToyGenerator)
    registry.register("generator", "zz_toy_other")(ToyData)
    registry.register("dataset", "zz_toy_data")(ToyData)
    registry.register("trainer", "zz_toy")(ToyTrainer)
    yield
    for kind, name in [
        ("generator", "zz_toy_gen"),
        ("generator", "zz_toy_other"),
        ("dataset", "zz_toy_data"),
        ("trainer", "zz_toy"),
    ]:
        registry.REGISTRIES[kind].remove(name)


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


BASE = {
    "name": "toy",
    "seed": 3,
    "data": {"name": "zz_toy_data", "size": 2},
    "model": {"generator": {"name": "zz_toy_gen", "width": 4}, "slots": {"a": {"critic": {"name": "zz_toy_gen"}}}},
    "train": {"trainer": "zz_toy", "steps": 10, "lr": 0.001},
}


def test_loads_and_validates(tmp_path):
    r = load_recipe(write(tmp_path / "r.yaml", BASE))
    assert r.name == "toy" and r.seed == 3 and r.train.steps == 10 and r.train.lr == 0.001
    assert r.model.generator == {"name": "zz_toy_gen", "width": 4}
    assert r.tracking.enabled is True
    assert [(p, k) for p, k, _ in r.blocks()] == [
        ("data", "dataset"),
        ("model.generator", "generator"),
        ("model.slots.a.critic", "generator"),
    ]


def test_base_chain_merges_dicts_and_replaces_blocks(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    write(tmp_path / "mid.yaml", {"base": "base.yaml", "train": {"steps": 20}, "model": {"generator": {"depth": 5}}})
    child = write(
        tmp_path / "child.yaml",
        {
            "base": "mid.yaml",
            "name": "child",
            "model": {"slots": {"a": {"critic": {"name": "zz_toy_gen", "depth": 1}}}},
        },
    )
    r = load_recipe(child)
    assert r.name == "child"
    assert r.train.steps == 20 and r.train.lr == 0.001  # merged from two levels
    assert r.model.generator == {"name": "zz_toy_gen", "width": 4, "depth": 5}  # a dict without name merges
    assert r.model.slots["a"].critic == {"name": "zz_toy_gen", "depth": 1}  # a block with name replaces


def test_base_cycle_and_missing_base(tmp_path):
    write(tmp_path / "a.yaml", {**BASE, "base": "b.yaml"})
    write(tmp_path / "b.yaml", {**BASE, "base": "a.yaml"})
    with pytest.raises(RecipeError, match="loops"):
        load_recipe(tmp_path / "a.yaml")
    write(tmp_path / "c.yaml", {**BASE, "base": "nope.yaml"})
    with pytest.raises(RecipeError, match="nope.yaml.*does not exist"):
        load_recipe(tmp_path / "c.yaml")


def test_overrides(tmp_path):
    r = load_recipe(write(tmp_path / "r.yaml", BASE), ["train.steps=200", "model.generator.depth=7", "seed=9"])
    assert r.train.steps == 200 and r.model.generator["depth"] == 7 and r.seed == 9
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    assert parse_override("a=null") == (["a"], None)
    assert parse_override("a.b=hello world") == (["a", "b"], "hello world")
    with pytest.raises(RecipeError, match="dotted.key=value"):
        parse_override("train.steps")
    with pytest.raises(RecipeError, match="not a section"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["train"].update(stpes=3), "train.stpes: unknown key. Did you mean 'steps'"),
        (lambda d: d.update(trainng={}), "trainng: unknown key. Did you mean 'train'"),
        (lambda d: d["model"].update(genrator={}), "model.genrator: unknown key. Did you mean 'generator'"),
        (
            lambda d: d["model"]["slots"]["a"].update(wieght=2),
            "model.slots.a.wieght: unknown key. Did you mean 'weight'",
        ),
        (lambda d: d["model"]["generator"].update(name="zz_toy_gne"), "Did you mean 'zz_toy_gen'"),
        (lambda d: d["model"]["generator"].update(widht=3), "no parameter 'widht'. Did you mean 'width'"),
        (lambda d: d["train"].update(steps="many"), "train.steps"),
        (
            lambda d: d["train"].update(trainer="zz_tyo"),
            "train.trainer: Unknown trainer 'zz_tyo'. Did you mean 'zz_toy'",
        ),
        (
            lambda d: d["tracking"].update(expriment="x") if "tracking" in d else d.update(tracking={"expriment": "x"}),
            "tracking.expriment: unknown key. Did you mean 'experiment'",
        ),
        (lambda d: d["model"]["generator"].pop("name"), "model.generator: this generator block has no 'name' key"),
    ],
)
def test_errors_name_the_file_and_dotted_key(tmp_path, mutate, message):
    import copy

    data = copy.deepcopy(BASE)
    mutate(data)
    path = write(tmp_path / "bad.yaml", data)
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(RecipeError, match="invalid YAML"):
        load_recipe(path)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(RecipeError, match="a recipe is a mapping"):
        load_recipe(tmp_path / "list.yaml")


@given(
    st.recursive(
        st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=3),
        lambda inner: st.dictionaries(st.sampled_from("abcd"), inner, max_size=3),
        max_leaves=10,
    ),
    st.dictionaries(st.sampled_from("abcd"), st.integers(), max_size=3),
)
def test_merge_properties(base, override):
    merged = merge(base, override)
    for key, value in override.items():
        assert merged[key] == value  # scalars in the override always win
    for key in base:
        assert key in merged  # nothing of the base is lost
    assert merge(base, {}) == base


def test_recipe_from_dict_without_file():
    r = recipe_from_dict(BASE)
    assert r.source is None and r.name == "toy"


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_shipped_recipe_validates_and_builds(path):
    from zoo.cli.recipe_cmds import build_blocks

    recipe = load_recipe(path)
    assert recipe.blocks(), f"{path.name} names no component"
    rows = build_blocks(recipe, data=SHARED.is_dir())
    assert len(rows) == len(recipe.blocks())
