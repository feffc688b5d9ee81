//! The `nnmem` binary: parse the command line, run, map the outcome to an exit code.

mod cli;

use clap::Parser;
use cli::exit::ExitCode;

fn main() {
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
