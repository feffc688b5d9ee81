#!/usr/bin/env bash
# The "< 1 s and < 100 MB per hostile case" promise of docs/security.md, as a
# benchmark (not a test: `cargo test` asserts no wall-clock limit).
#
# Runs the hostile test binaries one test at a time (--test-threads=1, so no
# sibling test shares the CPU or inflates a child's RSS), collects the line
# every bounded case prints through tests/common/mod.rs,
#   bounds: TEST: CASE: exit N in WALL s (cpu CPU s), RSS KiB
# and fails if any case used 1 s or more of CPU time (user + system of that one
# nnmem process, from wait4) or 100 MB or more of RSS. CPU time is the measure
# because a loaded machine stretches wall time arbitrarily; with --wall (for an
# idle machine) wall time over 1 s fails too. It prints the slowest and the
# largest cases, and the `scaling:` runs of the linear-time tests apart (valid
# models made large on purpose, not held to the bounds).
#
# Usage: scripts/hostile_timings.sh [--wall] [--top N]
set -euo pipefail
cd "$(dirname "$0")/.."

wall=0
top=10
while [ $# -gt 0 ]; do
    case "$1" in
        --wall) wall=1 ;;
        --top) top="$2"; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "usage: $0 [--wall] [--top N]" >&2; exit 2 ;;
    esac
    shift
done

tests=(hostile_caffe hostile_onnx hostile_files hostile_budget hostile_contradictions hostile_escapes)
args=()
for t in "${tests[@]}"; do args+=(--test "$t"); done

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! cargo test --release --locked "${args[@]}" -- --nocapture --test-threads=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "hostile_timings: the hostile tests failed (output above); no timings judged" >&2
    exit 1
fi

python3 - "$log" "$wall" "$top" <<'EOF'
import re, sys

log, wall_limit, top = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
line = re.compile(r"(bounds|scaling): (\S+): (.*): exit (-?\d+) in ([\d.]+) s \(cpu ([\d.]+) s\), (\d+) KiB")
CPU_S, WALL_S, RSS_KIB = 1.0, 1.0, 100 * 1024
bounds, scaling = [], []
for text in open(log, errors="replace"):
    m = line.search(text)
    if m:
        kind, test, case, code, w, c, rss = m.groups()
        (bounds if kind == "bounds" else scaling).append((test, case, int(code), float(w), float(c), int(rss)))
if not bounds:
    sys.exit("hostile_timings: no `bounds:` lines found (did the runner's format change?)")

def show(rows):
    for test, case, code, w, c, rss in rows:
        print(f"  cpu {c:6.3f} s  wall {w:6.3f} s  {rss / 1024:6.1f} MB  exit {code}  {test}: {case[:90]}")

print(f"{len(bounds)} bounded cases")
print(f"slowest {top} by CPU time:")
show(sorted(bounds, key=lambda r: -r[4])[:top])
print(f"slowest {top} by wall time:")
show(sorted(bounds, key=lambda r: -r[3])[:top])
print(f"largest {top} by RSS:")
show(sorted(bounds, key=lambda r: -r[5])[:top])
if scaling:
    print(f"{len(scaling)} scaling runs of the linear-time tests (informational, not bounded):")
    show(sorted(scaling, key=lambda r: (r[0], r[1])))

over = [r for r in bounds if r[4] >= CPU_S or r[5] >= RSS_KIB or (wall_limit and r[3] >= WALL_S)]
if over:
    print(f"FAILED: {len(over)} case(s) over {CPU_S:g} s of CPU{' or wall' if wall_limit else ''} or {RSS_KIB // 1024} MB:")
    show(over)
    sys.exit(1)
print(f"ok: every case under {CPU_S:g} s of CPU{' and wall' if wall_limit else ''} and {RSS_KIB // 1024} MB")
EOF
