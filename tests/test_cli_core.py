"""`zoo list`, `zoo show`, `zoo recipe check|show` and `zoo swap` through typer's test runner."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from zoo import registry
from zoo.cli.main import app

from .conftest import ROOT
from .test_recipes import BASE, toys, write  # noqa: F401  (toys: autouse fixture registering toy components)

runner = CliRunner()
INDEX = registry.load_index()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_list_everything_and_by_kind_and_pattern():
    result = invoke("list", "--format", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert {(d["kind"], d["name"]) for d in listed} == {(e.kind, e.name) for e in INDEX}
    for kind in {e.kind for e in INDEX}:
        names = invoke("list", kind, "--format", "names").output.split()
        assert names == [f"{kind}/{e.name}" for e in INDEX if e.kind == kind]
    pattern = invoke("list", "*gan*", "--format", "names").output.split()
    assert pattern == [f"{e.kind}/{e.name}" for e in registry.entries(pattern="*gan*")]
    assert all("gan" in row.split("/")[1] for row in pattern)


def test_list_table_shows_summary_and_paper():
    if not INDEX:
        pytest.skip("nothing registered")
    e = INDEX[0]
    result = invoke("list", e.kind)
    assert result.exit_code == 0
    assert e.name in result.output and "summary" in result.output and "paper" in result.output


def test_list_bad_kind_is_a_sentence():
    result = invoke("list", "discrimintor", "*gan*")  # two filters: one must be a kind
    assert result.exit_code != 0
    assert "Did you mean 'discriminator'" in str(result.exception)


@pytest.mark.parametrize("entry", INDEX[:50], ids=[f"{e.kind}/{e.name}" for e in INDEX[:50]])
def test_show_prints_params_doc_paper_and_source(entry):
    result = invoke("show", entry.name, "--kind", entry.kind)
    assert result.exit_code == 0, result.output
    out = result.output
    assert entry.summary.split()[0] in out
    for p in entry.params:
        assert p.name in out
    module_file = entry.module.replace(".", "/")
    assert module_file in out.replace("\\", "/")  # source file and line
    assert "paper:" in out


def test_recipe_show_resolves_base_and_overrides(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    child = write(tmp_path / "child.yaml", {"base": "base.yaml", "train": {"steps": 50}})
    result = invoke("recipe", "show", str(child), "--set", "model.generator.depth=9")
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert "base" not in shown
    assert shown["train"]["steps"] == 50 and shown["train"]["lr"] == 0.001
    assert shown["model"]["generator"] == {"name": "zz_toy_gen", "width": 4, "depth": 9}
    full = yaml.safe_load(invoke("recipe", "show", str(child), "--defaults").output)
    assert full["train"]["batch_size"] == 8 and full["tracking"]["enabled"] is True


def test_recipe_check_reports_each_file(tmp_path):
    good = write(tmp_path / "good.yaml", BASE)
    bad = write(tmp_path / "bad.yaml", {**BASE, "train": {"trainer": "zz_toy", "stpes": 1}})
    result = invoke("recipe", "check", str(good), str(bad))
    assert result.exit_code == 2
    assert "OK" in result.output and "model.generator" in result.output
    assert "FAIL" in result.output and "Did you mean 'steps'" in result.output


def test_swap_keeps_accepted_params_and_lists_dropped(tmp_path):
    path = write(tmp_path / "r.yaml", {**BASE, "model": {"generator": {"name": "zz_toy_gen", "width": 4, "depth": 3}}})
    out = tmp_path / "swapped.yaml"
    result = invoke("swap", str(path), "model.generator", "zz_toy_other", "-o", str(out))
    assert result.exit_code == 0, result.output
    swapped = yaml.safe_load(out.read_text())
    assert swapped["model"]["generator"] == {"name": "zz_toy_other"}  # ToyData accepts only `size`
    assert "width" in result.output and "depth" in result.output  # the dropped ones are listed


def test_swap_refuses_another_kind_and_unknown_paths(tmp_path):
    path = write(tmp_path / "r.yaml", BASE)
    result = invoke("swap", str(path), "model.generator", "zz_toy_data")
    assert result.exit_code != 0
    assert "must be a generator" in str(result.exception)
    result = invoke("swap", str(path), "model.genrator", "zz_toy_gen")
    assert "Did you mean 'generator'" in str(result.exception)


def test_swap_of_an_inherited_block_writes_an_override(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    child = write(tmp_path / "child.yaml", {"base": "base.yaml", "name": "child"})
    result = invoke("swap", str(child), "model.slots.a.critic", "zz_toy_other")
    assert result.exit_code == 0, result.output
    text = result.output[result.output.index("base:") :]
    own = yaml.safe_load(text)
    assert own["base"] == "base.yaml"
    assert own["model"]["slots"]["a"]["critic"] == {"name": "zz_toy_other"}


def test_main_prints_a_sentence_not_a_traceback(capsys):
    from zoo.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(["show", "no_such_component_anywhere"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Unknown component 'no_such_component_anywhere'" in err and "Traceback" not in err


def test_recipes_folder_exists():
    assert (ROOT / "recipes").is_dir()
