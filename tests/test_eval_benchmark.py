"""The benchmark harness (tools/benchmark.py): ratios, judged targets, the markdown block, and the tables in the docs.

Every benchmark table in the README and docs/ must be the harness's own output: its header, its cell formats, and
a ``met`` column that agrees with the value and the target (the harness judges it in each run; nobody writes it).
"""

from __future__ import annotations

import importlib.util
import re

import pytest

from .conftest import ROOT


def _load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load("zoo_benchmark_harness", "tools/benchmark.py")
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NUMBER = re.compile(r"^-?\d+(\.\d+)?(e[-+]?\d+)?$")


def test_ratios_compare_rows_of_one_benchmark_and_unit():
    rows = [
        {"benchmark": "gen", "unit": "ms", "value": 200.0},
        {"benchmark": "gen", "unit": "ms", "value": 100.0},
        {"benchmark": "gen", "unit": "MB", "value": 50},
        {"benchmark": "rl", "unit": "ms", "value": 10},
        {"benchmark": "gen", "unit": "ms", "value": None},
        {"benchmark": "gen", "unit": "ms", "value": 1.0, "ratio": "given"},
    ]
    bench.add_ratios(rows)
    assert [r["ratio"] for r in rows] == ["1.00", "0.50", "1.00", "1.00", "", "given"]


@pytest.mark.parametrize(
    ("value", "target", "met"),
    [
        (1.097, "<= 1.10", "yes"),
        (1.15, "<= 1.10", "no"),  # the README's old hand-written "met" that did not reproduce
        (2000, ">= 2000", "yes"),
        (1999.9, ">= 2000", "no"),
        (2.0, "< 2", "no"),
        (1.99, "< 2", "yes"),
        (0, "== 0", "yes"),
        (3, "> 3", "no"),
        (None, "< 2", "-"),  # skipped or failed: nothing to judge, and it does not pass
        (float("nan"), "< 2", "-"),
        (5.0, "", ""),
    ],
)
def test_judge_decides_from_the_measured_value(value, target, met):
    assert bench.judge(value, target) == met


def test_judge_refuses_a_target_it_cannot_read():
    with pytest.raises(ValueError, match="not a comparison with a number"):
        bench.judge(1.0, "about 2")


def test_missing_area_script_is_reported_not_faked(monkeypatch):
    monkeypatch.setitem(bench.AREAS, "ghost", "tools/bench_ghost_that_does_not_exist.py")
    rows = bench.run_area("ghost", quick=True, threads=1, timeout=60)
    assert len(rows) == 1 and rows[0]["value"] is None and "missing" in rows[0]["notes"]


def test_render_has_machine_command_and_judged_met():
    rows = [
        {"benchmark": "niqe", "case": "a|b", "value": 0.2, "unit": "s", "ratio": "1.00", "target": "< 1"},
        # a script that claims "met" is overruled by the value
        {"benchmark": "gen", "case": "c", "value": 1.2, "unit": "x", "target": "<= 1.10", "met": "yes"},
    ]
    text = bench.render(rows, bench.machine_description(1, ("1.0 1.0 1.0", "2.0 2.0 2.0")), "python tools/benchmark.py")
    assert "- machine:" in text and "- reproduce: `python tools/benchmark.py`" in text
    assert "- load average (1, 5, 15 min): 1.0 1.0 1.0 before, 2.0 2.0 2.0 after" in text
    assert "| niqe | a/b | 0.2 | s | 1.00 | < 1 | yes |  |" in text
    assert "| gen | c | 1.2 | x |  | <= 1.10 | no |  |" in text
    (table,) = bench.parse_tables(text)
    assert [r["met"] for r in table] == ["yes", "no"]


def test_replace_block_rewrites_only_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    begin, end = bench.MARKERS["benchmark"]
    readme.write_text(f"# t\n\nbefore\n{begin}\nold table\n{end}\nafter\n", encoding="utf-8")
    bench.replace_block(readme, "new block\n")
    assert readme.read_text() == f"# t\n\nbefore\n{begin}\nnew block\n{end}\nafter\n"
    (tmp_path / "bare.md").write_text("no markers\n")
    with pytest.raises(SystemExit, match="no single <!-- benchmark:begin -->"):
        bench.replace_block(tmp_path / "bare.md", "x\n")


def _harness_tables():
    for path in DOCS:
        for table in bench.parse_tables(path.read_text(encoding="utf-8")):
            yield path, table


def test_every_benchmark_table_in_readme_and_docs_is_the_harness_format():
    seen = 0
    for path, table in _harness_tables():
        seen += 1
        assert table, f"{path.name}: a benchmark table without rows"
        for row in table:
            where = f"{path.name}: row {row.get('case')!r}"
            assert "_cells" not in row, f"{where}: {row['_cells']} cells, the harness writes {len(bench.COLUMNS)}"
            assert row["benchmark"] and row["case"] and row["unit"] is not None, where
            value = None if row["value"] == "-" else row["value"]
            assert value is None or NUMBER.match(value), f"{where}: value {row['value']!r} is not a number or -"
            assert row["ratio"] == "" or re.match(r"^\d+\.\d\d$", row["ratio"]), f"{where}: ratio {row['ratio']!r}"
            met = bench.judge(float(value) if value is not None else None, row["target"])
            assert row["met"] == met, (
                f"{where}: met says {row['met']!r}, but {row['value']} vs {row['target']!r} is {met!r}"
            )
            if value is None:
                assert row["notes"], f"{where}: no value and no reason in the notes"
    assert seen >= 1, "the README has no benchmark table in the harness format"
    # no hand-written benchmark table in another format
    for path in DOCS:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("| benchmark |"):
                assert line.strip() == bench.HEADER, (
                    f"{path.name}: a benchmark table not written by the harness: {line}"
                )


def test_each_benchmark_table_names_the_command_that_wrote_it():
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if line.strip() == bench.HEADER:
                head = "\n".join(lines[max(0, i - 8) : i])
                assert re.search(r"- reproduce: `python tools/(benchmark|gpu_check|bench_\w+)\.py[^`]*`", head), (
                    f"{path.name}: the benchmark table at line {i + 1} does not say which command wrote it"
                )


def test_readme_block_is_what_the_harness_wrote_to_docs_benchmarks():
    begin, end = bench.MARKERS["benchmark"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(begin) == 1 and readme.count(end) == 1
    block = readme.split(begin, 1)[1].split(end, 1)[0]
    assert block.strip() == (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8").strip(), (
        "README's benchmark block and docs/benchmarks.md differ: regenerate both with `make bench`"
    )
    assert "- reproduce: `python tools/benchmark.py" in block


def test_reference_comparison_uses_the_timing_fixture_case():
    """The "x the reference editor" row times the reference's own case: DICM 02 at 512 x 384, the random0 row."""
    from .conftest import shared_path

    reference = shared_path("reference", "kosugi")
    import json

    import numpy as np

    editing = _load("zoo_bench_editing", "tools/bench_editing.py")
    image, params, ref_s, meta = editing.reference_inputs()
    timing = json.loads((reference / "timings.json").read_text())
    assert ref_s == timing["full_edit"]["512"]["median_s"] and meta["reps"] == timing["full_edit"]["512"]["reps"]
    assert tuple(image.shape) == (1, 3, *timing["full_edit"]["512"]["shape_hw"])
    with np.load(reference / "editor_dicm_02_64.npz") as z:
        row = list(z["labels"]).index("random0")
        np.testing.assert_array_equal(params[0].numpy(), z["params"][row])
    assert float(image.min()) >= 0 and float(image.max()) <= 1
    assert np.allclose((image * 255).numpy(), np.round((image * 255).numpy()), atol=1e-3)  # 8-bit values, as cv2 gave
