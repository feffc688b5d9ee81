//! Help that teaches: every subcommand's --help ends with real examples, value
//! lists are shown, aliases are not accepted silently, completions and the
//! man page are generated.

use assert_cmd::Command;

fn nnmem() -> Command {
    Command::cargo_bin("nnmem").expect("the nnmem binary is built")
}

fn stdout(args: &[&str]) -> String {
    let out = nnmem().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_subcommand_help_has_examples() {
    for sub in ["inspect", "audit", "diff", "fit", "sweep", "explain", "completions", "manpage"] {
        let help = stdout(&[sub, "--help"]);
        let at = help.find("Example").unwrap_or_else(|| panic!("{sub} --help has no examples:\n{help}"));
        let examples: Vec<&str> = help[at..].lines().skip(1).take_while(|l| l.starts_with("  ")).collect();
        assert!(!examples.is_empty() && examples.iter().all(|l| l.trim_start().starts_with("nnmem ")), "{sub}: {examples:?}");
    }
    assert!(stdout(&["--help"]).contains("Examples:"));
}

#[test]
fn value_lists_are_shown_and_aliases_refused() {
    let help = stdout(&["inspect", "-h"]);
    for list in ["pytorch, caffe, torch-nn, cudnn, tiny-dnn", "f32, f16, bf16, f64", "inference, training, style-transfer, decode, all"] {
        assert!(help.replace('\n', " ").split_whitespace().collect::<Vec<_>>().join(" ").contains(list), "missing {list} in:\n{help}");
    }
    let out = nnmem().args(["inspect", "model.onnx", "--profile", "torch"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "`torch` is ambiguous and must be refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("torch-nn"));
    let out = nnmem().args(["inspect", "model.onnx", "--dtype", "half"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn completions_and_man_page() {
    let bash = stdout(&["completions", "bash"]);
    assert!(bash.contains("complete") && bash.contains("inspect") && bash.contains("--scenario"));
    for shell in ["zsh", "fish"] {
        assert!(stdout(&["completions", shell]).contains("inspect"));
    }
    let man = stdout(&["manpage"]);
    assert!(man.contains(".TH nnmem 1") && man.contains("inspect"), "{}", &man[..200.min(man.len())]);
}
