//! Subcommands given hostile sizes: `diff` of two huge nets matches layers in
//! linear time, and `audit --jobs` never starts more workers than the machine
//! has cores. One test in its own binary, so the children's CPU time
//! (RUSAGE_CHILDREN) is only these children's; it compares n with 10n, never a
//! wall-clock limit.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn children_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()), 0);
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A chain of `n` ReLU layers after one convolution (names differ per side).
fn net(dir: &Path, name: &str, n: usize, prefix: &str) -> String {
    let mut text = String::from("name: 'chain'\ninput: 'data'\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n");
    text.push_str("layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'x0' convolution_param { num_output: 4 kernel_size: 3 } }\n");
    for i in 0..n {
        text.push_str(&format!("layer {{ name: '{prefix}{i}' type: 'ReLU' bottom: 'x{i}' top: 'x{}' }}\n", i + 1));
    }
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn nnmem(args: &[&str]) -> (Option<i32>, Duration, String) {
    let before = children_cpu();
    let out = Command::new(env!("CARGO_BIN_EXE_nnmem")).args(args).output().unwrap();
    (out.status.code(), children_cpu().saturating_sub(before), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn diff_is_linear_and_audit_jobs_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let mut cpu = Vec::new();
    for n in [4_000usize, 40_000] {
        // Every ReLU renamed on side B: every lookup misses, each on a hash map.
        let a = net(dir.path(), &format!("a{n}.prototxt"), n, "relu");
        let b = net(dir.path(), &format!("b{n}.prototxt"), n, if n % 2 == 0 { "r" } else { "relu" });
        let (code, t, err) = nnmem(&["diff", &a, &b, "--json"]);
        assert_eq!(code, Some(0), "{err}");
        println!("bounds: diff of two {n}-layer nets: cpu {t:?}");
        cpu.push(t);
    }
    // Linear: 10× the layers must cost far less than 100× (a quadratic match took 20 s at 40,000).
    assert!(cpu[1] < cpu[0] * 30 + Duration::from_millis(500), "diff: 4k {:?} vs 40k {:?}", cpu[0], cpu[1]);

    // --jobs far above the core count is capped: it runs like the default.
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/caffe/seed_cnn.prototxt"), dir.path().join("seed.prototxt")).unwrap();
    let d = dir.path().display().to_string();
    let (code, _, err) = nnmem(&["audit", &d, "--jobs", "100000", "-q"]);
    assert_eq!(code, Some(0), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_nnmem")).args(["audit", &d, "--jobs", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "--jobs 0 is refused");
}
