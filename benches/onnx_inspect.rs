//! Whole-process cost of `nnmem inspect` on a VGG-19-sized single-file ONNX
//! model (143.7 M float parameters, ≈575 MB of initializers), next to the cost
//! of merely reading the file (`cat FILE > /dev/null`).
//!
//! Run: `cargo bench --bench onnx_inspect`. The set-up writes the model once to
//! `target/bench-data/vgg19_single.onnx` (never committed). Targets from issue 3:
//! ≤ 15 ms warm and ≤ 40 MB peak RSS per inspect. The numbers are printed, not
//! asserted: timings depend on the machine.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nnmem::load::onnx::proto::{put_len_field, put_varint};

const FLOAT: u64 = 1;

/// VGG-19 feature configuration ("E"): channels, 0 = max pool.
const VGG19: &[u64] = &[64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0];

fn main() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_nnmem"));
    let data_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    let model = data_dir.join("vgg19_single.onnx");
    if !model.exists() {
        std::fs::create_dir_all(&data_dir).expect("create target/bench-data");
        let t = Instant::now();
        write_vgg19(&model).expect("write the benchmark model");
        eprintln!("wrote {} in {:.1} s", model.display(), t.elapsed().as_secs_f64());
    }
    let size = std::fs::metadata(&model).map(|m| m.len()).unwrap_or(0);
    println!("model: {} ({:.1} MB)", model.display(), size as f64 / 1e6);

    // Warm the page cache and the binary.
    let cat_cmd = format!("cat '{}' > /dev/null", model.display());
    run_sh(&cat_cmd);
    let inspect = |json: bool| {
        let mut c = Command::new(&exe);
        c.arg("inspect").arg(&model).arg("--input").arg("input=1x3x224x224");
        if json {
            c.arg("--json");
        }
        c
    };
    let status = inspect(true).stdout(Stdio::null()).status().expect("run nnmem");
    assert!(status.success(), "nnmem inspect failed on the benchmark model");

    let cat = time_runs(10, || run_sh(&cat_cmd));
    let table = time_runs(30, || {
        inspect(false).stdout(Stdio::null()).status().expect("run nnmem");
    });
    let json = time_runs(30, || {
        inspect(true).stdout(Stdio::null()).status().expect("run nnmem");
    });
    let rss_kb = peak_rss_kb(&exe, &model);

    println!("cat FILE > /dev/null (warm):      median {:>8.2} ms  min {:>8.2} ms", ms(cat.0), ms(cat.1));
    println!("nnmem inspect (table, warm):      median {:>8.2} ms  min {:>8.2} ms", ms(table.0), ms(table.1));
    println!("nnmem inspect --json (warm):      median {:>8.2} ms  min {:>8.2} ms", ms(json.0), ms(json.1));
    match rss_kb {
        Some(kb) => println!("nnmem inspect --json peak RSS:    {:.1} MB", kb as f64 / 1024.0),
        None => println!("nnmem inspect --json peak RSS:    /usr/bin/time not available"),
    }
    println!("ratio inspect / cat (median):     {:.3}", json.0.as_secs_f64() / cat.0.as_secs_f64());
    let verdict = |ok: bool| if ok { "within target" } else { "OVER target" };
    println!("target ≤ 15 ms warm: {}", verdict(json.0 <= Duration::from_millis(15)));
    if let Some(kb) = rss_kb {
        println!("target ≤ 40 MB RSS:  {}", verdict(kb <= 40 * 1024));
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn run_sh(cmd: &str) {
    Command::new("sh").arg("-c").arg(cmd).status().expect("run sh");
}

/// (median, min) wall time of `n` runs.
fn time_runs(n: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    (times[n / 2], times[0])
}

/// Peak RSS in KB of one `inspect --json` run, from GNU time's `%M`.
fn peak_rss_kb(exe: &Path, model: &Path) -> Option<u64> {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(exe)
        .arg("inspect")
        .arg(model)
        .args(["--json", "--input", "input=1x3x224x224"])
        .stdout(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stderr).lines().last()?.trim().parse().ok()
}

// ---- writing the model: plain protobuf encoding, weights streamed ----

fn varint_len(mut v: u64) -> u64 {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn string_field(out: &mut Vec<u8>, number: u32, s: &str) {
    put_len_field(out, number, s.as_bytes());
}

fn varint_field(out: &mut Vec<u8>, number: u32, v: u64) {
    put_varint(out, u64::from(number) << 3);
    put_varint(out, v);
}

fn ints_attr(name: &str, values: &[i64]) -> Vec<u8> {
    let mut a = Vec::new();
    string_field(&mut a, 1, name);
    let mut packed = Vec::new();
    for &v in values {
        put_varint(&mut packed, v as u64);
    }
    put_len_field(&mut a, 8, &packed);
    varint_field(&mut a, 20, 7); // INTS
    a
}

fn int_attr(name: &str, value: i64) -> Vec<u8> {
    let mut a = Vec::new();
    string_field(&mut a, 1, name);
    varint_field(&mut a, 3, value as u64);
    varint_field(&mut a, 20, 2); // INT
    a
}

fn node(op: &str, name: &str, inputs: &[&str], output: &str, attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut n = Vec::new();
    for i in inputs {
        string_field(&mut n, 1, i);
    }
    string_field(&mut n, 2, output);
    string_field(&mut n, 3, name);
    string_field(&mut n, 4, op);
    for a in attrs {
        put_len_field(&mut n, 5, a);
    }
    n
}

fn value_info(name: &str, dims: &[&str]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dim = Vec::new();
        match d.parse::<u64>() {
            Ok(v) => varint_field(&mut dim, 1, v),
            Err(_) => string_field(&mut dim, 2, d),
        }
        put_len_field(&mut shape, 1, &dim);
    }
    let mut tensor = Vec::new();
    varint_field(&mut tensor, 1, FLOAT);
    put_len_field(&mut tensor, 2, &shape);
    let mut ty = Vec::new();
    put_len_field(&mut ty, 1, &tensor);
    let mut v = Vec::new();
    string_field(&mut v, 1, name);
    put_len_field(&mut v, 2, &ty);
    v
}

/// An initializer's header (dims, type, name) plus the key and length of its
/// raw_data; the payload itself is streamed separately.
fn initializer_head(name: &str, dims: &[u64]) -> (Vec<u8>, u64) {
    let elems: u64 = dims.iter().product();
    let bytes = elems * 4;
    let mut t = Vec::new();
    let mut packed = Vec::new();
    for &d in dims {
        put_varint(&mut packed, d);
    }
    put_len_field(&mut t, 1, &packed);
    varint_field(&mut t, 2, FLOAT);
    string_field(&mut t, 8, name);
    put_varint(&mut t, (9 << 3) | 2);
    put_varint(&mut t, bytes);
    (t, bytes)
}

fn write_vgg19(path: &Path) -> std::io::Result<()> {
    let mut nodes: Vec<Vec<u8>> = Vec::new();
    let mut inits: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut x = "input".to_string();
    let (mut c_in, mut conv_i, mut pool_i) = (3u64, 0, 0);
    for &c in VGG19 {
        if c == 0 {
            pool_i += 1;
            let out = format!("pool{pool_i}");
            let attrs = [ints_attr("kernel_shape", &[2, 2]), ints_attr("strides", &[2, 2])];
            nodes.push(node("MaxPool", &out, &[&x], &out, &attrs));
            x = out;
            continue;
        }
        conv_i += 1;
        let (w, b) = (format!("features.{conv_i}.weight"), format!("features.{conv_i}.bias"));
        inits.push(initializer_head(&w, &[c, c_in, 3, 3]));
        inits.push(initializer_head(&b, &[c]));
        let conv = format!("conv{conv_i}");
        let attrs = [ints_attr("kernel_shape", &[3, 3]), ints_attr("pads", &[1, 1, 1, 1])];
        nodes.push(node("Conv", &conv, &[&x, &w, &b], &conv, &attrs));
        let relu = format!("relu{conv_i}");
        nodes.push(node("Relu", &relu, &[&conv], &relu, &[]));
        x = relu;
        c_in = c;
    }
    nodes.push(node("Flatten", "flatten", &[&x], "flatten", &[int_attr("axis", 1)]));
    x = "flatten".into();
    for (i, (k, n)) in [(25088u64, 4096u64), (4096, 4096), (4096, 1000)].into_iter().enumerate() {
        let (w, b) = (format!("classifier.{i}.weight"), format!("classifier.{i}.bias"));
        inits.push(initializer_head(&w, &[n, k]));
        inits.push(initializer_head(&b, &[n]));
        let fc = if i == 2 { "output".to_string() } else { format!("fc{i}") };
        nodes.push(node("Gemm", &fc, &[&x, &w, &b], &fc, &[int_attr("transB", 1)]));
        x = fc.clone();
        if i < 2 {
            let relu = format!("fc_relu{i}");
            nodes.push(node("Relu", &relu, &[&x], &relu, &[]));
            x = relu;
        }
    }
    // Graph body without the initializers' payloads; then its total length.
    let mut small = Vec::new();
    for n in &nodes {
        put_len_field(&mut small, 1, n);
    }
    string_field(&mut small, 2, "vgg19");
    put_len_field(&mut small, 11, &value_info("input", &["batch", "3", "224", "224"]));
    put_len_field(&mut small, 12, &value_info("output", &["batch", "1000"]));
    let init_len: u64 = inits
        .iter()
        .map(|(head, payload)| {
            let len = head.len() as u64 + payload;
            1 + varint_len(len) + len
        })
        .sum();
    let graph_len = small.len() as u64 + init_len;

    let mut f = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut head = Vec::new();
    varint_field(&mut head, 1, 8); // ir_version
    let mut opset = Vec::new();
    varint_field(&mut opset, 2, 17);
    put_len_field(&mut head, 8, &opset);
    put_varint(&mut head, (7 << 3) | 2);
    put_varint(&mut head, graph_len);
    f.write_all(&head)?;
    f.write_all(&small)?;
    let chunk = vec![0x3cu8; 1 << 20];
    for (h, payload) in &inits {
        let mut key = Vec::new();
        put_varint(&mut key, (5 << 3) | 2);
        put_varint(&mut key, h.len() as u64 + payload);
        f.write_all(&key)?;
        f.write_all(h)?;
        let mut left = *payload;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            f.write_all(&chunk[..n])?;
            left -= n as u64;
        }
    }
    f.flush()
}
