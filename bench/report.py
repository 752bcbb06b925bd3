#!/usr/bin/env python3
"""report.py - aggregation and plots of a bench/run results directory.

    bench/report.py RESULTS_DIR

Reads raw.csv (one row per workload x contender x round x metric),
contenders.tsv, meta.txt and lat/append_4k-*.txt, and writes:
  results.csv   one row per contender x workload x metric: median, p99 over
                the rounds, runs, unit, which direction is better
  results.json  the same, with the run's metadata and the contenders'
                durability semantics
  summary.md    the contenders, every median, the ratios of each cairn
                contender to ext4-ram, ext4-disk and tmpfs, the tiered
                workload's ratios to ext4-disk and ext4-dmcache, the targets
  *.png         gnuplot plots: CDF of the 4 KiB durable append latency,
                one bar chart per metric for latency and throughput, and
                tiered.png for the tiered workload
and prints summary.md.  Standard library only; plots need gnuplot.
"""
import csv
import json
import math
import os
import shutil
import subprocess
import sys

RIVALS = ["ext4-ram", "ext4-disk", "tmpfs"]
# The tiered workload (bench/tiered.sh) has contenders of its own.
TIERED_RIVALS = ["ext4-disk", "ext4-dmcache"]
# Metrics only cairn has, and the rivals' metric they answer: a write on a
# cairn mount in sync mode is as durable as a rival's write + fdatasync.
RIVAL_METRIC = {"append_4k_write_only_p50": "append_4k_p50"}
CAIRN = ["cairn-native-emul", "cairn-fuse-emul", "cairn-native-file", "cairn-fuse-file",
         "cairn-shim-emul", "cairn-shim-file", "cairn-tiered"]
ORDER = CAIRN + RIVALS + ["ext4-dmcache"]
LOWER_BETTER_UNITS = {"us", "s"}
# Facts about a run rather than speeds (where cairn's data lies): no
# direction, no ratio, no plot.
INFO_METRICS = {"tier_fast_used", "tier_disk_used"}
# Bar colours: cairn on emul, cairn on file, the RAM rivals, the disk rival.
COLORS = {"cairn-native-emul": 0x1b7837, "cairn-fuse-emul": 0x5aae61,
          "cairn-native-file": 0x2166ac, "cairn-fuse-file": 0x67a9cf,
          "cairn-shim-emul": 0x01665e, "cairn-shim-file": 0x35978f,
          "ext4-ram": 0xd6604d, "ext4-disk": 0xb2182b, "tmpfs": 0x999999,
          "cairn-tiered": 0x762a83, "ext4-dmcache": 0xf4a582}


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def p99(xs):
    """Nearest-rank 99th percentile (the maximum for fewer than 100 runs)."""
    s = sorted(xs)
    return s[max(0, math.ceil(0.99 * len(s)) - 1)]


def fmt(v):
    if v is None:
        return "-"
    if v >= 100:
        return "{:,.0f}".format(v)
    if v >= 10:
        return "{:.1f}".format(v)
    return "{:.2f}".format(v)


def load(out):
    meta = {}
    with open(os.path.join(out, "meta.txt")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v
    contenders = {}
    with open(os.path.join(out, "contenders.tsv")) as f:
        for line in f:
            name, kind, sem = line.rstrip("\n").split("\t", 2)
            contenders[name] = {"kind": kind, "semantics": sem}
    samples = {}  # (contender, workload, metric) -> (unit, [values])
    with open(os.path.join(out, "raw.csv")) as f:
        for row in csv.DictReader(f):
            try:
                v = float(row["value"])
            except ValueError:
                continue
            key = (row["contender"], row["workload"], row["metric"])
            samples.setdefault(key, (row["unit"], []))[1].append(v)
    return meta, contenders, samples


def aggregate(samples):
    rows = []
    for (c, w, m), (unit, vs) in samples.items():
        rows.append({
            "contender": c, "workload": w, "metric": m, "unit": unit,
            "median": median(vs), "p99": p99(vs), "runs": len(vs),
            "better": ("info" if m in INFO_METRICS else
                       "lower" if unit in LOWER_BETTER_UNITS else "higher"),
        })
    rank = {c: i for i, c in enumerate(ORDER)}
    rows.sort(key=lambda r: (r["workload"], r["metric"], rank.get(r["contender"], 99)))
    return rows


def advantage(row, rival):
    """How many times better the row is than the rival (>1: row wins)."""
    if (rival is None or row is None or not row["median"] or not rival["median"]
            or row["better"] == "info"):
        return None
    if row["better"] == "lower":
        return rival["median"] / row["median"]
    return row["median"] / rival["median"]


def targets(get):
    """The issue's targets: (text, ratio, needed, met or None)."""
    def ratio_lower(a, b):  # b's median / a's median, for latencies
        ra, rb = get(a), get(b)
        return rb / ra if ra and rb else None

    def ratio_higher(a, b):
        ra, rb = get(a), get(b)
        return ra / rb if ra and rb else None

    out = []
    emul_ext4 = ratio_lower(("cairn-native-emul", "micro", "append_4k_p50"),
                            ("ext4-ram", "micro", "append_4k_p50"))
    out.append(("4 KiB durable append, native emul: median latency vs ext4-ram+fdatasync",
                emul_ext4, ">= 50x lower", emul_ext4 is not None and emul_ext4 >= 50))
    tm = ratio_lower(("tmpfs", "micro", "append_4k_p50"),
                     ("cairn-native-emul", "micro", "append_4k_p50"))
    out.append(("4 KiB durable append, native emul: median latency vs tmpfs write (cairn/tmpfs)",
                tm, "<= 2x", tm is not None and tm <= 2))
    fe = ratio_lower(("cairn-fuse-emul", "micro", "append_4k_p50"),
                     ("ext4-ram", "micro", "append_4k_p50"))
    out.append(("4 KiB append, FUSE emul (write+fdatasync): median latency vs ext4-ram+fdatasync",
                fe, ">= 4x lower", fe is not None and fe >= 4))
    fw = ratio_lower(("cairn-fuse-emul", "micro", "append_4k_write_only_p50"),
                     ("ext4-ram", "micro", "append_4k_p50"))
    out.append(("4 KiB append, FUSE emul (write alone, durable in sync mode): "
                "median latency vs ext4-ram+fdatasync", fw, ">= 4x lower", fw is not None and fw >= 4))
    vm = ratio_higher(("cairn-fuse-emul", "varmail", "varmail"), ("ext4-ram", "varmail", "varmail"))
    out.append(("varmail ops/s, FUSE emul vs ext4-ram", vm, ">= 3x", vm is not None and vm >= 3))
    for mode in ("delete", "wal"):
        sq = ratio_higher(("cairn-fuse-emul", "sqlite", "sqlite_" + mode),
                          ("ext4-ram", "sqlite", "sqlite_" + mode))
        out.append(("SQLite synchronous=FULL inserts/s (%s journal), FUSE emul vs ext4-ram"
                    % ("rollback" if mode == "delete" else "WAL"),
                    sq, ">= 2x", sq is not None and sq >= 2))
    fb = ratio_lower(("cairn-native-file", "micro", "append_4k_p50"),
                     ("ext4-disk", "micro", "append_4k_p50"))
    out.append(("4 KiB durable append, native file backend: median latency vs ext4-disk+fdatasync",
                fb, ">= 1.5x lower", fb is not None and fb >= 1.5))
    # The preload shim's targets (cairn run).
    ss = ratio_higher(("cairn-shim-emul", "sqlite", "sqlite_delete"),
                      ("ext4-ram", "sqlite", "sqlite_delete"))
    out.append(("SQLite synchronous=FULL inserts/s (rollback journal), shim emul vs ext4-ram",
                ss, ">= 5x", ss is not None and ss >= 5))
    sv = ratio_higher(("cairn-shim-emul", "varmail", "varmail"), ("ext4-ram", "varmail", "varmail"))
    out.append(("varmail ops/s, shim emul vs ext4-ram", sv, ">= 5x", sv is not None and sv >= 5))
    fl = ratio_lower(("cairn-shim-emul", "fio", "fio_clat_p50"),
                     ("cairn-native-emul", "micro", "append_4k_p50"))
    out.append(("fio 4 KiB fsync'd write latency, shim emul vs the native API's durable append "
                "(native/shim)", fl, ">= 1/3x", fl is not None and fl >= 1 / 3))
    return [(t, r, need, (m if r is not None else None)) for t, r, need, m in out]


def tiered_section(by, contenders):
    """cairn-tiered against ext4 on the disk and on dm-cache, p99 included
    (a tiered system is judged by its tail as much as by its median)."""
    group = {"mix90": 0, "mix50": 1, "load": 2}
    mine = sorted({m for (c, w, m) in by if w == "tiered" and c == "cairn-tiered"},
                  key=lambda m: (group.get(m.split("_")[0], 3), m))
    if not mine:
        return []
    rivals = TIERED_RIVALS  # a rival not measured shows as "-"
    lines = ["", "## Tiered workload: cairn-tiered against ext4 (>1: cairn wins)", "",
             "A data set four times the fast tier; for latencies rival/cairn, for the rest "
             "cairn/rival, of the medians over the rounds.  ext4-dmcache: %s." % (
                 "measured" if "ext4-dmcache" in contenders else
                 "not measured here (see the notes)"), "",
             "| metric | unit | cairn-tiered | " + " | ".join(rivals) + " | " +
             " | ".join("vs " + rv for rv in rivals) + " |",
             "|---|---|---|" + "---|" * (2 * len(rivals))]
    for m in mine:
        row = by[("cairn-tiered", "tiered", m)]
        vals = [fmt(by[(rv, "tiered", m)]["median"]) if (rv, "tiered", m) in by else "-"
                for rv in rivals]
        ratios = []
        for rv in rivals:
            a = advantage(row, by.get((rv, "tiered", m)))
            ratios.append("-" if a is None else "%.2fx" % a)
        lines.append("| %s | %s | %s | %s |" % (m, row["unit"], fmt(row["median"]),
                                                " | ".join(vals + ratios)))
    return lines


def summary(meta, contenders, rows, notes):
    by = {(r["contender"], r["workload"], r["metric"]): r for r in rows}
    present = [c for c in ORDER if c in contenders] + [c for c in contenders if c not in ORDER]
    lines = ["# cairn benchmark results", ""]
    lines.append("Mode: %s, %s rounds per measurement, %s.  Machine: %s.  Commit %s."
                 % (meta.get("mode"), meta.get("rounds"), meta.get("date"),
                    meta.get("machine"), meta.get("commit")))
    if meta.get("sizes"):
        lines.append("Sizes: %s." % meta.get("sizes"))
    if meta.get("bigdir_entries"):
        lines.append("stat_bigdir: directory of %s." % meta.get("bigdir_entries"))
    if meta.get("mode") == "quick":
        lines.append("Quick mode: counts are small and timed loops are capped, so these "
                     "numbers are indicative only.")
    lines += ["", "## Contenders and their durability", "",
              "| contender | durability semantics |", "|---|---|"]
    for c in present:
        lines.append("| %s | %s |" % (c, contenders[c]["semantics"]))

    metrics = []
    for r in rows:
        k = (r["workload"], r["metric"], r["unit"], r["better"])
        if k not in metrics:
            metrics.append(k)
    lines += ["", "## Medians over the rounds (p99 over rounds in results.csv)", "",
              "| workload | metric | unit | better | " + " | ".join(present) + " |",
              "|---|---|---|---|" + "---|" * len(present)]
    for w, m, unit, better in metrics:
        vals = [fmt(by[(c, w, m)]["median"]) if (c, w, m) in by else "-" for c in present]
        lines.append("| %s | %s | %s | %s | %s |" % (w, m, unit, better, " | ".join(vals)))

    ratio_lines = []
    for w, m, unit, better in metrics:
        # Tails are in the medians table and results.csv; tiered has its own.
        if m.endswith("_p99") or w == "tiered":
            continue
        for c in CAIRN:
            row = by.get((c, w, m))
            if row is None:
                continue
            ratios = []
            for rv in RIVALS:
                a = advantage(row, by.get((rv, w, RIVAL_METRIC.get(m, m))))
                ratios.append("-" if a is None else "%.2fx" % a)
            ratio_lines.append("| %s | %s | %s | %s %s | %s |"
                               % (w, m, c, fmt(row["median"]), unit, " | ".join(ratios)))
    if ratio_lines:
        lines += ["", "## Ratios: how many times better cairn is (>1: cairn wins)", "",
                  "For latencies rival/cairn, for throughputs cairn/rival, of the medians "
                  "(p50 latencies and throughputs; p99 tails are in the table above).", "",
                  "| workload | metric | cairn contender | median | vs ext4-ram | vs ext4-disk | vs tmpfs |",
                  "|---|---|---|---|---|---|---|"] + ratio_lines
    lines += tiered_section(by, contenders)

    lines += ["", "## Targets", "", "| target | this run | needed | met |", "|---|---|---|---|"]
    get = lambda k: by[k]["median"] if k in by else None
    for text, ratio, need, met in targets(get):
        lines.append("| %s | %s | %s | %s |" % (
            text, "-" if ratio is None else "%.2fx" % ratio, need,
            "n/a (not measured)" if met is None else ("yes" if met else "NO")))
    if notes:
        lines += ["", "## Notes", ""] + ["- " + n for n in notes]
    return "\n".join(lines) + "\n"


# ---- plots ------------------------------------------------------------------

def gp_quote(s):
    return '"' + s.replace('"', "'") + '"'


def plot_cdf(out, present):
    """CDF of the 4 KiB durable append latency, all rounds pooled."""
    series = []
    for c in present:
        xs = []
        lat = os.path.join(out, "lat")
        for name in sorted(os.listdir(lat)) if os.path.isdir(lat) else []:
            if name.startswith("append_4k-%s-r" % c):
                with open(os.path.join(lat, name)) as f:
                    xs += [float(x) for x in f if x.strip()]
        if not xs:
            continue
        xs.sort()
        step = max(1, len(xs) // 2000)
        path = os.path.join(out, "plot-cdf-%s.dat" % c)
        with open(path, "w") as f:
            for i in range(0, len(xs), step):
                f.write("%g %g\n" % (xs[i], (i + 1) / len(xs)))
            f.write("%g 1\n" % xs[-1])
        series.append((c, path))
    if not series:
        return None
    png = os.path.join(out, "append_4k_cdf.png")
    gp = ['set terminal pngcairo size 1000,600 noenhanced' if has_cairo() else
          'set terminal png size 1000,600 noenhanced',
          'set output %s' % gp_quote(png),
          'set title "Durable 4 KiB append latency (write + durability step), all rounds"',
          'set logscale x', 'set xlabel "latency (us, log scale)"',
          'set ylabel "fraction of appends"', 'set yrange [0:1]', 'set grid',
          'set key bottom right']
    gp.append("plot " + ", ".join("%s using 1:2 with lines lw 2 title %s"
                                  % (gp_quote(p), gp_quote(c)) for c, p in series))
    return run_gnuplot(out, "append_4k_cdf", gp) and png


def plot_bars(out, name, title, metrics, by, present, yformat):
    """One small bar chart per metric (each its own scale), contenders on x."""
    cells = []
    for w, m, unit in metrics:
        data = [(c, by[(c, w, m)]) for c in present if (c, w, m) in by]
        if not data:
            continue
        path = os.path.join(out, "plot-%s-%s.dat" % (w, m))
        with open(path, "w") as f:
            for i, (c, r) in enumerate(data):
                color = COLORS.get(c, 0x888888)
                f.write("%d %s %g %g %d\n" % (i, c, r["median"], r["p99"], color))
        cells.append((w, m, unit, path))
    if not cells:
        return None
    cols = 3 if len(cells) > 4 else len(cells)
    nrows = (len(cells) + cols - 1) // cols
    png = os.path.join(out, name + ".png")
    gp = ['set terminal %s size %d,%d noenhanced font ",9"'
          % ("pngcairo" if has_cairo() else "png", 480 * cols, 340 * nrows),
          'set output %s' % gp_quote(png),
          'set multiplot layout %d,%d title %s' % (nrows, cols, gp_quote(title)),
          'set style fill solid 0.6', 'set boxwidth 0.7', 'set grid ytics',
          'set xtics rotate by -35 left', 'unset key', 'set bmargin 6',
          # Contenders differ by orders of magnitude (tmpfs vs a disk).
          'set logscale y', 'set format y %s' % gp_quote(yformat)]
    for w, m, unit, path in cells:
        gp.append('set title %s' % gp_quote("%s %s (%s; median, whisker to p99 of rounds)"
                                               % (w, m, unit)))
        gp.append('plot %s using 1:3:5:xtic(2) with boxes lc rgb variable, '
                  '"" using 1:3:3:4 with yerrorbars lc rgb "black" ps 0' % gp_quote(path))
    gp.append("unset multiplot")
    return run_gnuplot(out, name, gp) and png


_cairo = None


def has_cairo():
    global _cairo
    if _cairo is None:
        try:
            r = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
            _cairo = "pngcairo" in (r.stdout + r.stderr)
        except OSError:
            _cairo = False
    return _cairo


def run_gnuplot(out, name, lines):
    script = os.path.join(out, "plot-%s.gp" % name)
    with open(script, "w") as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run(["gnuplot", script], capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write("report.py: gnuplot %s: %s\n" % (name, r.stderr.strip()))
        return False
    return True


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: report.py RESULTS_DIR")
    out = sys.argv[1]
    meta, contenders, samples = load(out)
    rows = aggregate(samples)
    for r in rows:
        r["semantics"] = contenders.get(r["contender"], {}).get("semantics", "")

    with open(os.path.join(out, "results.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["contender", "workload", "metric", "unit", "median", "p99", "runs",
                     "better", "semantics"])
        for r in rows:
            wr.writerow([r["contender"], r["workload"], r["metric"], r["unit"],
                         "%.6g" % r["median"], "%.6g" % r["p99"], r["runs"], r["better"],
                         r["semantics"]])
    by = {(r["contender"], r["workload"], r["metric"]): r for r in rows}
    get = lambda k: by[k]["median"] if k in by else None
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"meta": meta, "contenders": contenders, "results": rows,
                   "targets": [{"target": t, "ratio": r, "needed": n, "met": m}
                               for t, r, n, m in targets(get)]}, f, indent=1)

    notes = []
    npath = os.path.join(out, "notes.txt")
    if os.path.exists(npath):
        notes = [l.strip() for l in open(npath) if l.strip()]

    present = [c for c in ORDER if c in contenders]
    pngs = []
    if shutil.which("gnuplot"):
        pngs.append(plot_cdf(out, present))
        kinds = dict.fromkeys((r["workload"], r["metric"], r["unit"], r["better"]) for r in rows)
        lat = [(w, m, u) for (w, m, u, b) in kinds
               if b == "lower" and m.endswith("_p50") and w != "tiered"]
        thr = [(w, m, u) for (w, m, u, b) in kinds if b == "higher" and w != "tiered"]
        tiered = [("tiered", m, u) for (w, m, u, b) in kinds if w == "tiered" and
                  (m in ("mix90", "mix50") or
                   (m.startswith("mix") and (m.endswith("_p50") or m.endswith("_p99"))))]
        tiered.sort(key=lambda k: (k[1].split("_")[0] != "mix90", k[1]))
        pngs.append(plot_bars(out, "latency", "Median latency per contender (lower is better)",
                              lat, by, present, "%g"))
        pngs.append(plot_bars(out, "throughput", "Throughput per contender (higher is better)",
                              thr, by, present, "%.0s%c"))
        pngs.append(plot_bars(out, "tiered", "Tiered workload: data set 4x the fast tier "
                              "(ops/s higher is better, latency lower is better)",
                              tiered, by, present, "%g"))
        # Keep only the pictures; the plot inputs can be rebuilt from results.
        for name in os.listdir(out):
            if name.startswith("plot-") and (name.endswith(".dat") or name.endswith(".gp")):
                os.remove(os.path.join(out, name))
    else:
        notes.append("gnuplot is not installed: no plots")
    pngs = [os.path.basename(p) for p in pngs if p]
    if pngs:
        notes.append("plots: " + ", ".join(pngs))

    text = summary(meta, contenders, rows, notes)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
