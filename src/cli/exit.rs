//! Exit codes scripts can rely on (also stated in `--help`).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// The analysis ran and every assertion held.
    Success,
    /// The analysis ran but a budget assertion failed.
    AssertionFailed,
    /// nnmem could not run: bad arguments, an unreadable or malformed model.
    Error,
}

impl From<ExitCode> for i32 {
    fn from(code: ExitCode) -> i32 {
        match code {
            ExitCode::Success => 0,
            ExitCode::AssertionFailed => 1,
            ExitCode::Error => 2,
        }
    }
}
