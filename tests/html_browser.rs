//! The HTML report in a real browser: headless Chromium renders the VGG-19
//! fixture's page; the chart must have a laid-out area and the peak label must
//! name the JSON report's peak. Skips (with a message) where Chromium is absent;
//! `.ci/run` installs it.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use assert_cmd::Command;
use serde_json::Value;

fn chromium() -> Option<PathBuf> {
    let candidates = [std::env::var("NNMEM_CHROMIUM").ok(), Some("/usr/bin/chromium".into()), Some("/usr/bin/chromium-browser".into())];
    candidates.into_iter().flatten().map(PathBuf::from).find(|p| p.exists())
}

fn headless(browser: &Path, profile: &Path) -> Process {
    let mut cmd = Process::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1200,900",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

#[test]
fn vgg19_report_renders_with_the_right_peak() {
    let Some(browser) = chromium() else {
        // CI installs Chromium and sets NNMEM_REQUIRE_BROWSER: there, a missing browser fails.
        assert!(std::env::var_os("NNMEM_REQUIRE_BROWSER").is_none(), "NNMEM_REQUIRE_BROWSER is set but no Chromium was found");
        eprintln!("SKIPPED vgg19_report_renders_with_the_right_peak: no Chromium (install the chromium package, or set NNMEM_CHROMIUM)");
        return;
    };
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/caffe/vgg19_neural_style_v2.prototxt");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    Command::cargo_bin("nnmem").unwrap().arg("inspect").arg(&model).args(["--format", "html", "-o"]).arg(&page).assert().success();
    let out = Command::cargo_bin("nnmem").unwrap().arg("inspect").arg(&model).arg("--json").output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let peak = report["scenarios"]["training"]["peak_bytes"].as_u64().unwrap();
    let node = report["scenarios"]["training"]["peak_node"].as_str().unwrap().to_string();
    let phase = report["scenarios"]["training"]["peak_phase"].as_str().unwrap().to_string();

    let url = format!("file://{}", page.display());
    let dom = headless(&browser, &dir.path().join("profile-dom")).args(["--dump-dom", "--virtual-time-budget=2000"]).arg(&url).output().unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    // The inline script measured the laid-out timeline: a chart with real width.
    let width: u32 = dom
        .split("data-chart-width=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("the page did not report a chart width; DOM starts {:.300}", dom));
    assert!(width > 500, "timeline path is only {width} px wide");
    // The peak marker sits on the top of the stacked area (the page's script
    // measured the gap between the marker and the area's top edge at its x).
    for scenario in ["inference", "training"] {
        let attr = format!("id=\"timeline-{scenario}\"");
        let svg = dom.split(&attr).nth(1).unwrap_or_else(|| panic!("no {scenario} timeline"));
        let gap: f64 = svg
            .split("data-peak-gap=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|g| g.parse().ok())
            .unwrap_or_else(|| panic!("{scenario}: the page did not measure the peak gap: {:.300}", svg));
        assert!(gap <= 2.0, "{scenario}: the peak marker is {gap} px off the top of the area");
    }
    let label = format!("peak {} at {} ({})", nnmem::units::format_bytes(peak), node, phase);
    assert!(dom.contains("id=\"peak-label-training\""), "no training peak label");
    assert!(dom.contains(&label), "peak label {label:?} not in the rendered page");

    let shot = dir.path().join("shot.png");
    // Chromium logs D-Bus noise on stderr in containers: keep it out of the test output.
    let shot_run = headless(&browser, &dir.path().join("profile-shot")).arg(format!("--screenshot={}", shot.display())).arg(&url).output().unwrap();
    assert!(shot_run.status.success(), "{}", String::from_utf8_lossy(&shot_run.stderr));
    let bytes = std::fs::read(&shot).expect("Chromium wrote a screenshot");
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000, "screenshot is {} bytes", bytes.len());
    if let Ok(keep) = std::env::var("NNMEM_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
