//! Hostile prototxts: every case ends with a clear error (exit 2) or a report
//! (exit 0), never a panic or a hang, under 100 MB (each run measured alone
//! with `wait4`, see tests/common/mod.rs). Their time (the "< 1 s" promise) is
//! measured by scripts/hostile_timings.sh, not asserted here; linear time is a
//! CPU-time ratio of n and 10n.

#![cfg(unix)]

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::{inspect, takes_linear_time, within_bounds, Outcome};

/// Writes `text` to a temporary `.prototxt` and runs `nnmem inspect` on it.
fn run_on(text: &[u8], extra: &[&str]) -> Outcome {
    run_on_with(text, extra, true)
}

/// `run_on`; `keep_stdout: false` discards the report.
fn run_on_with(text: &[u8], extra: &[&str], keep_stdout: bool) -> Outcome {
    let f = tempfile::Builder::new().suffix(".prototxt").tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    common::inspect_with(f.path(), extra, keep_stdout)
}

fn rejects(text: &str, expected: &str) {
    let o = run_on(text.as_bytes(), &[]);
    assert_eq!(o.code, 2, "expected exit 2 for {text:.80?}: {}", o.stderr);
    assert!(o.stderr.contains(expected), "stderr {:?} lacks {expected:?}", o.stderr);
    within_bounds(&o, expected);
}

const NET: &str = "input: 'data'\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n";

#[test]
fn deep_nesting_is_refused() {
    rejects(&"a {".repeat(100_000), "nested deeper than 64 levels");
}

#[test]
fn absurd_and_invalid_dims() {
    rejects("input: 'data'\ninput_shape { dim: 4611686018427387904 dim: 8 }\nlayer { name: 'f' type: 'InnerProduct' bottom: 'data' top: 'f' inner_product_param { num_output: 1 } }",
        "overflows 64 bits of bytes");
    rejects("input: 'data'\ninput_shape { dim: 99999999999999999999999 }\n", "expected a non-negative integer for \"dim\"");
    rejects("input: 'data'\ninput_shape { dim: -1 dim: 3 }\n", "expected a non-negative integer");
    rejects("input: 'data'\ninput_shape { dim: 1 dim: 0 dim: 4 }\n", "has a zero dimension");
}

#[test]
fn impossible_layer_geometry() {
    let layer = |p: &str| format!("{NET}layer {{ name: 'c' type: 'Convolution' bottom: 'data' top: 'c' convolution_param {{ {p} }} }}");
    rejects(&layer("num_output: 4 kernel_size: 9"), "kernel 9 is larger than the padded input 8");
    rejects(&layer("num_output: 4 kernel_size: 3 stride: 0"), "stride and dilation must be positive");
    rejects(&layer("num_output: 4 kernel_size: 3 group: 2"), "group 2 does not divide the 3 input channels");
    rejects(&layer("num_output: 0 kernel_size: 3"), "num_output must be positive");
    rejects(&format!("{NET}layer {{ name: 'p' type: 'Pooling' bottom: 'data' top: 'p' pooling_param {{ kernel_size: 2 stride: 0 }} }}"),
        "pooling stride must be positive");
    rejects(&format!("{NET}layer {{ name: 'e' type: 'Eltwise' bottom: 'data' bottom: 'x' top: 'e' }}"),
        "bottom \"x\" is not produced");
}

#[test]
fn truncations_never_panic() {
    let full = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/caffe/small_resnet.prototxt")).unwrap();
    for cut in (1..full.len()).step_by(97) {
        let o = run_on(&full[..cut], &[]);
        assert!(o.code == 0 || o.code == 2, "cut at {cut}: exit {} {}", o.code, o.stderr);
        assert!(!o.stderr.contains("panicked"), "cut at {cut}: {}", o.stderr);
        within_bounds(&o, &format!("cut at {cut}"));
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..20 {
        let bytes: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Half the rounds draw from the syntax's own characters.
                if round % 2 == 0 { b"{}:<>[],;'\"#\n abc123-." [(state % 20) as usize] } else { state as u8 }
            })
            .collect();
        let o = run_on(&bytes, &["--json"]);
        assert!(o.code == 0 || o.code == 2, "round {round}: exit {} {}", o.code, o.stderr);
        assert!(!o.stderr.contains("panicked"));
        within_bounds(&o, &format!("round {round}"));
    }
}

#[test]
fn many_layers_take_linear_time() {
    let net = |n: usize| {
        let mut s = String::from(NET);
        for i in 0..n {
            s.push_str(&format!("layer {{ name: 'r{i}' type: 'ReLU' bottom: 'data' top: 'data' }}\n"));
        }
        s
    };
    // Ten times the layers: well under a hundred times the time (quadratic would be 100×).
    takes_linear_time("ReLU layers", 4_000, 40_000, 30, |n| {
        let o = run_on_with(net(n).as_bytes(), &[], false);
        assert_eq!(o.code, 0, "{n} layers: {}", o.stderr);
        o
    });
}

#[test]
fn oversized_file_is_refused_before_reading() {
    // A sparse file over the limit: refused by its size, without reading (or allocating) it.
    let f = tempfile::Builder::new().suffix(".prototxt").tempfile().unwrap();
    f.as_file().set_len(65 << 20).unwrap();
    let o = inspect(f.path(), &[]);
    let stderr = &o.stderr;
    assert_eq!(o.code, 2, "{stderr}");
    let limit = format!("is too large for a prototxt (limit {})", nnmem::load::caffe::MAX_PROTOTXT_BYTES);
    assert!(stderr.contains(&limit), "{stderr}");
    assert!(stderr.contains(&*f.path().file_name().unwrap().to_string_lossy()), "{stderr}");
    within_bounds(&o, "65 MiB sparse file");
}

#[test]
fn odd_bytes_and_names() {
    // Invalid UTF-8 inside a quoted name and in an identifier: read, never a panic.
    let mut text = NET.as_bytes().to_vec();
    text.extend_from_slice(b"layer { name: 'r\xff\xfe' type: 'ReLU' bottom: 'data' top: 'data' }\n");
    let o = run_on(&text, &["--json"]);
    assert!(o.code == 0 || o.code == 2, "{}", o.stderr);
    assert!(!o.stderr.contains("panicked"));
    within_bounds(&o, "invalid UTF-8 in a name");
    let o = run_on(b"input\xc3: 'data'\n", &[]);
    assert!(o.code == 0 || o.code == 2, "{}", o.stderr);
    assert!(!o.stderr.contains("panicked"));
    within_bounds(&o, "invalid UTF-8 in a word");
    // A layer whose bottom is its own (never produced) top.
    rejects(&format!("{NET}layer {{ name: 's' type: 'ReLU' bottom: 'loop' top: 'loop' }}"), "bottom \"loop\" is not produced");
    // A 4 MB comment is fine; a 4 MB string is refused (names are copied into
    // the graph and every report: a 15 MiB one cost 200 MB), as is a 4 MB word.
    let long = format!("{NET}# {}\nname: 'net'\n", "c".repeat(4 << 20));
    let o = run_on(long.as_bytes(), &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    within_bounds(&o, "4 MB comment");
    rejects(&format!("{NET}name: '{}'\n", "n".repeat(4 << 20)), "a string of more than 65536 bytes");
    rejects(&format!("{NET}name: 'a' 'b' '{}' 'c'\n", "n".repeat(40 << 10).repeat(2)), "a string of more than 65536 bytes");
    rejects(&format!("{NET}name: {}\n", "n".repeat(4 << 20)), "a word of more than 65536 bytes");
}

#[test]
fn long_lines_take_linear_time_and_keep_exact_columns() {
    // Every field records its column; counting each from the line start made a
    // 40,000-field line quadratic (3.4 s). Now the count resumes where the last one stopped.
    let line = |n: usize| format!("{NET}layer {{ name: 'r' type: 'ReLU' bottom: 'data' top: 'y' {} }}\n", "junk: 1 ".repeat(n));
    // Eight times the fields: quadratic would be 64 times the time.
    takes_linear_time("fields on one line", 5_000, 40_000, 20, |n| {
        let o = run_on_with(line(n).as_bytes(), &[], false);
        assert_eq!(o.code, 0, "{n} fields: {}", o.stderr);
        within_bounds(&o, &format!("{n} fields on one line"));
        o
    });
    // A Slice with 40,000 tops on one line.
    let tops: String = (0..40_000).map(|i| format!("top: 't{i}' ")).collect();
    let o = run_on(format!("input: 'data'\ninput_shape {{ dim: 1 dim: 40000 }}\nlayer {{ name: 's' type: 'Slice' bottom: 'data' {tops}slice_param {{ axis: 1 }} }}\n").as_bytes(), &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    within_bounds(&o, "40,000-top Slice");
    // Columns stay exact far into a line, multi-byte characters counting once.
    rejects(&format!("{}é: @", "a: 1 ".repeat(1000)), ":1:5004: unexpected character '@'");
}

#[test]
fn names_cannot_drive_the_terminal() {
    let text = "input: \"da\x1b[31mta\"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\nlayer { name: \"r\x1b[2J\" type: \"ReLU\" bottom: \"da\x1b[31mta\" top: \"r\" }\n";
    let f = tempfile::Builder::new().suffix(".prototxt").tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    let out = Command::cargo_bin("nnmem").unwrap().arg("inspect").arg(f.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains('\x1b'), "{stdout}");
    assert!(stdout.contains("r\\u{1b}[2J"), "{stdout}");
}

#[test]
fn a_million_layers_are_refused_early() {
    // Compact layers, so the file stays under the size limit and the field count refuses it.
    let mut net = String::from(NET);
    for i in 0..1_000_000 {
        net.push_str(&format!("layer{{name:'{i}'type:'ReLU'}}"));
        if net.len() as u64 > nnmem::load::caffe::MAX_PROTOTXT_BYTES - 64 {
            break;
        }
    }
    let o = run_on(net.as_bytes(), &[]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("more than 250000 fields"), "{}", o.stderr);
    within_bounds(&o, "a million layers");
}

