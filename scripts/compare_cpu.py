#!/usr/bin/env python3
"""nnmem's prediction against the measured PyTorch CPU peaks in docs/measurements/cpu_*.json.

For every case, every ONNX file recorded with it is inspected exactly as the case says (its `nnmem.args`), and the
prediction compared is the scenario's peak minus its `weights` and `inputs` (the measurement is above the resident
weights and inputs). Writes docs/measurements/cpu_baseline_errors.md (the errors when the measurements were committed) or, with
--table, the current per-family error table docs/measurements/errors.md; needs only the nnmem binary (no torch):
    python3 scripts/compare_cpu.py [--nnmem target/release/nnmem] [--out docs/measurements/cpu_baseline_errors.md]
        [--copy-timelines /work/measure-timelines]   # copy the timelines of cases off by > 8 % into the repo
    python3 scripts/compare_cpu.py --table docs/measurements/errors.md   # regenerate the committed error table
"""
import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the limits tests/cpu_measurements.rs holds nnmem to: (max |error|, median |error|) per family
LIMITS = {"transformer": (0.10, 0.05), "style": (0.05, 0.03), "recurrent": (0.08, 0.03), "vision": (0.08, 0.03)}
SCENARIO = {"inference": "inference", "training": "training", "decode": "inference", "style": "style-transfer"}
MiB = 2 ** 20


def run_nnmem(nnmem, args, scenario):
    p = subprocess.run([nnmem] + args, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        return None, (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1][:160]
    r = json.loads(p.stdout)
    sc = r["scenarios"][scenario]
    b = sc["peak_breakdown"]
    unknown = sum(1 for n in r.get("warnings", []) if "unknown" in str(n).lower() or "left out" in str(n).lower())
    return {"predicted": sc["peak_bytes"] - b.get("weights", 0) - b.get("inputs", 0), "peak_bytes": sc["peak_bytes"],
            "breakdown": b, "peak_node": sc.get("peak_node") or sc.get("peak_at"), "unknown_warnings": unknown}, None


def load_cases():
    cases = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "docs/measurements/cpu_*.json"))):
        data = json.load(open(path))
        for key, c in data.get("cases", {}).items():
            cases[key] = c
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nnmem", default=os.environ.get("NNMEM", os.path.join(ROOT, "target/release/nnmem")))
    ap.add_argument("--out", default=None, help="the baseline table (default docs/measurements/cpu_baseline_errors.md "
                    "unless --table is given)")
    ap.add_argument("--table", default=None, help="write the current per-family error table here "
                    "(docs/measurements/errors.md) instead of the baseline")
    ap.add_argument("--json-out", default=None, help="also write every row as JSON")
    ap.add_argument("--copy-timelines", default=None, help="folder of the measured timelines (gzip JSON)")
    a = ap.parse_args()
    if a.out is None and a.table is None:
        a.out = os.path.join(ROOT, "docs/measurements/cpu_baseline_errors.md")
    cases = load_cases()
    jobs = []
    for key, c in cases.items():
        for e in c["nnmem"]:
            jobs.append((key, c, e))

    def one(job):
        key, c, e = job
        res, err = run_nnmem(a.nnmem, e["args"], SCENARIO[c["scenario"]])
        return key, c, e, res, err

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(one, jobs))
    rows = []
    for key, c, e, res, err in results:
        measured = c["methods"]["profiler"]["peak_bytes"]
        row = {"key": key, "family": c["family"], "exporter": e["exporter"], "export": e["export"],
               "informational": bool(e.get("informational")), "file": e["file"], "measured": measured,
               "rss": c["methods"]["rss"]["peak_bytes"], "error": None, "failed": err}
        if res:
            row.update(predicted=res["predicted"], error=(res["predicted"] - measured) / measured,
                       unknown_warnings=res["unknown_warnings"])
        rows.append(row)
    if a.json_out:
        json.dump(rows, open(a.json_out, "w"), indent=1)
    if a.out:
        write_md(a, rows, cases, a.out, "# nnmem against measured PyTorch CPU peaks (baseline)")
    if a.table:
        write_md(a, rows, cases, a.table, "# nnmem against measured PyTorch CPU peaks: errors per family")


def fmt_err(r):
    if r["failed"]:
        return "failed"
    return "%+.1f %%" % (100 * r["error"])


def write_md(a, rows, cases, out, title):
    held = [r for r in rows if not r["informational"]]
    fams = ["vision", "recurrent", "transformer", "style"]
    cmd = "python3 scripts/compare_cpu.py" + (" --table " + os.path.relpath(out, ROOT) if out == a.table else "")
    lines = [title, "",
             "Generated by `" + cmd + "` from docs/measurements/cpu_*.json "
             "(measured by scripts/measure_cpu.py; see docs/measurements/README.md).",
             "Error = (nnmem's peak − weights − inputs − measured) / measured, where measured is torch.profiler's "
             "allocator peak above the resident weights and inputs. Rows held by tests/cpu_measurements.rs: the "
             "training export (BatchNorm and Dropout kept, as PyTorch eager runs them) for inference and training, "
             "the decode export for KV-cache decode, vgg19_style_taps.onnx for style; the eval export's error "
             "is shown beside it for information.", "",
             "## By family", "",
             "| family | cases | within limit | limit (max / median) | median abs error | worst | worst case |",
             "|---|---:|---:|---|---:|---:|---|"]
    for fam in fams:
        fr = [r for r in held if r["family"] == fam]
        if not fr:
            continue
        lim = LIMITS[fam]
        errs = [abs(r["error"]) if r["error"] is not None else float("inf") for r in fr]
        ok = sum(1 for x in errs if x <= lim[0])
        worst = max(range(len(fr)), key=lambda i: errs[i])
        lines.append("| %s | %d | %d | %d %% / %d %% | %s | %s | %s (%s) |" % (
            fam, len(fr), ok, lim[0] * 100, lim[1] * 100,
            "%.1f %%" % (100 * statistics.median(errs)) if all(x != float("inf") for x in errs) else "n/a",
            fmt_err(fr[worst]), fr[worst]["key"], fr[worst]["exporter"]))
    errs = [abs(r["error"]) for r in held if r["error"] is not None]
    lines += ["", "%d rows held, %d failed to run; median |error| %.1f %%, %d within 8 %%." % (
        len(held), sum(1 for r in held if r["failed"]), 100 * statistics.median(errs) if errs else 0,
        sum(1 for x in errs if x <= 0.08)), ""]
    # per-model summary
    lines += ["## By model", "", "| model | family | rows | median abs error | worst |", "|---|---|---:|---:|---:|"]
    models = {}
    for r in held:
        models.setdefault(r["key"].split("/")[0] + ("" if r["exporter"] == "legacy" else " (dynamo)"), []).append(r)
    for m, rs in models.items():
        e = [abs(r["error"]) for r in rs if r["error"] is not None]
        worst = max(rs, key=lambda r: abs(r["error"]) if r["error"] is not None else float("inf"))
        lines.append("| %s | %s | %d | %s | %s |" % (m, rs[0]["family"], len(rs),
                                                     "%.1f %%" % (100 * statistics.median(e)) if e else "n/a",
                                                     fmt_err(worst)))
    lines += ["", "## Every case", "",
              "| case | exporter | measured MiB | RSS MiB | nnmem MiB | error | eval export |",
              "|---|---|---:|---:|---:|---:|---:|"]
    info = {(r["key"], r["exporter"]): r for r in rows if r["informational"]}
    off = []
    for r in sorted(held, key=lambda r: (fams.index(r["family"]), r["key"], r["exporter"])):
        ev = info.get((r["key"], r["exporter"]))
        pred = "%.1f" % (r["predicted"] / MiB) if r.get("predicted") is not None else "—"
        lines.append("| %s | %s | %.1f | %s | %s | %s | %s |" % (
            r["key"], r["exporter"], r["measured"] / MiB, "%.1f" % (r["rss"] / MiB) if r["rss"] is not None else "—",
            pred,
            fmt_err(r) if not r["failed"] else "failed: " + r["failed"].replace("|", "/"), fmt_err(ev) if ev else ""))
        if r["error"] is None or abs(r["error"]) > 0.08:
            off.append(r["key"])
    lines += ["", "Cases off by more than 8 %% (or failing): %d; their per-event timelines: see "
              "docs/measurements/README.md." % len(set(off)), ""]
    with open(out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines[:20]))
    if a.copy_timelines:
        dst = os.path.join(ROOT, "docs/measurements/timelines")
        os.makedirs(dst, exist_ok=True)
        total = 0
        for key in sorted(set(off)):
            tf = cases[key].get("timeline_file")
            src = os.path.join(a.copy_timelines, tf) if tf else None
            if src and os.path.exists(src):
                total += os.path.getsize(src)
                shutil.copy(src, os.path.join(dst, tf))
        print("copied timelines: %.1f MiB" % (total / MiB), file=sys.stderr)


if __name__ == "__main__":
    main()
