"""Regenerate registry.yaml from the code: python tools/gen_registry.py [--check]."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from zoo.registry import builtin_index, render_index  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if registry.yaml is out of date")
    args = parser.parse_args()
    text = render_index(builtin_index())
    path = ROOT / "registry.yaml"
    if args.check:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            print("registry.yaml is out of date: run 'python tools/gen_registry.py'", file=sys.stderr)
            return 1
        print("registry.yaml is up to date")
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({text.count('- kind:')} components)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
