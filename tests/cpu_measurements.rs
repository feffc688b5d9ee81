//! The `pytorch` profile against PyTorch CPU peaks measured on architectures the
//! shared ground truth does not hold (docs/measurements/cpu_*.json, made by
//! scripts/measure_cpu.py; graph-only ONNX exports in fixtures/measured/).
//!
//! Every case records the exact nnmem arguments that reproduce its inputs and
//! scenario; the prediction compared is the scenario's peak minus its weights
//! and inputs, because the measurement is above the resident weights and inputs
//! (style: weights, image and targets; decode: weights, the new token and the
//! past K/V cache). Rows marked `informational` (the eval exports, BatchNorm
//! folded) are not held. Limits per family (max |error|, median |error|):
//! vision and recurrent 8 % / 3 %, transformer 10 % / 5 %, style 5 % / 3 %.
//! The whole-family tests that still fail are ignored with the reason; beside
//! them, `*_but_known_gaps` hold every other row and fail when a known gap
//! (a peak set by Python variable lifetimes the graph cannot show) starts to hold.
//! docs/measurements/cpu_baseline_errors.md is the same comparison as a table
//! (scripts/compare_cpu.py).

use std::collections::BTreeMap;
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn limits(family: &str) -> (f64, f64) {
    match family {
        "transformer" => (0.10, 0.05),
        "style" => (0.05, 0.03),
        _ => (0.08, 0.03),
    }
}

fn scenario_key(scenario: &str) -> &str {
    match scenario {
        "style" => "style-transfer",
        "decode" => "inference",
        other => other,
    }
}

/// Every held row of `family` within its limits.
fn check_family(wanted: &str) {
    check_family_except(wanted, &[]);
}

/// Every held row of `family` within its limits, except the rows in `known`
/// (case key, exporter, why): those must still be outside them — a known gap that starts to
/// hold fails the test, so the list only shrinks. The median counts every row.
fn check_family_except(wanted: &str, known: &[(&str, &str, &str)]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("docs/measurements"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("cpu_") && n.ends_with(".json")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no docs/measurements/cpu_*.json");
    let mut errors: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut n = 0;
    for file in &files {
        let data: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        for (key, case) in data["cases"].as_object().unwrap() {
            let family = case["family"].as_str().unwrap();
            if family != wanted {
                continue;
            }
            let scenario = scenario_key(case["scenario"].as_str().unwrap());
            let measured = case["methods"]["profiler"]["peak_bytes"].as_u64().unwrap();
            for entry in case["nnmem"].as_array().unwrap() {
                if entry["informational"].as_bool().unwrap_or(false) {
                    continue;
                }
                let args: Vec<String> = entry["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
                let exporter = entry["exporter"].as_str().unwrap();
                let out = Command::cargo_bin("nnmem").unwrap().current_dir(root).args(&args).output().unwrap();
                n += 1;
                if !out.status.success() {
                    failures.push(format!("{key} ({exporter}): nnmem failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
                    errors.entry(family.to_string()).or_default().push(f64::INFINITY);
                    continue;
                }
                let r: Value = serde_json::from_slice(&out.stdout).unwrap();
                let sc = &r["scenarios"][scenario];
                let b = &sc["peak_breakdown"];
                let predicted = sc["peak_bytes"].as_u64().unwrap() as f64
                    - b["weights"].as_u64().unwrap_or(0) as f64
                    - b["inputs"].as_u64().unwrap_or(0) as f64;
                let error = (predicted - measured as f64) / measured as f64;
                eprintln!("{key} ({exporter}): measured {measured}, predicted {predicted}, error {:+.2} %", 100.0 * error);
                let (max, _) = limits(family);
                let gap = known.iter().find(|(k, e, _)| k == key && *e == exporter);
                if let Some((_, _, why)) = gap {
                    if error.abs() <= max {
                        failures.push(format!("{key} ({exporter}) now holds ({:+.1} %): take it off the known gaps", 100.0 * error));
                    } else {
                        eprintln!("known gap {key} ({exporter}): {why}");
                    }
                } else if error.abs() > max {
                    failures.push(format!("{key} ({exporter}): predicted {predicted}, measured {measured}, error {:+.1} % (limit {:.0} %)", 100.0 * error, 100.0 * max));
                }
                errors.entry(family.to_string()).or_default().push(error.abs());
            }
        }
    }
    assert!(n >= 8, "expected the whole {wanted} family, ran {n} rows");
    for (family, errs) in &mut errors {
        errs.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let m = errs.len() / 2;
        // the statistics.median of scripts/compare_cpu.py: the mean of the two middle values for an even count
        let median = if errs.len() % 2 == 0 { (errs[m - 1] + errs[m]) / 2.0 } else { errs[m] };
        let (_, med_limit) = limits(family);
        eprintln!("{family}: {} rows, median |error| {:.2} %", errs.len(), 100.0 * median);
        if median > med_limit {
            failures.push(format!("{family}: median |error| {:.1} % over {} rows (limit {:.0} %)", 100.0 * median, errs.len(), 100.0 * med_limit));
        }
    }
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn style_transfer_cases_within_limits() {
    check_family("style");
}

#[test]
#[ignore = "56 of 58 vision rows hold (median 0.0 %), but the TorchScript (legacy) export of UNet is -9.1 % in inference \
            at 256 and 512 px: its forward (`x = dec(torch.cat([skips.pop(), up(x)]))`) keeps the old `x` bound through \
            `dec`, a Python variable lifetime that file does not record; the dynamo export records the source lines and \
            is exact (docs/memory-model.md, 'Python locals')"]
fn vision_cases_within_limits() {
    check_family("vision");
}

/// What a TorchScript export cannot tell: a Python variable kept bound past
/// its last reader (docs/memory-model.md, "Python locals"); the dynamo exports
/// of the same models record it and hold.
const UNET_LIFETIME: &str = "the decoder keeps the old `x` bound through `dec(torch.cat(...))`; the same UNet written as \
                             statements exports the identical graph and measures nnmem's figure (scripts/unet_code_styles.py)";
const T5_LIFETIME: &str = "scores + position_bias bound to the Python local `scores` through the attention call, and \
                           top-level locals past their last reader";

#[test]
fn vision_cases_within_limits_but_known_gaps() {
    check_family_except(
        "vision",
        &[("unet/inference/b1_256", "legacy", UNET_LIFETIME), ("unet/inference/b1_512", "legacy", UNET_LIFETIME)],
    );
}

#[test]
fn recurrent_cases_within_limits() {
    check_family("recurrent");
}

#[test]
#[ignore = "issue 15: 46 of 48 rows within 10 %, median 0.3 %; over: the TorchScript (legacy) export of T5 in inference, \
            2x128 and 2x512 (-11.3 % / -14.8 %): the peak inside enc.0's attention also holds scores + position_bias \
            (bound to the Python local `scores` until the call returns), and at 2x128 the LM head's peak holds top-level \
            locals past their last reader. That file records no source lines; the dynamo export does, and is within 1 % \
            (docs/memory-model.md, 'Python locals')"]
fn transformer_cases_within_limits() {
    check_family("transformer");
}

#[test]
fn transformer_cases_within_limits_but_known_gaps() {
    check_family_except(
        "transformer",
        &[("t5/inference/b2_s128_d32", "legacy", T5_LIFETIME), ("t5/inference/b2_s512_d128", "legacy", T5_LIFETIME)],
    );
}

/// The measured KV-cache decode cases (GPT-2 and Llama at past 256 and 1,024,
/// both exporters) through `--scenario decode`: the step's peak above weights,
/// new token and cache within 0.1 % of PyTorch's; the cache's bytes and its
/// growth per token as the rule gives them (docs/memory-model.md, "KV-cache
/// decoding"); and the step peak's growth per token of past against the
/// measured one — (peak at 1,024 − peak at 256) / 768 plus the cache's own
/// growth, which the measurement leaves out — within 0.1 %.
#[test]
fn decode_cases_through_the_decode_scenario() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data: Value = serde_json::from_str(&std::fs::read_to_string(root.join("docs/measurements/cpu_transformer.json")).unwrap()).unwrap();
    // (model, exporter) -> [(past, measured, peak_bytes_per_token, cache_bytes_per_token)]
    let mut growth: BTreeMap<(String, String), Vec<(u64, f64, u64, u64)>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut n = 0;
    for (key, case) in data["cases"].as_object().unwrap() {
        if case["scenario"] != "decode" {
            continue;
        }
        let measured = case["methods"]["profiler"]["peak_bytes"].as_u64().unwrap();
        let past = key.rsplit("_p").next().unwrap().parse::<u64>().unwrap();
        for entry in case["nnmem"].as_array().unwrap() {
            let mut args: Vec<String> = entry["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
            let at = args.iter().position(|a| a == "--scenario").unwrap();
            args[at + 1] = "decode".into();
            let exporter = entry["exporter"].as_str().unwrap().to_string();
            let out = Command::cargo_bin("nnmem").unwrap().current_dir(root).args(&args).output().unwrap();
            assert!(out.status.success(), "{key} ({exporter}): {}", String::from_utf8_lossy(&out.stderr));
            n += 1;
            let r: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(r["scenarios"].get("inference").is_none(), "--scenario decode computes decode alone");
            let sc = &r["scenarios"]["decode"];
            let (b, d) = (&sc["peak_breakdown"], &sc["decode"]);
            let peak = sc["peak_bytes"].as_u64().unwrap();
            let predicted = (peak - b["weights"].as_u64().unwrap() - b["inputs"].as_u64().unwrap()) as f64;
            let error = (predicted - measured as f64) / measured as f64;
            eprintln!("{key} ({exporter}) decode: measured {measured}, predicted {predicted}, error {:+.3} %", 100.0 * error);
            if error.abs() > 0.001 {
                failures.push(format!("{key} ({exporter}): step peak {:+.3} % (limit 0.1 %)", 100.0 * error));
            }
            // The cache: every past input, at the case's length; the new token is the rest of the inputs.
            let cache_bytes: u64 = case["inputs"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(name, _)| name.starts_with("past_"))
                .map(|(_, dims)| dims.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).product::<u64>() * 4)
                .sum();
            assert_eq!(d["past_length"].as_u64(), Some(past), "{key} ({exporter})");
            assert_eq!(d["cache_bytes"].as_u64(), Some(cache_bytes), "{key} ({exporter})");
            assert_eq!(d["cache_bytes_per_token"].as_u64(), Some(cache_bytes / past), "{key} ({exporter})");
            assert_eq!(b["inputs"].as_u64().unwrap() - cache_bytes, 16, "{key} ({exporter}): the inputs are the cache and 2×1 token ids");
            let per_token = d["peak_bytes_per_token"].as_u64().unwrap();
            assert_eq!(d["next_peak_bytes"].as_u64(), Some(peak + per_token), "{key} ({exporter})");
            growth.entry((case["model"].as_str().unwrap().to_string(), exporter)).or_default().push((
                past,
                measured as f64,
                per_token,
                cache_bytes / past,
            ));
        }
    }
    assert_eq!(n, 8, "GPT-2 and Llama at two past lengths, both exporters");
    for ((model, exporter), mut rows) in growth {
        rows.sort_by_key(|r| r.0);
        let [(p0, m0, _, cache_per_token), (p1, m1, g1, _)] = rows[..] else { panic!("{model} ({exporter}): two past lengths") };
        let measured = (m1 - m0) / (p1 - p0) as f64 + cache_per_token as f64;
        let error = (g1 as f64 - measured) / measured;
        eprintln!("{model} ({exporter}): step peak per token of past {g1} B, measured {measured:.1} B, error {:+.3} %", 100.0 * error);
        if error.abs() > 0.001 {
            failures.push(format!("{model} ({exporter}): growth per token {g1} B vs measured {measured:.1} B ({:+.3} %)", 100.0 * error));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One TorchScript graph, two PyTorch peaks (scripts/t5_code_styles.py): T5's
/// attention as measured (`scores` stays bound through `w @ v`) and the same
/// ops with every intermediate rebound to `scores` (the sum and the softmax
/// input both alive in the softmax). The dynamo exports record the source
/// lines; nnmem reads each one's peak to the byte (docs/memory-model.md,
/// "Python locals").
#[test]
fn python_locals_tell_two_code_styles_apart() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("docs/measurements/code_styles.json")).unwrap()).unwrap();
    let styles = &data["t5_attention_styles"];
    assert_eq!(styles["torchscript_graphs_identical"], true);
    let mut peaks = Vec::new();
    for (style, case) in styles["cases"].as_object().unwrap() {
        let out = Command::cargo_bin("nnmem")
            .unwrap()
            .current_dir(root)
            .args(["inspect", case["dynamo_file"].as_str().unwrap(), "--json", "-q", "--scenario", "inference"])
            .args(["--input", "input_ids=2x512", "--input", "decoder_input_ids=2x128"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        let sc = &r["scenarios"]["inference"];
        let b = &sc["peak_breakdown"];
        let predicted = sc["peak_bytes"].as_u64().unwrap() - b["weights"].as_u64().unwrap() - b["inputs"].as_u64().unwrap();
        let measured = case["peak_bytes"].as_u64().unwrap();
        eprintln!("{style}: measured {measured}, predicted {predicted}");
        assert_eq!(predicted, measured, "{style}");
        peaks.push(measured);
    }
    assert_eq!(peaks.len(), 2);
    assert_ne!(peaks[0], peaks[1], "the two styles measure apart");
}
