//! Whole-process cost of `nnmem inspect --scenario all` (the table, and for
//! information the same with `--json`) on graphs that nnmem's own ONNX shape
//! engine sizes without tract:
//!
//! (a) ~6,000-node graphs, the acceptance case of issue 10: a generated
//!     64-layer Llama-style decoder (6,073 nodes) at 1×512 and a generated
//!     ConvNeXt-style training export (depths 3,3,142,3: 6,043 nodes) at
//!     1×3×224×224; larger ones beside them: the Swin-T training export of the
//!     measured corpus (fixtures/measured/swin_t_b1_224.train.onnx, 8,121
//!     nodes) when present, and a generated 96-layer decoder (9,081 nodes) at
//!     1×512;
//! (b) a generated 32-layer Llama-2-7B-shaped graph without weights (6,738,415,616
//!     parameters as external references never written) at 1×4096 and 1×32768.
//!
//! Targets (issues 10 and 15): (a) ≤ 50 ms; (b) ≤ 100 ms and ≤ 100 MB. The
//! numbers are printed, not asserted: timings depend on the machine. Each
//! case prints wall time and the process's CPU time (user + system, from
//! `getrusage` of the children): on a shared machine the CPU time is the
//! figure to compare, wall time stretches with the load. The
//! generated graphs come from scripts/make_llama_graph.py and
//! scripts/make_convnext_graph.py (python3 with the `onnx` package), written to `target/bench-data/` (never committed); a case
//! whose model cannot be made or found prints SKIPPED.
//!
//! Run: `cargo bench --bench onnx_engine`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_nnmem"));
    let data = root.join("target/bench-data");
    std::fs::create_dir_all(&data).expect("create target/bench-data");
    let make_with = |script: &str, name: &str, args: &[&str]| -> Option<PathBuf> {
        let path = data.join(name);
        if !path.exists() {
            let o = Command::new("python3").arg(root.join("scripts").join(script)).arg(&path).args(args).output().ok()?;
            if !o.status.success() {
                eprintln!("{script}: {}", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or(""));
                return None;
            }
        }
        Some(path)
    };
    let make = |name: &str, args: &[&str]| make_with("make_llama_graph.py", name, args);
    let swin = root.join("fixtures/measured/swin_t_b1_224.train.onnx");
    let decoder_6k = make("llama_64_layers.onnx", &["--layers", "64", "--hidden", "1024", "--heads", "16", "--kv-heads", "4", "--ffn", "2816"]);
    let convnext_6k = make_with("make_convnext_graph.py", "convnext_3_3_142_3.onnx", &["--depths", "3,3,142,3"]);
    let deep = make("llama_96_layers.onnx", &["--layers", "96", "--hidden", "1024", "--heads", "16", "--kv-heads", "4", "--ffn", "2816"]);
    let l7b = make("llama2_7b.onnx", &[]);
    let cases: Vec<(&str, Option<PathBuf>, Vec<&str>, Duration)> = vec![
        ("(a) 64-layer Llama-style decoder (6,073 nodes), 1x512", decoder_6k, vec!["--input", "input_ids=1x512"], Duration::from_millis(50)),
        ("(a) ConvNeXt-style training export (6,043 nodes), 1x3x224x224", convnext_6k, vec!["--input", "input=1x3x224x224"], Duration::from_millis(50)),
        ("(a) Swin-T training export (8,121 nodes)", swin.exists().then_some(swin), vec![], Duration::from_millis(50)),
        ("(a) 96-layer Llama-style decoder (9,081 nodes), 1x512", deep, vec!["--input", "input_ids=1x512"], Duration::from_millis(50)),
        ("(b) Llama-2-7B-shaped, 1x4096", l7b.clone(), vec!["--input", "input_ids=1x4096"], Duration::from_millis(100)),
        ("(b) Llama-2-7B-shaped, 1x32768", l7b, vec!["--input", "input_ids=1x32768"], Duration::from_millis(100)),
    ];
    for (name, model, args, target) in cases {
        let Some(model) = model else {
            println!("SKIPPED {name}: the model is not available");
            continue;
        };
        let inspect = || {
            let mut c = Command::new(&exe);
            c.arg("inspect").arg(&model).args(["--scenario", "all"]).args(&args).stdout(Stdio::null()).stderr(Stdio::null());
            c
        };
        let status = inspect().status().expect("run nnmem");
        assert!(status.success(), "{name}: nnmem inspect failed");
        let (median, min, cpu) = time_runs(20, || {
            inspect().status().expect("run nnmem");
        });
        let rss = peak_rss_kb(&exe, &model, &args);
        let (json_median, _, _) = time_runs(10, || {
            inspect().arg("--json").status().expect("run nnmem");
        });
        let verdict = if cpu <= target { "CPU within target" } else { "CPU OVER target" };
        println!(
            "{name}: median {:.1} ms, min {:.1} ms, CPU (user + system) median {:.1} ms, peak RSS {} ({verdict} {} ms); with --json median {:.1} ms",
            median.as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e3,
            rss.map_or("n/a".to_string(), |kb| format!("{:.1} MB", kb as f64 / 1024.0)),
            target.as_millis(),
            json_median.as_secs_f64() * 1e3
        );
    }
}

/// (median, min) wall time and median CPU time of `n` runs.
fn time_runs(n: usize, mut f: impl FnMut()) -> (Duration, Duration, Duration) {
    let (mut times, mut cpu): (Vec<Duration>, Vec<Duration>) = (0..n)
        .map(|_| {
            let (t, c) = (Instant::now(), children_cpu());
            f();
            (t.elapsed(), children_cpu().saturating_sub(c))
        })
        .unzip();
    times.sort();
    cpu.sort();
    (times[n / 2], times[0], cpu[n / 2])
}

/// User + system time of this process's waited-for children so far.
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

/// Peak RSS in KB of one run, from GNU time's `%M`.
fn peak_rss_kb(exe: &Path, model: &Path, args: &[&str]) -> Option<u64> {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(exe)
        .arg("inspect")
        .arg(model)
        .args(["--scenario", "all"])
        .args(args)
        .stdout(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stderr).lines().last()?.trim().parse().ok()
}
