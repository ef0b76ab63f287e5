"""Mutation testing of the core numeric modules with mutmut 3 (``make mutate``; not part of CI).

Each group mutates a few modules and runs only the fast tests that guard them (mutmut then picks, per mutant,
the tests that call the mutated function). A group runs in its own scratch copy of the tree under
``build/mutate/<group>`` so the work tree is never touched, and prints its kill rate::

    python tools/mutate.py                      # every group
    python tools/mutate.py objectives editing_exposure
    python tools/mutate.py --list               # the groups, their modules and tests
    python tools/mutate.py --survivors metrics  # the surviving mutants of a finished run, with their diffs

Kill rate = (killed + timeout) / (mutants run), where "run" excludes skipped ones; a mutant no test reaches counts
as alive. The survivors judged equivalent are listed, with the reason,
in docs/testing.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutate"

# group -> (modules to mutate, fast tests that guard them); NAMES narrows a group to some functions
# (mutmut's mutant-name globs, e.g. one class's methods in a file that holds much else)
GROUPS: dict[str, tuple[list[str], list[str]]] = {
    "objectives": (
        ["zoo/losses/adversarial.py"],
        ["tests/test_known_objectives.py", "tests/test_losses_adversarial.py"],
    ),
    # the RL reward: the weighted adversarial rewards minus the weighted per-image content losses
    "reward": (
        ["zoo/train/adversarial.py"],
        [
            "tests/test_rl_trainer.py::test_reward_is_weighted_rewards_minus_weighted_penalties",
            "tests/test_known_objectives.py::test_reward_penalty_adds_the_mean_over_the_local_patches",
        ],
    ),
    "rl_algorithms": (
        ["zoo/rl/a2c.py", "zoo/rl/ppo.py", "zoo/rl/reinforce.py", "zoo/rl/common.py"],
        ["tests/test_rl_bandit.py", "tests/test_rl_algorithms.py"],
    ),
    "editing_exposure": (["zoo/editing/exposure.py"], ["tests/test_known_editing.py"]),
    "editing_kosugi": (
        ["zoo/editing/kosugi.py"],
        [
            "tests/test_known_editing.py",
            "tests/test_editing_parity.py::test_parity_64_all_rows",
            "tests/test_editing_software.py::test_dehaze_fused_fast_path_agrees_with_autograd_path",
            "tests/test_editing_software.py::test_top_indices_threshold_path_selects_the_top_values",
        ],
    ),
    "editing_color": (
        ["zoo/editing/color.py", "zoo/editing/fused.py"],
        ["tests/test_known_editing.py", "tests/test_editing_parity.py::test_parity_64_all_rows"],
    ),
    "content_losses": (["zoo/losses/content.py"], ["tests/test_known_metrics.py", "tests/test_contracts_per_kind.py"]),
    "metrics": (
        ["zoo/metrics/fullref.py", "zoo/metrics/nr.py"],
        ["tests/test_known_metrics.py", "tests/test_metrics.py"],
    ),
}


NAMES: dict[str, list[str]] = {
    # the numeric parts (the constructor's weight lookup and error sentences are tested in test_losses_sfp.py)
    "content_losses": [
        "zoo.losses.content.x_check_pair__mutmut_*",
        "zoo.losses.content.xǁ_PixelLossǁ*",
        "zoo.losses.content.xǁMSEǁ*",
        "zoo.losses.content.xǁL1ǁ*",
        "zoo.losses.content.xǁSelfFeaturePreservingǁ_prepare__mutmut_*",
        "zoo.losses.content.xǁSelfFeaturePreservingǁfeatures__mutmut_*",
        "zoo.losses.content.xǁSelfFeaturePreservingǁper_image__mutmut_*",
        "zoo.losses.content.xǁSelfFeaturePreservingǁforward__mutmut_*",
        "zoo.losses.content.x__truncate__mutmut_*",
        "zoo.losses.content.xǁ_Hookedǁ*",
    ],
    "reward": [
        "zoo.train.adversarial.xǁDiscriminatorSideǁreward__mutmut_*",
        "zoo.train.adversarial.xǁContentTermsǁper_image__mutmut_*",
        "zoo.train.adversarial.xǁContentTermsǁ_value__mutmut_*",
    ],
}


def _config(modules: list[str], tests: list[str]) -> str:
    lines = [
        "[tool.mutmut]",
        'source_paths = ["zoo"]',
        f"only_mutate = {json.dumps(modules)}",
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-x", "-q"]',
        'also_copy = ["registry.yaml"]',
        'process_isolation = "forkserver"',  # torch is not fork-safe after the stats run
        "use_git_change_detection = false",
        "timeout_multiplier = 5.0",
    ]
    return "\n".join(lines) + "\n"


def prepare(group: str) -> Path:
    """A scratch copy of the package and tests with a pyproject that configures mutmut for ``group``."""
    modules, tests = GROUPS[group]
    work = WORK / group
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "zoo", work / "zoo", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    shutil.copy2(ROOT / "registry.yaml", work / "registry.yaml")
    text = (ROOT / "pyproject.toml").read_text()
    text = text.split("[tool.mutmut]")[0]  # the group's own config replaces any shared one
    (work / "pyproject.toml").write_text(text + "\n" + _config(modules, tests))
    return work


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ZOO_SHARED_DIR", str(ROOT.parent / "shared"))
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def mutmut(work: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("mutmut")
    return subprocess.run([str(exe), *args], cwd=work, env=_env(), text=True, capture_output=True)


def run(group: str, max_children: int) -> dict:
    work = prepare(group)
    done = mutmut(work, "run", "--max-children", str(max_children), *NAMES.get(group, []))
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
        raise SystemExit(f"mutmut run failed for group {group!r} (exit {done.returncode}).")
    return summary(group)


def summary(group: str) -> dict:
    """Counts per status from mutmut's result files; kill rate over the mutants that ran."""
    from collections import Counter

    from mutmut.stats import status_by_exit_code

    work = WORK / group
    counts: Counter = Counter()
    for meta in (work / "mutants").rglob("*.meta"):
        for code in json.loads(meta.read_text()).get("exit_code_by_key", {}).values():
            counts[status_by_exit_code[code].replace(" ", "_")] += 1
    stats = {"group": group, **counts}
    # mutants outside the group's NAMES never run ("not checked"); uncovered ones ("no tests") count as alive
    tested = sum(counts.values()) - counts["skipped"] - counts["not_checked"]
    killed = counts["killed"] + counts["timeout"]
    stats.update(tested=tested, killed=counts["killed"], timeout=counts["timeout"], survived=counts["survived"])
    stats["kill_rate"] = killed / tested if tested else 0.0
    (work / "summary.json").write_text(json.dumps(stats, indent=2))
    return stats


def survivors(group: str) -> list[str]:
    work = WORK / group
    out = mutmut(work, "results").stdout
    return [line.split(":")[0].strip() for line in out.splitlines() if line.strip().endswith(": survived")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("groups", nargs="*", help=f"groups to run (default: all): {', '.join(GROUPS)}")
    ap.add_argument("--list", action="store_true", help="list the groups and exit")
    ap.add_argument("--survivors", action="store_true", help="show the survivors of finished runs (no new run)")
    ap.add_argument("--max-children", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    args = ap.parse_args(argv)
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        ap.error(f"unknown group(s) {unknown}; the groups are {', '.join(GROUPS)}")
    groups = args.groups or list(GROUPS)
    if args.list:
        for g in groups:
            print(f"{g}: mutates {', '.join(GROUPS[g][0])}; runs {', '.join(GROUPS[g][1])}")
        return 0
    total = {"killed": 0, "timeout": 0, "survived": 0, "tested": 0}
    for g in groups:
        if args.survivors:
            for name in survivors(g):
                print(mutmut(WORK / g, "show", name).stdout)
            continue
        s = run(g, args.max_children)
        for k in total:
            total[k] += s.get(k, 0)
        print(
            f"{g}: {s['killed'] + s.get('timeout', 0)} of {s['tested']} mutants killed "
            f"({100 * s['kill_rate']:.1f}%), {s['survived']} survived, {s.get('no_tests', 0)} not covered",
            flush=True,
        )
    if not args.survivors and len(groups) > 1:
        tested = total["tested"]
        rate = (total["killed"] + total["timeout"]) / tested if tested else 0.0
        print(f"all: {total['killed'] + total['timeout']} of {tested} killed ({100 * rate:.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
