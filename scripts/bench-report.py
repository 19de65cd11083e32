#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Tables and chart of 'make bench' from the data scripts/bench.sh collects.

    bench-report.py DATA OUTDIR [--doc BENCHMARKS.md --doc-chart PNG]

DATA has one line per figure: "tree round clock variant name value unit", with
variant rust or c (older files without the tree field are read as 6.12), and
"#" comment lines: the settings of the run, and "# note TREE VARIANT TEXT"
lines that the kernels printed (which slab cache a task's objects are in).
Writes OUTDIR/table.md and OUTDIR/ratios.png and prints the table. With
--doc, also replaces the part of that file between the markers
"<!-- bench-report:begin -->" and "<!-- bench-report:end -->" with the
table, and copies the chart to --doc-chart.

For each tree, clock and figure: the median and range of each kernel over
the rounds; the Rust/C cost ratio of each round, Rust and C of the same
round paired (time, bytes, or the inverse of a rate, so that above 1 always
means Rust costs more); their geometric mean; and a 95 % Student-t interval
of that mean, computed on the logs of the ratios and exponentiated back. A
difference is shown when the interval excludes 1; one round gives no
interval.

The icount tables also say whether each figure meets the goal of issue 26:
the interval's upper end at or below GOAL (1.005), as printed (three
decimals). Figures in NOT_A_RATIO are not deterministic under icount for a
reason that has nothing to do with vhost_task: they are shown, with the
reason, but not read as ratios.

The chart is of the icount clock only: a panel per tree for the times and
rates, on one axis shared by every tree, and one for the memory figures
(bytes), whose ratios sit far from the others; a band of 1 +- 2 (GOAL - 1),
the +-1 % of issue 27, and a line at GOAL.
"""

import functools
import math
import os
import shutil
import statistics
import sys
from collections import defaultdict

# The goal under icount (issue 26): a figure's interval ends at or below GOAL. The chart's band,
# 1 +- 2 (GOAL - 1), is the +-1 % of issue 27, with GOAL in the middle of its upper half.
GOAL = 1.005
BAND = (1 - 2 * (GOAL - 1), 1 + 2 * (GOAL - 1))
CONFIDENCE = 0.95
# The chart's shared axis of times and rates covers every interval read as a ratio, within
# these bounds; anything beyond is clipped, marked with an arrow, and labelled.
XMIN, XMAX = 0.95, 1.05
BEGIN = "<!-- bench-report:begin -->"
END = "<!-- bench-report:end -->"
DEFAULT_TREE = "6.12"

CLOCK_TITLE = {
    "icount": "guest time = instructions (-icount, one host thread)",
    "wall": "guest time = wall-clock time (multi-threaded TCG)",
}

# Figures that are not deterministic under icount, for reasons outside vhost_task.
# {name: (verdict, reason)}
NOT_A_RATIO = {
    "scale_close_all": (
        "not a ratio: RCU grace periods",
        "1,000 closes, one after the other, each waiting for an RCU grace period "
        "(`vhost_net_release()` calls `synchronize_rcu()`), which ends on a timer tick; where "
        "the ticks fall moves with host-timed I/O even under icount (one 6.12 kernel's rounds "
        "ran 16.3-17.2 s), and `vhost_task_stop()` is under 0.1 % of the time. `close`, the "
        "median of 1,000 single closes, is the deterministic form of the same figure."),
    "vt_bench.create_start_stop": (
        "not a ratio: exits and RCU-deferred frees",
        "the total time of 1,000 create/start/stop cycles, which includes each worker's exit "
        "and the freeing of its task that RCU defers to a later tick, on whichever vCPU the "
        "scheduler put the worker; the rounds of one kernel spread by about 10 % even under "
        "icount. `create_p50` and `stop_p50`, the medians of the two calls alone, are its "
        "deterministic parts."),
    "vt_bench.bare_create_start_exit_control": (
        "not a ratio: exits and RCU-deferred frees",
        "the same loop of a bare user worker made by the same C code in both kernels, with "
        "the same spread: it shows that the spread of `create_start_stop` is not vhost_task's."),
}


def is_rate(unit):
    return unit.endswith("/s")


def load(path):
    rows, notes, kernel_notes = [], [], []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                text = line[1:].strip()
                if text.startswith("note "):
                    parts = text.split(None, 3)
                    if len(parts) == 4:
                        kernel_notes.append((parts[1], parts[2], parts[3]))
                        continue
                notes.append(text)
                continue
            f_ = line.split()
            if len(f_) == 6:
                f_ = [DEFAULT_TREE] + f_
            tree, r, clock, variant, name, value, unit = f_
            rows.append((tree, int(r), clock, variant, name, float(value), unit))
    return rows, notes, kernel_notes


@functools.lru_cache(maxsize=None)
def t_quantile(p, df):
    """The p quantile (p > 0.5) of Student's t with df degrees of freedom.

    The standard library has no t distribution: bisect its distribution function, whose
    density is integrated from 0 by Simpson's rule (to better than 1e-6 for df >= 1).
    """
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def density(x):
        return c * (1 + x * x / df) ** (-(df + 1) / 2)

    def cdf(x):
        steps = 2000
        h = x / steps
        inner = sum((4 if i % 2 else 2) * density(i * h) for i in range(1, steps))
        return 0.5 + h / 3 * (density(0) + inner + density(x))

    lo, hi = 0.0, 1.0
    while cdf(hi) < p:
        lo, hi = hi, 2 * hi
    while hi - lo > 1e-7:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def t_interval(logs):
    """The CONFIDENCE interval of the mean of logs (two rounds or more), by Student's t."""
    n = len(logs)
    half = t_quantile(1 - (1 - CONFIDENCE) / 2, n - 1) * statistics.stdev(logs) / math.sqrt(n)
    mean = statistics.fmean(logs)
    return mean - half, mean + half


def analyse(rows):
    """{(tree, clock): [result per figure]} in a stable order."""
    data = defaultdict(lambda: defaultdict(dict))
    units, order = {}, []
    for tree, r, clock, variant, name, value, unit in rows:
        data[(tree, clock, name)][variant][r] = value
        units[name] = unit
        if (tree, clock, name) not in order:
            order.append((tree, clock, name))
    out = {}
    for tree, clock, name in order:
        val = data[(tree, clock, name)]
        unit = units[name]
        rust, c = val.get("rust", {}), val.get("c", {})
        res = {"name": name, "unit": unit, "clock": clock, "rust": sorted(rust.values()),
               "c": sorted(c.values()), "ratio": None, "lo": None, "hi": None,
               "rounds": 0}
        paired = [k for k in rust if k in c and rust[k] > 0 and c[k] > 0]
        if paired:
            cost = [(c[k] / rust[k]) if is_rate(unit) else (rust[k] / c[k]) for k in paired]
            logs = [math.log(x) for x in cost]
            res["ratio"] = math.exp(sum(logs) / len(logs))
            res["rounds"] = len(paired)
            if len(paired) >= 2:
                lo, hi = t_interval(logs)
                res["lo"], res["hi"] = math.exp(lo), math.exp(hi)
        out.setdefault((tree, clock), []).append(res)
    return out


def fmt(v):
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def spread(vals):
    if not vals:
        return "-"
    return f"{fmt(statistics.median(vals))} ({fmt(vals[0])}-{fmt(vals[-1])})"


def marked(res):
    return res["clock"] == "icount" and res["name"] in NOT_A_RATIO


def meets(res):
    """The goal: the interval's upper end, as printed, at or below GOAL; None without one."""
    if res["hi"] is None:
        return None
    return round(res["hi"], 3) <= GOAL


def verdict(res):
    if marked(res):
        return NOT_A_RATIO[res["name"]][0]
    if res["ratio"] is None:
        return "no ratio"
    if res["lo"] is None:
        return f"{res['rounds']} round: no interval"
    if res["lo"] > 1:
        return "Rust costs more"
    if res["hi"] < 1:
        return "Rust costs less"
    return "no difference shown"


def tree_title(tree, notes):
    """The tree's heading, with what its kernels were built with, from the notes."""
    for n in notes:
        if n.startswith(f"tree {tree}:"):
            return f"Linux {tree} ({n.split(':', 1)[1].strip()})"
    return f"Linux {tree}"


def table(results, notes, kernel_notes):
    lines = []
    settings = [n for n in notes if not n.startswith("tree ")]
    if settings:
        lines += [f"Settings: {'; '.join(settings)}.", ""]
    trees = []
    for tree, _ in results:
        if tree not in trees:
            trees.append(tree)
    for tree in trees:
        lines += [f"### {tree_title(tree, notes)}", ""]
        for (t, clock), res in results.items():
            if t != tree:
                continue
            goal = clock == "icount"
            lines += [f"**{tree}, {clock}**: {CLOCK_TITLE.get(clock, clock)}", ""]
            head = ("| figure | unit | Rust median (min-max) | C median (min-max) "
                    f"| Rust/C cost | {CONFIDENCE * 100:.0f} % t-interval | verdict |")
            rule = "|---|---|---|---|---|---|---|"
            if goal:
                head += f" goal: interval ≤ {GOAL} |"
                rule += "---|"
            lines += [head, rule]
            for r in res:
                ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
                ci = "-" if r["lo"] is None else f"{r['lo']:.3f}-{r['hi']:.3f}"
                row = (f"| {r['name']} | {r['unit']} | {spread(r['rust'])} | "
                       f"{spread(r['c'])} | {ratio} | {ci} | {verdict(r)} |")
                if goal:
                    m = meets(r)
                    row += (" (not a ratio) |" if marked(r) else
                            " - |" if m is None else " met |" if m else " **not met** |")
                lines.append(row)
            lines.append("")
            why = [f"- `{r['name']}`: {NOT_A_RATIO[r['name']][1]}" for r in res if marked(r)]
            if why:
                lines += ["Not read as ratios:", ""] + why + [""]
        kn = []
        for t, variant, text in kernel_notes:
            item = f"- {'Rust' if variant == 'rust' else 'C'}: {text}"
            if t == tree and item not in kn:
                kn.append(item)
        if kn:
            lines += [f"Per-task slab objects on {tree} (`vt_bench.mem_per_task`'s census, "
                      "round 1):", ""] + sorted(kn) + [""]
    return "\n".join(lines)


def is_memory(res):
    return res["unit"] == "B"


def chart(results, path):
    """The icount clock's ratios, as a PNG at path; False when the run has none.

    A column per tree; a row of panels for the times and rates, on one x axis for every
    tree, and a row for the memory figures, on an axis of their own.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.transforms import blended_transform_factory as blend

    trees = [tree for tree, clock in results if clock == "icount"]
    kinds = []
    for mem, what in ((False, "times and rates"), (True, "memory")):
        names, read = [], []
        for tree in trees:
            for r in results[(tree, "icount")]:
                if r["ratio"] is None or is_memory(r) != mem:
                    continue
                if r["name"] not in names:
                    names.append(r["name"])
                if not marked(r):
                    read.append(r)
        if names:
            # The axis: 1, the band, and every interval read as a ratio (within XMIN-XMAX
            # for the times and rates); the rest is clipped.
            lo = min([BAND[0]] + [r["ratio"] if r["lo"] is None else r["lo"] for r in read])
            hi = max([BAND[1]] + [r["ratio"] if r["hi"] is None else r["hi"] for r in read])
            if not mem:
                lo, hi = max(lo, XMIN), min(hi, XMAX)
            pad = 0.06 * (hi - lo)
            kinds.append((what, mem, names, (lo - pad, hi + pad)))
    if not kinds:
        return False
    rounds = max(r["rounds"] for t in trees for r in results[(t, "icount")])

    # The key below the panels: on one line under two trees, on two under one.
    key_columns = 6 if len(trees) > 1 else 3
    heights = [0.36 * len(names) + 0.9 for _, _, names, _ in kinds] + [0.25 * 6 / key_columns]
    fig = plt.figure(layout="constrained",
                     figsize=(5.5 * len(trees) + 2.6, sum(heights) + 1.1))
    grid = fig.add_gridspec(len(kinds) + 1, len(trees), height_ratios=heights)
    for row, (what, mem, names, (xmin, xmax)) in enumerate(kinds):
        first = None
        for col, tree in enumerate(trees):
            ax = fig.add_subplot(grid[row, col], sharex=first, sharey=first)
            first = first or ax
            ax.axvspan(*BAND, color="0.88", zorder=0)
            ax.axvline(1.0, color="black", linewidth=0.8, zorder=1)
            ax.axvline(GOAL, color="tab:red", linestyle="--", linewidth=1, zorder=1)
            ax.grid(axis="x", linestyle=":", zorder=1)
            by = {r["name"]: r for r in results[(tree, "icount")]}
            for y, name in enumerate(names):
                r = by.get(name)
                if r is None or r["ratio"] is None:
                    continue
                lo = r["ratio"] if r["lo"] is None else r["lo"]
                hi = r["ratio"] if r["hi"] is None else r["hi"]
                x, cl, ch = (min(max(v, xmin), xmax) for v in (r["ratio"], lo, hi))
                m = meets(r)
                if marked(r):
                    face, edge = "white", "0.35"
                else:
                    edge = "0.5" if m is None else "tab:green" if m else "tab:red"
                    face = edge
                ax.errorbar(x, y, xerr=[[x - cl], [ch - x]], fmt="o", markersize=5,
                            markerfacecolor=face, markeredgecolor=edge, ecolor=edge,
                            capsize=3, linewidth=1.2, zorder=3)
                if lo < xmin:
                    ax.plot(xmin, y, "<", color=edge, markersize=6, zorder=4)
                if hi > xmax:
                    ax.plot(xmax, y, ">", color=edge, markersize=6, zorder=4)
                label = f"{r['ratio']:.3f}"
                if r["lo"] is not None:
                    label += f" [{r['lo']:.3f}, {r['hi']:.3f}]"
                if marked(r):
                    label += " not a ratio"
                elif m is False:
                    label += " not met"
                ax.text(0.99, y - 0.4, label, ha="right", va="center", fontsize=6.5,
                        color="0.25", transform=blend(ax.transAxes, ax.transData),
                        bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none",
                              "pad": 0.5}, zorder=5)
            ax.set_xlim(xmin, xmax)
            ax.set_title(f"Linux {tree}: {what}", fontsize=9)
            ax.set_xlabel("Rust/C bytes" if mem else "Rust/C cost (time, or rate inverted)",
                          fontsize=8)
            ax.tick_params(axis="x", labelsize=8)
            if col == 0:
                ax.set_yticks(range(len(names)))
                ax.set_yticklabels(names, fontsize=8)
                ax.set_ylim(len(names) - 0.5, -0.8)
            else:
                ax.tick_params(axis="y", labelleft=False)
    key = fig.add_subplot(grid[len(kinds), :])
    key.axis("off")
    dot = {"marker": "o", "linestyle": "none", "markersize": 6}
    key.legend(handles=[
        Patch(color="0.88", label=f"±{(BAND[1] - 1) * 100:.0f} % ({BAND[0]:.2f}-{BAND[1]:.2f})"),
        Line2D([], [], color="tab:red", linestyle="--", label=f"goal: interval ≤ {GOAL}"),
        Line2D([], [], color="tab:green", label="goal met", **dot),
        Line2D([], [], color="tab:red", label="goal not met", **dot),
        Line2D([], [], color="0.35", markerfacecolor="white", label="not a ratio (see the table)",
               **dot),
        Line2D([], [], color="0.35", marker=">", linestyle="none", label="interval clipped"),
    ], loc="center", ncol=key_columns, fontsize=8, frameon=False)
    fig.suptitle(
        f"vhost_task, Rust/C cost under icount (guest time counts instructions), {rounds} rounds"
        "\nabove 1 = Rust costs more; dot: geometric mean of the rounds' ratios, bar: "
        f"{CONFIDENCE * 100:.0f} % Student-t interval", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def update_doc(doc, text, chart_src, chart_dst):
    with open(doc) as f:
        s = f.read()
    if BEGIN not in s or END not in s:
        sys.exit(f"bench-report: {doc} lacks the markers {BEGIN} and {END}")
    head, rest = s.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    rel = os.path.relpath(chart_dst, os.path.dirname(os.path.abspath(doc)))
    body = f"\n![Rust/C cost ratios]({rel})\n\n{text}\n"
    with open(doc, "w") as f:
        f.write(head + BEGIN + body + END + tail)
    shutil.copyfile(chart_src, chart_dst)


def main(argv):
    args = argv[1:]
    doc = doc_chart = None
    if "--doc" in args:
        i = args.index("--doc")
        doc = args[i + 1]
        del args[i:i + 2]
    if "--doc-chart" in args:
        i = args.index("--doc-chart")
        doc_chart = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2 or (doc is None) != (doc_chart is None):
        sys.exit("usage: bench-report.py DATA OUTDIR [--doc MD --doc-chart PNG]")
    data, outdir = args
    rows, notes, kernel_notes = load(data)
    if not rows:
        sys.exit(f"bench-report: no figures in {data}")
    results = analyse(rows)
    text = table(results, notes, kernel_notes)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "table.md"), "w") as f:
        f.write(text)
    if not any(r["ratio"] is not None for res in results.values() for r in res):
        sys.exit(f"bench-report: no Rust/C ratio in {data} (did both kernels run?)")
    png = os.path.join(outdir, "ratios.png")
    if os.path.exists(png):
        os.remove(png)
    charted = chart(results, png)
    print(text)
    if not charted:
        print("bench-report: no chart: it is of the icount clock, which this run did not use",
              file=sys.stderr)
    if doc:
        if not charted:
            sys.exit(f"bench-report: {doc_chart} is the icount clock's chart: run with it")
        update_doc(doc, text, png, doc_chart)


if __name__ == "__main__":
    main(sys.argv)
