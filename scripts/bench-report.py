#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Tables and chart of 'make bench' from the data scripts/bench.sh collects.

    bench-report.py DATA OUTDIR [--doc BENCHMARKS.md --doc-chart PNG]

DATA has one line per figure: "round clock variant name value unit", with
variant rust or c, and "#" comment lines (the settings of the run). Writes
OUTDIR/table.md and OUTDIR/ratios.png and prints the table. With --doc, also
replaces the part of that file between the markers
"<!-- bench-report:begin -->" and "<!-- bench-report:end -->" with the
table, and copies the chart to --doc-chart.

For each clock and figure: the median and range of each kernel over the
rounds; the Rust/C cost ratio of each round (time, bytes, or the inverse of
a rate, so that above 1 always means Rust costs more); their geometric mean;
and a 95 % percentile bootstrap interval of that mean, resampling rounds
(10,000 resamples, fixed seed). A difference is shown only when the interval
excludes 1, and only with at least MIN_ROUNDS rounds: a percentile
bootstrap over fewer is too optimistic (an A/A run of one kernel against
itself over 2 rounds flagged differences of 0.1 %).
"""

import math
import os
import random
import shutil
import statistics
import sys
from collections import defaultdict

RESAMPLES = 10000
SEED = 1
GOAL = 0.02
# Fewer rounds give intervals too narrow to trust: no verdict then.
MIN_ROUNDS = 5
# The chart's range; intervals beyond it are clipped and labelled.
XMIN, XMAX = 0.5, 1.5
BEGIN = "<!-- bench-report:begin -->"
END = "<!-- bench-report:end -->"

CLOCK_TITLE = {
    "icount": "guest time = instructions (-icount, one host thread)",
    "wall": "guest time = wall-clock time (multi-threaded TCG)",
}


def is_rate(unit):
    return unit.endswith("/s")


def load(path):
    rows, notes = [], []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                notes.append(line[1:].strip())
                continue
            r, clock, variant, name, value, unit = line.split()
            rows.append((int(r), clock, variant, name, float(value), unit))
    return rows, notes


def bootstrap(logs, rng):
    """95 % percentile interval of the mean of logs, resampled."""
    n = len(logs)
    means = sorted(
        sum(logs[rng.randrange(n)] for _ in range(n)) / n for _ in range(RESAMPLES)
    )
    return means[int(0.025 * RESAMPLES)], means[int(0.975 * RESAMPLES) - 1]


def analyse(rows):
    """{clock: [result per figure]} in a stable order."""
    data = defaultdict(lambda: defaultdict(dict))
    units, order = {}, []
    for r, clock, variant, name, value, unit in rows:
        data[(clock, name)][variant][r] = value
        units[name] = unit
        if (clock, name) not in order:
            order.append((clock, name))
    rng = random.Random(SEED)
    out = defaultdict(list)
    for clock, name in order:
        val = data[(clock, name)]
        unit = units[name]
        rust, c = val.get("rust", {}), val.get("c", {})
        res = {"name": name, "unit": unit, "rust": sorted(rust.values()),
               "c": sorted(c.values()), "ratio": None, "lo": None, "hi": None,
               "rounds": 0}
        paired = [k for k in rust if k in c and rust[k] > 0 and c[k] > 0]
        if paired:
            cost = [(c[k] / rust[k]) if is_rate(unit) else (rust[k] / c[k]) for k in paired]
            logs = [math.log(x) for x in cost]
            res["ratio"] = math.exp(sum(logs) / len(logs))
            res["rounds"] = len(paired)
            if len(paired) >= 2:
                lo, hi = bootstrap(logs, rng)
                res["lo"], res["hi"] = math.exp(lo), math.exp(hi)
        out[clock].append(res)
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


def shown(res):
    """Whether the interval excludes 1, with enough rounds to say so."""
    return res["lo"] is not None and res["rounds"] >= MIN_ROUNDS and (
        res["lo"] > 1 or res["hi"] < 1)


def verdict(res):
    if res["ratio"] is None:
        return "no ratio"
    if res["lo"] is None or res["rounds"] < MIN_ROUNDS:
        return f"{res['rounds']} rounds: too few for a verdict"
    lo, hi = res["lo"], res["hi"]
    if lo > 1:
        what = "Rust costs more"
    elif hi < 1:
        what = "Rust costs less"
    else:
        what = "no difference shown"
    if 1 - GOAL <= lo and hi <= 1 + GOAL:
        what += ", within 2 %"
    return what


def table(results, notes):
    lines = []
    if notes:
        lines += [f"Settings: {'; '.join(notes)}.", ""]
    for clock, res in results.items():
        lines += [f"**{clock}**: {CLOCK_TITLE.get(clock, clock)}", ""]
        lines += ["| figure | unit | Rust median (min-max) | C median (min-max) "
                  "| Rust/C cost | 95 % interval | verdict |",
                  "|---|---|---|---|---|---|---|"]
        for r in res:
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
            ci = "-" if r["lo"] is None else f"{r['lo']:.3f}-{r['hi']:.3f}"
            lines.append(f"| {r['name']} | {r['unit']} | {spread(r['rust'])} | "
                         f"{spread(r['c'])} | {ratio} | {ci} | {verdict(r)} |")
        lines.append("")
    return "\n".join(lines)


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.transforms import blended_transform_factory as blend

    clocks = list(results)
    names = []
    for res in results.values():
        for r in res:
            if r["ratio"] is not None and r["name"] not in names:
                names.append(r["name"])
    if not names:
        return False
    fig, axes = plt.subplots(1, len(clocks), sharey=True, squeeze=False,
                             figsize=(5.5 * len(clocks) + 2, 0.45 * len(names) + 1.8))
    for ax, clock in zip(axes[0], clocks):
        by = {r["name"]: r for r in results[clock]}
        ys, ratios, errs, colours = [], [], [[], []], []
        for y, n in enumerate(names):
            r = by.get(n)
            if r is None or r["ratio"] is None:
                continue
            lo = r["lo"] if r["lo"] is not None else r["ratio"]
            hi = r["hi"] if r["hi"] is not None else r["ratio"]
            ratio = min(max(r["ratio"], XMIN), XMAX)
            ys.append(y)
            ratios.append(ratio)
            errs[0].append(ratio - min(max(lo, XMIN), ratio))
            errs[1].append(max(min(hi, XMAX), ratio) - ratio)
            if shown(r):
                colours.append("tab:red" if lo > 1 else "tab:green")
            else:
                colours.append("tab:gray")
            label = f"{r['ratio']:.3f}"
            if r["lo"] is not None:
                label += f" [{r['lo']:.3f}, {r['hi']:.3f}]"
            ax.text(0.99, y - 0.32, label, ha="right", va="center", fontsize=6.5,
                    color="0.25", transform=blend(ax.transAxes, ax.transData))
        ax.axvspan(1 - GOAL, 1 + GOAL, color="0.9", zorder=0)
        ax.barh(ys, [x - 1 for x in ratios], left=1, xerr=errs, color=colours,
                capsize=3, height=0.45, zorder=2)
        lo_all = min([1 - 2 * GOAL] + [x - e for x, e in zip(ratios, errs[0])])
        hi_all = max([1 + 2 * GOAL] + [x + e for x, e in zip(ratios, errs[1])])
        pad = 0.05 * (hi_all - lo_all)
        ax.set_xlim(lo_all - pad, hi_all + pad)
        ax.axvline(1.0, color="black", linewidth=1, zorder=3)
        ax.set_title(CLOCK_TITLE.get(clock, clock), fontsize=9)
        ax.set_xlabel("Rust/C cost (geometric mean over rounds, 95 % bootstrap interval)",
                      fontsize=8)
        ax.grid(axis="x", linestyle=":", zorder=1)
    axes[0][0].set_yticks(range(len(names)))
    axes[0][0].set_yticklabels(names, fontsize=8)
    axes[0][0].invert_yaxis()
    fig.suptitle("vhost_task, Rust/C cost: above 1 = Rust costs more; grey band = within 2 %; "
                 f"red/green = interval excludes 1 ({MIN_ROUNDS}+ rounds); "
                 f"clipped to {XMIN}-{XMAX}", fontsize=9)
    fig.tight_layout()
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
    rows, notes = load(data)
    if not rows:
        sys.exit(f"bench-report: no figures in {data}")
    results = analyse(rows)
    text = table(results, notes)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "table.md"), "w") as f:
        f.write(text)
    png = os.path.join(outdir, "ratios.png")
    if not chart(results, png):
        sys.exit("bench-report: no Rust/C ratio to chart (did both kernels run?)")
    print(text)
    if doc:
        update_doc(doc, text, png, doc_chart)


if __name__ == "__main__":
    main(sys.argv)
