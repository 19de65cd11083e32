#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Fail when a page names an item of the project's Rust code that does not exist.

The items are those of the user-worker abstraction (rust/kernel/task/user_worker.rs) and of the
vhost crate (src/*.rs): types, traits, their methods and variants, macros, functions and
modules. A page names one as `Type::member`, `module::Item` or `macro!`; each such name whose
type or module is one of the project's must exist, so that a renamed or removed item cannot
linger in README.md, docs/, BENCHMARKS.md or Documentation/rust/.

On the abstraction's own page, Documentation/rust/user_worker.rst, a bare ``name()`` must also
be a member of one of the project's types, or a function or macro of the kernel tree KDIR (a C
function such as ``copy_process()``).

    doc-names.py ROOT [KDIR]
"""
import glob
import os
import re
import subprocess
import sys

# A type of the project is a type defined in its sources; a name that looks like one of them
# (a typo, or a type that was removed) is checked too.
PROJECT_TYPE = re.compile(r"^(New)?(User|Vhost)\w*$|^WorkerContext$|^Wait$")


def items(root):
    """(types: {name: {members}}, modules: {name: {items}}, macros: {names})."""
    types, modules, macros = {}, {}, set()
    sources = [os.path.join(root, "rust/kernel/task/user_worker.rs")]
    sources += sorted(glob.glob(os.path.join(root, "src/*.rs")))
    for path in sources:
        module = os.path.splitext(os.path.basename(path))[0]
        text = open(path).read()
        # Only code: doc comments and comments name things, they do not define them.
        code = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("//"))
        names = modules.setdefault(module, set())
        for kind, name in re.findall(r"\b(struct|enum|trait|type|fn|mod|const|static)\s+(\w+)", code):
            names.add(name)
            if kind in ("struct", "enum", "trait", "type"):
                types.setdefault(name, set())
        macros.update(re.findall(r"macro_rules!\s+(\w+)", code))
        names.update(re.findall(r"macro_rules!\s+(\w+)", code))
        # Members: the fns of each impl or trait block, and the variants of each enum.
        for m in re.finditer(r"^(impl\b[^{]*?(\w+)(?:<[^{]*>)?\s*(?:where[^{]*)?|(?:pub(?:\([^)]*\))? )?trait (\w+)[^{]*|(?:pub(?:\([^)]*\))? )?enum (\w+)[^{]*)\{", code, re.M):
            owner = m.group(2) or m.group(3) or m.group(4)
            depth, i = 1, m.end()
            while depth and i < len(code):
                depth += {"{": 1, "}": -1}.get(code[i], 0)
                i += 1
            body = code[m.end() : i - 1]
            members = types.setdefault(owner, set())
            members.update(re.findall(r"\bfn\s+(\w+)", body))
            members.update(re.findall(r"\btype\s+(\w+)", body))
            if m.group(4):
                members.update(re.findall(r"^\s*(\w+)\s*[,=(]", body, re.M))
    return types, modules, macros


def in_kernel(kdir, name):
    """Whether the kernel tree has a function, macro or system call `name`."""
    pattern = rf"\b{name}\s*\(|SYSCALL_DEFINE[0-6]\({name}\b"
    dirs = [os.path.join(kdir, d) for d in ("include", "kernel", "mm", "fs", "rust")]
    r = subprocess.run(["grep", "-rqE", "--include=*.h", "--include=*.c", "--include=*.rs", pattern] + dirs)
    return r.returncode == 0


def main():
    root = sys.argv[1]
    kdir = sys.argv[2] if len(sys.argv) > 2 else None
    types, modules, macros = items(root)
    members = set().union(*types.values()) | set().union(*modules.values())
    pages = [os.path.join(root, "README.md"), os.path.join(root, "BENCHMARKS.md")]
    pages += sorted(glob.glob(os.path.join(root, "docs/*.md")))
    pages += sorted(glob.glob(os.path.join(root, "Documentation/rust/*.rst")))
    bad = 0
    for page in pages:
        for n, line in enumerate(open(page), 1):
            for owner, member in re.findall(r"\b([A-Za-z_]\w*)::([A-Za-z_]\w*)", line):
                where = f"{os.path.relpath(page, root)}:{n}"
                if owner in modules and owner not in ("kernel", "core", "bindings"):
                    if member not in modules[owner]:
                        print(f"{where}: {owner}::{member}: no such item in {owner}")
                        bad += 1
                elif owner in types or PROJECT_TYPE.match(owner):
                    if owner not in types:
                        print(f"{where}: {owner}: no such type")
                        bad += 1
                    elif member not in types[owner]:
                        print(f"{where}: {owner}::{member}: no such member of {owner}")
                        bad += 1
            if kdir and page.endswith("Documentation/rust/user_worker.rst"):
                for name in re.findall(r"``(\w+)\(\)``", line):
                    if name not in members and not in_kernel(kdir, name):
                        print(f"{os.path.relpath(page, root)}:{n}: {name}(): neither an item of the project nor of the kernel")
                        bad += 1
            for name in re.findall(r"`(\w+)!", line):
                if re.match(r"^(new_user_worker|\w*user_worker\w*|\w*vhost\w*)$", name) and name not in macros:
                    print(f"{os.path.relpath(page, root)}:{n}: {name}!: no such macro")
                    bad += 1
    if bad:
        print(f"{bad} names of items that do not exist (scripts/doc-names.py)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
