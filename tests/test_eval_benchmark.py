"""The benchmark harness (tools/benchmark.py): ratios, missing scripts, the markdown table."""

from __future__ import annotations

import importlib.util

from .conftest import ROOT

spec = importlib.util.spec_from_file_location("zoo_benchmark_harness", ROOT / "tools" / "benchmark.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


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


def test_missing_area_script_is_reported_not_faked(monkeypatch):
    monkeypatch.setitem(bench.AREAS, "ghost", "tools/bench_ghost_that_does_not_exist.py")
    rows = bench.run_area("ghost", quick=True, threads=1, timeout=60)
    assert len(rows) == 1 and rows[0]["value"] is None and "missing" in rows[0]["notes"]


def test_render_has_machine_and_command():
    rows = [{"benchmark": "niqe", "case": "a|b", "value": 0.2, "unit": "s", "ratio": "1.00"}]
    text = bench.render(rows, bench.machine_description(1), "python tools/benchmark.py --quick")
    assert "- machine:" in text and "`python tools/benchmark.py --quick`" in text
    assert "| niqe | a/b | 0.2 | s | 1.00 |" in text
