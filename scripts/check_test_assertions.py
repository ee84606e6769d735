#!/usr/bin/env python3
"""Lists XCTest test functions that cannot fail on a wrong value: bodies with no XCTAssert*/XCTUnwrap/XCTFail
and no call of a helper that asserts. Run by scripts/test.sh; exits 1 (naming each function) if any is found.

A helper is any function declared under Tests/ whose body asserts, directly or through another helper.
`throw XCTSkip(...)` does not count: a test that can only skip is reported too.
"""
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
ASSERT = re.compile(r"\bXCT(Assert\w*|Unwrap|Fail)\s*\(")
FUNC = re.compile(r"\bfunc\s+([A-Za-z_]\w*)\s*(<[^>]*>)?\s*\(")


def strip_comments_and_strings(text):
    """Blank out comments and string literals (keeping newlines and length) so braces in them are ignored."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif text.startswith('"""', i):
            j = text.find('"""', i + 3)
            j = n if j < 0 else j + 3
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"' and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(" " * (j - i)); i = j
        else:
            out.append(text[i]); i += 1
    return "".join(out)


def matching(text, start, opening, closing):
    """Index of the bracket closing the one at `start` (or the end of the text)."""
    depth, i = 0, start
    while i < len(text):
        if text[i] == opening:
            depth += 1
        elif text[i] == closing:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return i


def calls(names):
    """A pattern matching a call of any of `names` (None when there are none)."""
    return re.compile(r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\s*[(<{]") if names else None


def functions(path):
    """(name, body, line) of every function with a body in the file."""
    raw = open(path, encoding="utf-8").read()
    text = strip_comments_and_strings(raw)
    result = []
    for m in FUNC.finditer(text):
        i = matching(text, m.end() - 1, "(", ")")   # end of the parameter list
        open_brace = text.find("{", i)
        if open_brace < 0:
            continue
        # a protocol requirement has no body before the next declaration
        between = text[i + 1:open_brace]
        if "func " in between or "\n\n" in between:
            continue
        j = matching(text, open_brace, "{", "}")
        result.append((m.group(1), text[open_brace:j + 1], text.count("\n", 0, m.start()) + 1))
    return result


def main():
    files = []
    for base, _, names in os.walk(os.path.join(ROOT, "Tests")):
        files += [os.path.join(base, f) for f in names if f.endswith(".swift")]
    funcs = [(path, name, body, line) for path in sorted(files) for name, body, line in functions(path)]
    helpers = {name for _, name, body, _ in funcs if ASSERT.search(body) and not name.startswith("test")}
    while True:  # functions that call a helper are helpers too
        call = calls(helpers)
        more = {name for _, name, body, _ in funcs
                if not name.startswith("test") and name not in helpers and call and call.search(body)}
        if not more:
            break
        helpers |= more
    call = calls(helpers)
    tests = [(p, n, b, l) for p, n, b, l in funcs if n.startswith("test")]
    bad = [(p, n, l) for p, n, b, l in tests if not ASSERT.search(b) and not (call and call.search(b))]
    for p, n, l in bad:
        print("%s:%d: %s has no assertion that can fail (no XCTAssert/XCTUnwrap/XCTFail, no asserting helper)"
              % (os.path.relpath(p, ROOT), l, n))
    print("check_test_assertions: %d test functions, %d asserting helpers, %d without an assertion"
          % (len(tests), len(helpers), len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
