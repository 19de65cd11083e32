#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check that the doc examples of a crate that is not the kernel crate run as KUnit cases.

The kernel runs the doc examples of its `kernel` crate as KUnit cases (rust_doctests_kernel),
but not those of other crates, such as src/vhost_task.rs. So each of its examples has a twin in
tests/kunit/rust_cases.rs, `fn doc_example_of_<item>() -> Result`, whose body is the example
(hidden `# ` lines shown, `vhost_task_rust::` as `crate::`). This fails, with a diff, when an
example and its twin differ, or a twin is missing.

    doc-examples.py SOURCE.rs CASES.rs
"""
import difflib
import re
import sys


def examples(path):
    """(item name, example lines) for every ``` block in the doc comments of `path`."""
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
            text = re.sub(r"^# ?", "", text) if text.startswith("#") and not text.startswith("#[") else text
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


def main():
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
