//! The `cudnn` profile against peaks measured on a GPU (docs/measurements/
//! cuda_h200_torch.json, made by scripts/measure_cuda.py on an H200 with
//! PyTorch + cuDNN): Gatys style transfer on VGG-19 up to relu5_1, three
//! optimizers, three sizes. The measurement is above the resident weights,
//! image and targets, so the prediction compared is peak − weights − inputs.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

#[test]
fn style_transfer_on_gpu_within_3_percent() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let measured: Value = serde_json::from_str(&std::fs::read_to_string(root.join("docs/measurements/cuda_h200_torch.json")).unwrap()).unwrap();
    let model = root.join("fixtures/caffe/vgg19_neural_style_v2.prototxt");
    let mut worst: f64 = 0.0;
    let mut n = 0;
    for (key, case) in measured["cases"].as_object().unwrap() {
        let parts: Vec<&str> = key.split('/').collect();
        let [model_name, optimizer, _batch, size] = parts[..] else { panic!("key {key}") };
        if model_name != "vgg19_style" {
            continue;
        }
        let optimizer = match optimizer {
            "adam" => "adam".to_string(),
            other => other.replace("lbfgs", "lbfgs:"),
        };
        let out = Command::cargo_bin("nnmem")
            .unwrap()
            .arg("inspect")
            .arg(&model)
            // scripts/measure_cuda.py computes the losses after the forward pass.
            .args(["--json", "-q", "--scenario", "style-transfer", "--profile", "cudnn", "--optimizer", &optimizer])
            .args(["--loss-placement", "after-forward"])
            .args(["--input", &format!("data=1x3x{size}x{size}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        let sc = &r["scenarios"]["style-transfer"];
        let b = &sc["peak_breakdown"];
        let predicted = sc["peak_bytes"].as_u64().unwrap() - b["weights"].as_u64().unwrap() - b["inputs"].as_u64().unwrap();
        let real = case["peak_bytes"].as_u64().unwrap();
        let error = (predicted as f64 - real as f64) / real as f64;
        eprintln!("{key}: measured {real}, predicted {predicted}, error {:+.2} %", 100.0 * error);
        assert!(error.abs() < 0.03, "{key}: predicted {predicted}, measured {real}");
        worst = worst.max(error.abs());
        n += 1;
    }
    assert_eq!(n, 9, "three optimizers at three sizes");
    eprintln!("worst |error| {:.2} % over {n} cases", 100.0 * worst);
}
