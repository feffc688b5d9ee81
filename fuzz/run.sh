#!/bin/sh
# Runs every fuzz target in turn, seeded from the fixtures, under `nice -n 19`.
# Usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]   (default: 600, all six)
# Needs `cargo install cargo-fuzz`; on a stable toolchain RUSTC_BOOTSTRAP=1 is set here.
set -u
cd "$(dirname "$0")"
secs=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-"prototxt_text caffe_graph caffemodel onnx_decode onnx_graph paths"}
export RUSTC_BOOTSTRAP=1
mkdir -p corpus logs
for t in $targets; do
    mkdir -p "corpus/$t"
    case $t in
        prototxt_text|caffe_graph) cp ../fixtures/caffe/*.prototxt "corpus/$t/"; dict=-dict=dicts/prototxt.dict ;;
        caffemodel) cp seeds/caffemodel/*.caffemodel "corpus/$t/"; dict= ;;
        onnx_decode|onnx_graph) cp ../fixtures/onnx/*.onnx "corpus/$t/"; dict= ;;
        paths) dict= ;;
    esac
    echo "== $t: $secs s" >&2
    nice -n 19 cargo fuzz run -s none "$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -max_len=65536 -print_final_stats=1 $dict \
        >"logs/$t.log" 2>&1
    echo "   exit $? — $(grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "logs/$t.log" | tr '\n' ' ')" >&2
done
