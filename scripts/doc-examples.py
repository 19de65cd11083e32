#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check that doc examples that are not run as they stand match code that is.

The kernel runs the doc examples of its `kernel` crate as KUnit cases (rust_doctests_kernel),
but not those of other crates, such as src/vhost_task.rs. So each of its examples has a twin in
tests/kunit/rust_cases.rs, `fn doc_example_of_<item>() -> Result`, whose body is the example
(hidden `# ` lines shown, `vhost_task_rust::` as `crate::`). This fails, with a diff, when an
example and its twin differ, or a twin is missing.

    doc-examples.py SOURCE.rs CASES.rs

With --rst, every `.. code-block:: rust` of an rst page must be, line for line, one of the doc
examples of SOURCE.rs as rustdoc shows it (without its hidden `# ` lines): the kernel crate's
examples run as KUnit cases (rust_doctests_kernel), the page's copy does not.

    doc-examples.py --rst PAGE.rst SOURCE.rs
"""
import difflib
import re
import sys


def examples(path, hidden=True):
    """(item name, example lines) for every ``` block in the doc comments of `path`; with
    hidden=False, without the lines that rustdoc hides."""
    out = []
    lines = open(path).read().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^\s*(///|//!) ?```(rust)?$", lines[i])
        if not m:
            i += 1
            continue
        marker = m.group(1)
        code = []
        i += 1
        while not re.match(r"^\s*" + marker + r" ?```$", lines[i]):
            text = re.sub(r"^\s*" + marker + r" ?", "", lines[i])
            if text.startswith("#") and not text.startswith("#["):
                if not hidden:
                    i += 1
                    continue
                text = re.sub(r"^# ?", "", text)
            code.append(text.replace("vhost_task_rust::", "crate::"))
            i += 1
        # The item the doc comment belongs to.
        j = i + 1
        while j < len(lines) and lines[j].lstrip().startswith(("///", "#[")):
            j += 1
        m = re.search(r"\b(?:trait|struct|enum|fn)\s+(\w+)", lines[j] if j < len(lines) else "")
        name = m.group(1) if m and marker == "///" else "module"
        out.append((re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower(), code))
        i += 1
    return out


def twin(path, name):
    """The body of `fn doc_example_of_<name>()` in `path`, dedented, or None."""
    lines = open(path).read().splitlines()
    head = f"fn doc_example_of_{name}() -> Result {{"
    for i, line in enumerate(lines):
        if line.strip() == head:
            body = []
            for line in lines[i + 1 :]:
                if line == "}":
                    return body
                body.append(line[4:] if line.startswith("    ") else line.strip())
    return None


def rst_blocks(path):
    """The lines of every `.. code-block:: rust` of `path`, dedented."""
    out = []
    lines = open(path).read().splitlines()
    for i, line in enumerate(lines):
        if line.strip() != ".. code-block:: rust":
            continue
        code = []
        for line in lines[i + 2 :]:
            if line and not line.startswith("    "):
                break
            code.append(line[4:])
        while code and not code[-1]:
            code.pop()
        out.append(code)
    return out


def check_rst(page, src):
    """Every code block of `page` is an example of `src`."""
    known = [code for _, code in examples(src, hidden=False)]
    bad = 0
    for n, code in enumerate(rst_blocks(page), 1):
        if code in known:
            continue
        nearest = max(known, key=lambda k: difflib.SequenceMatcher(None, k, code).ratio())
        print(f"{page}: code block {n} is none of the doc examples of {src}; the nearest:")
        sys.stdout.writelines(
            l + "\n" for l in difflib.unified_diff(nearest, code, src, page, lineterm="")
        )
        bad += 1
    return 1 if bad else 0


def main():
    if sys.argv[1] == "--rst":
        return check_rst(*sys.argv[2:4])
    src, cases = sys.argv[1:3]
    bad = 0
    for name, code in examples(src):
        body = twin(cases, name)
        if body is None:
            print(f"{src}: the example of {name} has no twin `fn doc_example_of_{name}()` in {cases}")
            bad += 1
        elif body != code:
            print(f"{src}: the example of {name} differs from its twin in {cases}:")
            sys.stdout.writelines(
                l + "\n" for l in difflib.unified_diff(code, body, "example", "twin", lineterm="")
            )
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
