//! Writing results: standard output, or a file written atomically (a
//! temporary file in the same folder, then a rename) that is never one of the
//! inputs.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

pub fn emit(bytes: &[u8], target: Option<&Path>, inputs: &[&Path]) -> Result<()> {
    match target.filter(|t| *t != Path::new("-")) {
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            match out.write_all(bytes).and_then(|_| out.flush()) {
                // A closed pipe (`nnmem … | head`) is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("writing to standard output"),
            }
        }
        Some(target) => write_atomically(target, bytes, inputs),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn write_atomically(target: &Path, bytes: &[u8], inputs: &[&Path]) -> Result<()> {
    if let Some(input) = inputs.iter().find(|i| same_file(target, i)) {
        bail!("refusing to write the report over the input {}", input.display());
    }
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name = target.file_name().context("the output path has no file name")?.to_string_lossy().into_owned();
    let tmp = dir.join(format!(".{file_name}.nnmem-{}.tmp", std::process::id()));
    let result = (|| -> Result<()> {
        // create_new: never through a symlink or over a file planted at the temporary name.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes).with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all().ok();
        std::fs::rename(&tmp, target).with_context(|| format!("renaming {} to {}", tmp.display(), target.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
