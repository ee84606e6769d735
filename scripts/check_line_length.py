#!/usr/bin/env python3
"""Checks that no line of the project's source (Sources/ and Tests/: .swift, .c, .h) is longer than 120 characters.

Swift files are formatted with swift-format and the checked-in .swift-format (120 columns, 4-space indentation,
no rewriting rules): `swift format -i -r Sources Tests`. Long string literals are split by hand ("..." + "...",
or a trailing backslash inside a multi-line literal). Run by scripts/test.sh; exits 1 listing each long line.
"""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIMIT = 120


def main():
    long_lines = []
    files = 0
    for top in ("Sources", "Tests"):
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in (".swift", ".c", ".h") or "Fixtures" in path.parts:
                continue
            files += 1
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if len(line) > LIMIT:
                    long_lines.append(f"{path.relative_to(ROOT)}:{number}: {len(line)} characters")
    for entry in long_lines:
        print(entry)
    print(f"check_line_length: {files} files, {len(long_lines)} lines over {LIMIT} characters")
    return 1 if long_lines else 0


if __name__ == "__main__":
    sys.exit(main())
