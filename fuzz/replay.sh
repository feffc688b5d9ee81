#!/bin/bash
# Replays a fuzz corpus through the release binary and reports what libFuzzer
# does not check: a "panicked" on stderr, an exit code other than 0 or 2, more
# than 1 s or more than 100 MB for one file.
# Usage: fuzz/replay.sh TARGET EXT   e.g. fuzz/replay.sh onnx_graph onnx
# Needs `cargo build --release` and GNU time (/usr/bin/time).
set -u
cd "$(dirname "$0")"
target=$1; ext=$2
bin=../target/release/nnmem
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0; bad=0; worst_s=0; worst_kb=0
for f in corpus/"$target"/*; do
    cp "$f" "$tmp/in.$ext"
    env -u RUST_BACKTRACE /usr/bin/time -f "%e %M" -o "$tmp/time" timeout 10 "$bin" inspect "$tmp/in.$ext" >/dev/null 2>"$tmp/err"
    rc=$?
    read -r s kb < <(tail -1 "$tmp/time")
    n=$((n + 1))
    worst_s=$(echo "if ($s > $worst_s) $s else $worst_s" | bc)
    [ "$kb" -gt "$worst_kb" ] && worst_kb=$kb
    if grep -q panicked "$tmp/err" || { [ $rc -ne 0 ] && [ $rc -ne 2 ]; } || [ "$(echo "$s > 1" | bc)" = 1 ] || [ "$kb" -gt 102400 ]; then
        echo "$f: exit $rc, $s s, $kb KiB: $(head -c 300 "$tmp/err")"
        bad=$((bad + 1))
    fi
done
echo "$target: $n files, $bad over a bound, slowest $worst_s s, largest $worst_kb KiB"
