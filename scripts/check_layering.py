#!/usr/bin/env python3
"""Checks that every module imports only modules below it in docs/ARCHITECTURE.md's layer table.

The table is the fenced block after the line "<!-- layers -->": one line per layer, bottom first,
"N: Module Module ...". A module of layer N may import modules of layers < N and the outside world
(Foundation, the system, the package dependencies). Every folder of Sources/ must be in the table.
Exits 1 naming each offending import (file:line), 0 otherwise. Run by scripts/test.sh.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUTSIDE = {"Foundation", "FoundationXML", "FoundationEssentials", "Glibc", "Darwin", "Dispatch", "XCTest",
           "ArgumentParser", "Yams", "ZIPFoundation", "Numerics", "RealModule"}


def layers():
    text = (ROOT / "docs/ARCHITECTURE.md").read_text()
    block = text.split("<!-- layers -->", 1)[1].split("```", 2)[1]
    table = {}
    for line in block.strip().splitlines():
        m = re.match(r"\s*(\d+):\s*(.*)", line)
        if m:
            for name in m.group(2).split():
                table[name] = int(m.group(1))
    return table


def main():
    table = layers()
    problems = []
    for folder in sorted(p for p in (ROOT / "Sources").iterdir() if p.is_dir()):
        module = folder.name
        if module not in table:
            problems.append(f"Sources/{module}: not in docs/ARCHITECTURE.md's layer table")
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix not in (".swift", ".c", ".h"):
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                m = re.match(r"\s*(?:@_exported\s+|@testable\s+)?import\s+(?:(?:struct|class|enum|func)\s+)?(\w+)", line)
                if not m or m.group(1) in OUTSIDE:
                    continue
                other = m.group(1)
                if "@_exported" in line:
                    problems.append(f"{path.relative_to(ROOT)}:{number}: re-exports {other} (import it where used)")
                if other not in table:
                    problems.append(f"{path.relative_to(ROOT)}:{number}: imports {other}, which is not in the layer table")
                elif table[other] >= table[module]:
                    problems.append(f"{path.relative_to(ROOT)}:{number}: {module} (layer {table[module]}) imports "
                                    f"{other} (layer {table[other]}): imports must point to lower layers")
    for p in problems:
        print(p)
    print(f"check_layering: {len(table)} modules in {len(set(table.values()))} layers, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
