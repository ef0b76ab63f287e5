"""The registry: names, errors, the committed index, and every registered component building from defaults."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import zoo
from zoo import registry
from zoo.errors import ParameterError, RegistryError, UnknownComponentError
from zoo.registry import KINDS, create, entries, register

from .conftest import REQUIRED_TEST_PARAMS, ROOT

INDEX = registry.load_index()


@pytest.fixture
def temp_component():
    """Register a throwaway component for one test and forget it afterwards."""
    added: list[tuple[str, str]] = []

    def add(kind: str, name: str, obj):
        register(kind, name, paper="test")(obj)
        added.append((kind, name))
        return obj

    yield add
    for kind, name in added:
        registry.REGISTRIES[kind].remove(name)


class Scale:
    """Multiply by a factor (test component)."""

    def __init__(self, factor: float = 2.0, channels: int = 3, mode: str = "x") -> None:
        self.factor, self.channels, self.mode = factor, channels, mode


def test_duplicate_name_names_the_first_owner(temp_component):
    temp_component("metric", "zz_scale", Scale)

    class Other:
        pass

    with pytest.raises(RegistryError) as err:
        register("metric", "zz_scale")(Other)
    assert "zz_scale" in str(err.value) and "Scale" in str(err.value) and "test_registry.py" in str(err.value)


@pytest.mark.parametrize("bad", ["CamelCase", "with-dash", "1digit", "", "space name"])
def test_names_must_be_lower_snake(bad):
    with pytest.raises(RegistryError, match="lower_snake"):
        register("metric", bad)(Scale)


def test_unknown_kind_suggests():
    with pytest.raises(UnknownComponentError, match="Did you mean 'generator'"):
        register("generatr", "x")


def test_create_validates_and_coerces(temp_component):
    temp_component("metric", "zz_scale", Scale)
    built = create("metric", {"name": "zz_scale", "factor": 3, "channels": 4})
    assert built.factor == 3.0 and isinstance(built.factor, float) and built.channels == 4
    assert create("metric", "zz_scale").factor == 2.0
    with pytest.raises(ParameterError) as err:
        create("metric", {"name": "zz_scale", "factr": 1.0})
    msg = str(err.value)
    assert "Did you mean 'factor'" in msg and "Accepted parameters: factor, channels, mode" in msg
    with pytest.raises(ParameterError, match="'channels' expects int, got 'many'"):
        create("metric", {"name": "zz_scale", "channels": "many"})
    with pytest.raises(ParameterError, match="no 'name' key"):
        create("metric", {"factor": 1.0})
    instance = Scale()
    assert create("metric", instance) is instance  # already-built components pass through


def test_missing_required_parameter_is_named(temp_component):
    class NeedsPath:
        def __init__(self, path: str, k: int = 1) -> None:
            self.path = path

    temp_component("metric", "zz_needs_path", NeedsPath)
    with pytest.raises(ParameterError, match="needs parameter\\(s\\) path"):
        create("metric", "zz_needs_path")


def test_unknown_name_suggests_and_says_how_to_list():
    known = [e for e in INDEX if e.kind == "generator"]
    if not known:
        pytest.skip("no generator registered yet")
    name = known[0].name
    typo = name[:-1] + ("x" if name[-1] != "x" else "y")
    with pytest.raises(UnknownComponentError) as err:
        create("generator", typo)
    msg = str(err.value)
    assert f"Did you mean '{name}'" in msg and "zoo list generator" in msg and "Unknown generator" in msg


def test_index_is_in_sync_with_the_code():
    expected = registry.render_index(registry.builtin_index())
    actual = (ROOT / "registry.yaml").read_text(encoding="utf-8")
    assert actual == expected, "registry.yaml is out of date: run 'python tools/gen_registry.py' and commit it"


def test_index_entries_are_complete():
    for e in INDEX:
        assert e.kind in KINDS
        assert e.summary, f"{e.kind}/{e.name} has no docstring summary"
        assert ":" in e.target and e.target.startswith("zoo.")
        for p in e.params:
            assert p.type, f"{e.kind}/{e.name}.{p.name} has no type annotation"
            assert p.type != "Any" or p.name.startswith("_"), f"{e.kind}/{e.name}.{p.name} is not annotated"


@pytest.mark.parametrize("entry", INDEX, ids=[f"{e.kind}/{e.name}" for e in INDEX])
def test_every_component_builds_from_defaults(entry, shared_dir_or_none):
    """A new component is tested the day it registers: it builds on the CPU from its defaults."""
    params = REQUIRED_TEST_PARAMS.get((entry.kind, entry.name), {})
    params = {k: (v(shared_dir_or_none) if callable(v) else v) for k, v in params.items()}
    missing = [k for k, v in params.items() if v is None]
    if missing:
        pytest.skip(f"{entry.kind}/{entry.name} needs {', '.join(missing)}, which come from ../shared (absent here)")
    obj = create(entry.kind, {"name": entry.name, **params})
    assert obj is not None
    assert getattr(registry.get(entry.kind, entry.name), "__zoo_name__", None) == entry.name
    if hasattr(obj, "parameters") and callable(obj.parameters):
        for p in obj.parameters():
            assert p.device.type == "cpu"


def test_list_components_filters():
    all_names = zoo.list_components()
    assert len(all_names) == len(INDEX)
    for kind in KINDS:
        assert all(e.kind == kind for e in entries(kind))
    gan = zoo.list_components(pattern="*gan*")
    assert all("gan" in n for n in gan)


def _run(code: str, **env) -> subprocess.CompletedProcess:
    import os

    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full_env, cwd=ROOT
    )


def test_listing_does_not_import_torch():
    out = _run(
        """
        import sys
        from typer.testing import CliRunner
        from zoo.cli.main import app
        result = CliRunner().invoke(app, ["list"])
        assert result.exit_code == 0, result.output
        print("TORCH" if "torch" in sys.modules else "NOTORCH")
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("NOTORCH")


def test_building_imports_only_the_components_module():
    by_module: dict[str, list] = {}
    for e in INDEX:
        by_module.setdefault(e.module, []).append(e)
    if len(by_module) < 2:
        pytest.skip("needs components in at least two modules")
    first = next(iter(by_module.values()))[0]
    others = [m for m in by_module if m != first.module]
    out = _run(
        f"""
        import sys, zoo.registry as r
        r.get({first.kind!r}, {first.name!r})
        print([m for m in {others!r} if m in sys.modules])
        """
    )
    assert out.returncode == 0, out.stderr
    imported = eval(out.stdout.strip().splitlines()[-1])
    # a component may import the shared modules it is built from, never the whole zoo
    assert len(imported) < len(others), f"building {first.name} imported every other component module: {imported}"


def test_entry_point_plugin_appears_in_list_and_builds(tmp_path: Path):
    pkg = tmp_path / "zoo_plugin_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            '''
            from zoo.registry import register

            @register("metric", "plugin_pixel_count", paper="Plugin et al. 2026")
            class PixelCount:
                """Count pixels (a plugin metric)."""
                higher_is_better = True
                needs_reference = False

                def __init__(self, scale: float = 1.0) -> None:
                    self.scale = scale
            '''
        )
    )
    dist = tmp_path / "zoo_plugin_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: zoo-plugin-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[enhance_zoo.components]\ndemo = zoo_plugin_demo\n")
    out = _run(
        """
        from typer.testing import CliRunner
        from zoo.cli.main import app
        import zoo
        result = CliRunner().invoke(app, ["list", "metric", "--format", "names"])
        print(result.output)
        m = zoo.create("metric", {"name": "plugin_pixel_count", "scale": 2})
        print("SCALE", m.scale)
        """,
        PYTHONPATH=str(tmp_path),
    )
    assert out.returncode == 0, out.stderr
    assert "metric/plugin_pixel_count" in out.stdout
    assert "SCALE 2.0" in out.stdout


def test_compat_defines_missing_schemas_only_when_needed():
    out = _run(
        """
        from zoo._compat import ensure_torchvision_importable
        state = ensure_torchvision_importable()
        import torchvision, timm
        import torch
        print(state, hasattr(torch.ops.torchvision, "nms"))
        """
    )
    assert out.returncode == 0, out.stderr
    state, has_nms = out.stdout.split()
    assert state in {"schemas", "extension"}
    assert has_nms == "True"


def test_compat_does_nothing_when_the_extension_loads():
    out = _run(
        """
        import torch, zoo._compat as c
        from pathlib import Path
        calls = []
        c._extension_path = lambda: Path("/fake/_C.so")
        torch.ops.load_library = lambda p: calls.append(p)
        state = c.ensure_torchvision_importable()
        print(state, c._library is None, calls)
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["extension", "True"]


def test_the_wheel_ships_the_index(tmp_path):
    """A regular (non-editable) install finds registry.yaml inside the package."""
    import zipfile

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next(tmp_path.glob("enhance_zoo-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "zoo/registry.yaml" in names
        assert zf.read("zoo/registry.yaml").decode() == (ROOT / "registry.yaml").read_text(encoding="utf-8")
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        # the shipped pretrained models travel in the wheel, byte for byte
        from zoo.pretrained import list_pretrained

        for model in list_pretrained():
            for f in ("generator.pt", "manifest.yaml", "recipe.yaml"):
                assert zf.read(f"zoo/pretrained/{model.name}/{f}") == (model.folder / f).read_bytes()
    assert "zoo = zoo.cli.main:main" in entry_points
