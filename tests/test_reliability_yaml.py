"""Hostile recipes and files end in a sentence, fast: billion laughs, deep nesting, non-UTF-8, huge files, checkpoints
carrying such a recipe or none, weights files that are pickles; no message prints a whole value or passes on the
libraries' "load it unsafely" advice."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest
import torch

from zoo.cli.main import main
from zoo.errors import DataError, RecipeError, short_repr
from zoo.recipe import MAX_YAML_BYTES, check_bounded, parse_override, parse_yaml_text, read_yaml

LAUGHS = "\n".join(
    ["name: x", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    + ["data: *a9", "model: *a9", "train: {trainer: gan}"]
)


def _run(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out + captured.err


@pytest.mark.parametrize("command", [["recipe", "check"], ["export", "--onnx", "x.onnx", "--recipe"]])
def test_billion_laughs_fails_within_a_second(tmp_path, capsys, command):
    path = tmp_path / "laughs.yaml"
    path.write_text(LAUGHS)
    t0 = time.perf_counter()
    code, err = _run([*command, str(path)], capsys)
    assert time.perf_counter() - t0 < 1.0
    assert code == 2 and "expands to more than" in err and str(path) in err
    assert len(err) < 1000 and "lol', 'lol', 'lol', 'lol', 'lol', 'lol', 'lol'" not in err


def test_billion_laughs_in_a_set_override_is_refused():
    levels = ["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    t0 = time.perf_counter()
    with pytest.raises(RecipeError, match="expands to more than"):
        parse_override(f"train.steps=[{', '.join(levels)}]")
    assert time.perf_counter() - t0 < 1.0
    assert parse_override("train.note=not: [valid")[1] == "not: [valid"  # invalid YAML is taken as text


def test_deep_nesting_is_a_sentence_not_a_recursion_error(tmp_path, capsys):
    path = tmp_path / "deep.yaml"
    path.write_text("name: x\ndata: " + "[" * 100_000 + "]" * 100_000 + "\n")
    code, err = _run(["recipe", "check", str(path)], capsys)
    assert code == 2 and "nests deeper than" in err and "RecursionError" not in err
    path.write_text("name: x\ndata:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)))
    with pytest.raises(RecipeError, match="nests deeper"):
        read_yaml(path)


def test_non_utf8_and_huge_and_folder(tmp_path):
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("name: café\n".encode("latin-1"))
    with pytest.raises(RecipeError, match="not UTF-8 text .*0xe9"):
        read_yaml(latin)
    huge = tmp_path / "huge.yaml"
    huge.write_text("name: x\ndescription: '" + "x" * MAX_YAML_BYTES + "'\n")
    with pytest.raises(RecipeError, match="too large for a recipe"):
        read_yaml(huge)
    with pytest.raises(RecipeError, match="is a folder"):
        read_yaml(tmp_path)


def test_invalid_yaml_message_names_line_and_stays_short():
    with pytest.raises(RecipeError, match=r"<t>: invalid YAML at line 2") as info:
        parse_yaml_text("a: 1\nb: [" + "x, " * 10_000, "<t>")
    assert len(str(info.value)) < 400


def test_messages_never_print_a_whole_value(tmp_path):
    big = list(range(10_000))
    assert len(short_repr(big)) <= 80
    path = tmp_path / "r.yaml"
    path.write_text(f"name: x\nbase: {big}\n")
    from zoo.recipe import load_recipe

    with pytest.raises(RecipeError, match="base: names one recipe file") as info:
        load_recipe(path)
    assert len(str(info.value)) < 400


def _checkpoint(path: Path, **state) -> Path:
    base = {"format": "enhance-zoo-checkpoint", "version": 1, "trainer": "gan", "step": 1, "modules": {}}
    torch.save({**base, **state}, path)
    return path


def test_checkpoint_with_an_exploding_recipe_is_refused_fast(tmp_path, capsys):
    node: list = ["lol"] * 9
    for _ in range(12):
        node = [node] * 9  # 9^12 values once expanded; a few hundred bytes pickled (shared references)
    ckpt = _checkpoint(tmp_path / "bomb.pt", recipe={"name": "x", "model": {"generator": node}})
    assert ckpt.stat().st_size < 100_000
    (tmp_path / "img").mkdir()
    t0 = time.perf_counter()
    code, err = _run(["enhance", str(tmp_path / "img"), "-c", str(ckpt), "--out", str(tmp_path / "o")], capsys)
    assert time.perf_counter() - t0 < 2.0
    assert code == 2 and "expands to more than" in err and "bomb.pt" in err
    with pytest.raises(RecipeError, match="nests deeper"):
        deep: list = []
        for _ in range(500):
            deep = [deep]
        check_bounded(deep, "x")


def test_checkpoint_without_a_recipe_cannot_be_resumed_but_says_so(tmp_path, capsys):
    from tests.test_train_infra_tiny import register_tiny, tiny_recipe, unregister_tiny

    register_tiny()
    try:
        recipe = tiny_recipe(tmp_path / "r.yaml", steps=2)
        ckpt = _checkpoint(tmp_path / "c.pt", trainer="tiny_test")
        code, err = _run(["train", str(recipe), "--resume", str(ckpt), "-q"], capsys)
    finally:
        unregister_tiny()
    assert code == 2 and "cannot be resumed: it lacks recipe" in err and "KeyError" not in err


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickles_are_refused_without_the_unsafe_advice(tmp_path, capsys):
    pt = tmp_path / "evil.pt"
    torch.save({"format": "enhance-zoo-checkpoint", "x": Evil()}, pt)
    (tmp_path / "img").mkdir()
    code, err = _run(["enhance", str(tmp_path / "img"), "-c", str(pt), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "a pickle that could run code" in err
    assert "weights_only=False" not in err and "pwned" not in err and "trusted source" not in err
    code, err = _run(["enhance", str(tmp_path / "img"), "-c", str(tmp_path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "is a folder" in err and "does not exist" not in err


def test_rl_editor_weights_that_are_not_weights(tmp_path):
    from zoo.registry import create

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 100)
    pkl = tmp_path / "evil.pt"
    pkl.write_bytes(pickle.dumps(Evil(), protocol=2))
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    npz = tmp_path / "evil.npz"
    import numpy as np

    np.save(tmp_path / "objs.npy", np.array([Evil()], dtype=object), allow_pickle=True)
    (tmp_path / "objs.npy").rename(npz)
    cases = (
        (junk, "not a readable"),
        (pkl, "pickle"),
        (tensor, "holds a Tensor"),
        (npz, "npz"),
        (tmp_path, "a folder"),
    )
    for path, expected in cases:
        with pytest.raises(DataError, match=expected) as info:
            create("generator", {"name": "rl_editor", "weights": str(path)})
        assert "weights_only=False" not in str(info.value)
