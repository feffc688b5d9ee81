//! The `nnmem` binary: parse the command line, run, map the outcome to an exit code.

mod cli;

use clap::Parser;
use cli::exit::ExitCode;

fn main() {
    allocate_from_the_heap();
    let parsed = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr.
            let code = if e.use_stderr() { i32::from(ExitCode::Error) } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = match cli::run(parsed) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nnmem: error: {}", nnmem::units::printable(&format!("{e:#}")));
            ExitCode::Error
        }
    };
    std::process::exit(code.into());
}

/// glibc serves every allocation of 128 KiB or more with its own `mmap`, fresh
/// zeroed pages that `free` hands straight back, until a freed one raises that
/// threshold (up to 32 MiB). A run builds its graph, memory plans and report
/// in vectors and maps of that size, so each paid a system call and a page
/// fault per 4 KiB touched, again for every one rebuilt; from the start at
/// glibc's own ceiling they come from the heap and reuse freed memory
/// (docs/onnx.md, "Numbers"). Larger blocks are still mapped and returned.
fn allocate_from_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; no allocation is live across it that it could affect.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}
