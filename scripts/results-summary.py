#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Summarise the results of a test run as a Markdown page.

    results-summary.py RESULTS.txt > docs/results.md

RESULTS.txt is what scripts/test.sh writes, build/log/results.txt: one line a result,
"PASS name", "FAIL name" or "SKIP name (why)". A name is SUITE[-TREE].CASE: the suite
(build-rust, kunit-c, doctests-debug, lint, stress-debug-c, e2e-modv, ...), the tree when it
is not the default one (kunit-rust-7.3.vhost_task.case), then the case. The page has the
passes, failures and skips per suite, tree and implementation, the totals per tree and
implementation, every failure by name, and the reasons of the skips. A line of any other
shape is an error: the counts would not be the run's.
"""
import re
import sys

DEFAULT_TREE = "6.12"

# The suite kinds in the order of scripts/test.sh's all_suites, and the kernel variants in the
# order it builds them. The variant names the implementation: debug is the Rust kernel with
# KASAN, lockdep and kmemleak, debug-c its C twin, modv the Rust kernel with MODVERSIONS.
KINDS = ["build", "boot", "kunit", "doctests", "e2e", "stress", "lockdep", "lint"]
VARIANTS = {"rust": "Rust", "c": "C", "debug": "Rust", "debug-c": "C", "modv": "Rust"}
VARIANT_ORDER = ["rust", "c", "debug", "debug-c", "modv"]

LINE = re.compile(r"^(PASS|FAIL|SKIP) (\S+)(?: (.*))?$")
NAME = re.compile(
    r"^(?P<kind>[a-z0-9]+)(?:-(?P<variant>debug-c|rust|c|debug|modv|[a-z][a-z0-9]*?))?"
    r"(?:-(?P<tree>\d+\.\d+))?\.(?P<case>.+)$"
)


def parse(path):
    """[(word, suite, tree, implementation, name, note)] of the results file."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            m = LINE.match(line)
            name = NAME.match(m.group(2)) if m else None
            if not name:
                sys.exit(f"{path}:{n}: not a result line: {line!r}")
            word, full, note = m.group(1), m.group(2), m.group(3) or ""
            kind, variant = name.group("kind"), name.group("variant")
            suite = kind + (f"-{variant}" if variant else "")
            tree = name.group("tree") or DEFAULT_TREE
            if kind == "lint":
                # The lint suite checks the code with the Rust kernel's config (test.sh).
                impl = "Rust"
            elif suite == "e2e-unit":
                # The e2e crate's own tests run on the host, on no kernel.
                impl, tree = "-", "host"
            else:
                impl = VARIANTS.get(variant, "-")
            rows.append((word, suite, tree, impl, full, note))
    return rows


def split_name(full):
    """("kunit-rust-7.3", "vhost_task.case") of a result's name."""
    m = NAME.match(full)
    return full[: m.start("case") - 1], m.group("case")


def tree_key(tree):
    """Trees oldest first, then anything that is not a tree."""
    try:
        return (0, tuple(int(p) for p in tree.split(".")))
    except ValueError:
        return (1, (tree,))


def suite_key(suite):
    """A tree's suites kernel by kernel (Rust, C, debug, ...), each in the order test.sh runs
    them; the suites of no kernel variant (lint) last."""
    kind, _, variant = suite.partition("-")
    return (
        VARIANT_ORDER.index(variant) if variant in VARIANT_ORDER else len(VARIANT_ORDER),
        variant,
        KINDS.index(kind) if kind in KINDS else len(KINDS),
        kind,
    )


def impl_key(impl):
    return {"Rust": 0, "C": 1}.get(impl, 2)


def count(rows, key):
    """{key(row): [passed, failed, skipped]}."""
    out = {}
    for row in rows:
        c = out.setdefault(key(row), [0, 0, 0])
        c[["PASS", "FAIL", "SKIP"].index(row[0])] += 1
    return out


def table(header, lines):
    out = ["| " + " | ".join(header) + " |"]
    out.append("|" + "|".join("---:" if h in ("passed", "failed", "skipped") else "---" for h in header) + "|")
    # A "|" in a cell (a skip's reason) would end it.
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in line) + " |" for line in lines]
    return out


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__.strip())
    path = sys.argv[1]
    rows = parse(path)
    if not rows:
        sys.exit(f"{path}: no results")
    passed, failed, skipped = (sum(r[0] == w for r in rows) for w in ("PASS", "FAIL", "SKIP"))

    out = [
        "<!-- Written by scripts/results-summary.py from build/log/results.txt: do not edit. -->",
        "# Results of `make test`",
        "",
        "[README](../README.md) · [testing](testing.md) · [past runs](history.md)",
        "",
        "The results of one full run of `make test` (`scripts/test.sh all all-7.3`), counted by",
        "`scripts/results-summary.py build/log/results.txt`. A skip is neither a pass nor a",
        "failure: the case cannot run on that kernel, for the reason given below. What each suite",
        "checks: [testing](testing.md).",
        "",
        f"**{passed} passed, {failed} failed, {skipped} skipped** ({len(rows)} results)",
        "",
        "## Per suite",
        "",
    ]
    per_suite = count(rows, lambda r: (r[2], r[1], r[3]))
    lines = [
        (t, f"`{s}`", i, *c)
        for (t, s, i), c in sorted(per_suite.items(), key=lambda kv: (tree_key(kv[0][0]), suite_key(kv[0][1])))
    ]
    out += table(["tree", "suite", "implementation", "passed", "failed", "skipped"], lines)

    out += ["", "## Per tree and implementation", ""]
    per_impl = count(rows, lambda r: (r[2], r[3]))
    lines = [
        (t, i, *c)
        for (t, i), c in sorted(per_impl.items(), key=lambda kv: (tree_key(kv[0][0]), impl_key(kv[0][1])))
    ]
    lines.append(("**total**", "", f"**{passed}**", f"**{failed}**", f"**{skipped}**"))
    out += table(["tree", "implementation", "passed", "failed", "skipped"], lines)

    if failed:
        out += ["", "## Failed", ""]
        out += [f"- `{r[4]}`" + (f" {r[5]}" if r[5] else "") for r in rows if r[0] == "FAIL"]

    if skipped:
        out += ["", "## Skipped, and why", ""]
        # One line a case and reason, with the suites it skipped in.
        skips = {}
        for r in rows:
            if r[0] == "SKIP":
                why = r[5][1:-1] if r[5].startswith("(") and r[5].endswith(")") else r[5]
                prefix, case = split_name(r[4])
                skips.setdefault((case, why or "no reason given"), []).append(prefix)
        lines = [
            (f"`{case}`", ", ".join(f"`{p}`" for p in prefixes), why)
            for (case, why), prefixes in skips.items()
        ]
        out += table(["case", "in", "why"], lines)

    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
