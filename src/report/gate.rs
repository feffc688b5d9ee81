//! Budget gates: `--assert 'training.peak < 8GiB'` checks a figure of the report
//! against a limit, so a CI job fails (exit 1) when a model change blows it.
//!
//! Grammar: `SUBJECT OP VALUE`.
//! - SUBJECT: `params`, `non_trainable`, `param_bytes`, `activation_bytes`, or
//!   `SCENARIO.FIGURE` with SCENARIO `inference` | `training` | `style-transfer`
//!   and FIGURE `peak` or a peak-breakdown category (`weights`, `weight_grads`,
//!   `optimizer_state`, `activations`, `saved_for_backward`, `activation_grads`,
//!   `workspace`, `inputs`).
//! - OP: `<`, `<=`, `>`, `>=`, `==`, `!=`.
//! - VALUE: bytes with a unit (`8GiB`, `500MB`; KB/MB/GB are powers of 10,
//!   KiB/MiB/GiB powers of 2) for byte figures; a count (`25000000`, `25M`,
//!   `1.5G`) for `params` and `non_trainable`. A value of 2^64 or more is
//!   refused, never saturated (`units::parse_bytes`, `units::parse_count`).

use std::fmt;

use crate::units::{format_bytes, format_count, parse_bytes, parse_count};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessEq,
    Greater,
    GreaterEq,
    Equal,
    NotEqual,
}

impl Comparison {
    fn holds(self, left: u64, right: u64) -> bool {
        match self {
            Comparison::Less => left < right,
            Comparison::LessEq => left <= right,
            Comparison::Greater => left > right,
            Comparison::GreaterEq => left >= right,
            Comparison::Equal => left == right,
            Comparison::NotEqual => left != right,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Comparison::Less => "<",
            Comparison::LessEq => "<=",
            Comparison::Greater => ">",
            Comparison::GreaterEq => ">=",
            Comparison::Equal => "==",
            Comparison::NotEqual => "!=",
        }
    }
}

/// What a gate measures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A top-level total (`params`, `param_bytes`, …).
    Total(String),
    /// A scenario's peak (`figure` == "peak") or one category of its peak breakdown.
    Scenario { scenario: String, figure: String },
}

impl Subject {
    /// Counts of elements, not bytes.
    fn is_count(&self) -> bool {
        matches!(self, Subject::Total(t) if t == "params" || t == "non_trainable")
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Total(t) => f.write_str(t),
            Subject::Scenario { scenario, figure } => write!(f, "{scenario}.{figure}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gate {
    pub text: String,
    pub subject: Subject,
    pub comparison: Comparison,
    pub limit: u64,
}

const TOTALS: [&str; 4] = ["params", "non_trainable", "param_bytes", "activation_bytes"];
const SCENARIOS: [&str; 3] = ["inference", "training", "style-transfer"];
const FIGURES: [&str; 9] = [
    "peak",
    "weights",
    "weight_grads",
    "optimizer_state",
    "activations",
    "saved_for_backward",
    "activation_grads",
    "workspace",
    "inputs",
];

impl Gate {
    /// Parse `training.peak < 8GiB`; the error says what was expected.
    pub fn parse(text: &str) -> Result<Gate, String> {
        let ops = [("<=", Comparison::LessEq), (">=", Comparison::GreaterEq), ("==", Comparison::Equal), ("!=", Comparison::NotEqual), ("<", Comparison::Less), (">", Comparison::Greater)];
        let (at, symbol, comparison) = ops
            .iter()
            .filter_map(|(s, c)| text.find(s).map(|i| (i, *s, *c)))
            .min_by_key(|(i, s, _)| (*i, std::cmp::Reverse(s.len())))
            .ok_or_else(|| format!("\"{text}\": expected SUBJECT OP VALUE, e.g. 'training.peak < 8GiB'"))?;
        let left = text[..at].trim();
        let right = text[at + symbol.len()..].trim();
        let subject = match left.split_once('.') {
            None if TOTALS.contains(&left) => Subject::Total(left.to_string()),
            Some((s, f)) if SCENARIOS.contains(&s) && FIGURES.contains(&f) => {
                Subject::Scenario { scenario: s.to_string(), figure: f.to_string() }
            }
            _ => {
                return Err(format!(
                    "\"{text}\": unknown subject \"{left}\" (use {}, or SCENARIO.FIGURE with SCENARIO one of {} and FIGURE one of {})",
                    TOTALS.join(", "),
                    SCENARIOS.join(", "),
                    FIGURES.join(", ")
                ))
            }
        };
        if right.is_empty() {
            return Err(format!("\"{text}\": expected a value after \"{symbol}\""));
        }
        let limit = if subject.is_count() { parse_count(right) } else { parse_bytes(right) }
            .map_err(|e| format!("\"{text}\": {e}"))?;
        Ok(Gate { text: text.to_string(), subject, comparison, limit })
    }

    /// The scenario this gate needs computed, if any.
    pub fn scenario(&self) -> Option<&str> {
        match &self.subject {
            Subject::Scenario { scenario, .. } => Some(scenario),
            Subject::Total(_) => None,
        }
    }

    /// Check the gate against the figure; `Err` is the one-line reason it failed.
    pub fn check(&self, value: u64) -> Result<(), String> {
        if self.comparison.holds(value, self.limit) {
            return Ok(());
        }
        let shown = |v: u64| if self.subject.is_count() { format_count(v) } else { format!("{} ({} bytes)", format_bytes(v), format_count(v)) };
        Err(format!(
            "assertion failed: {} {} {}: {} is {}",
            self.subject,
            self.comparison.symbol(),
            shown(self.limit),
            self.subject,
            shown(value)
        ))
    }
}

/// The figure a gate measures, read from the JSON report (the same numbers
/// `--json` prints). A scenario or category that is absent reads as 0.
pub fn value_of(subject: &Subject, report: &super::json::JsonReport) -> u64 {
    match subject {
        Subject::Total(t) => match t.as_str() {
            "params" => report.totals.params,
            "non_trainable" => report.totals.non_trainable,
            "param_bytes" => report.totals.param_bytes,
            _ => report.totals.activation_bytes,
        },
        Subject::Scenario { scenario, figure } => {
            let sc = report.scenarios.get(scenario.as_str());
            let v = if figure == "peak" {
                sc.and_then(|s| s.get("peak_bytes"))
            } else {
                sc.and_then(|s| s.get("peak_breakdown")).and_then(|b| b.get(figure.as_str()))
            };
            v.and_then(|v| v.as_u64()).unwrap_or(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scenario_figures_and_totals() {
        let g = Gate::parse("training.peak < 8GiB").unwrap();
        assert_eq!(g.subject, Subject::Scenario { scenario: "training".into(), figure: "peak".into() });
        assert_eq!((g.comparison, g.limit), (Comparison::Less, 8 << 30));
        let g = Gate::parse("inference.workspace<=500MB").unwrap();
        assert_eq!((g.comparison, g.limit), (Comparison::LessEq, 500_000_000));
        let g = Gate::parse("params >= 25M").unwrap();
        assert_eq!((g.subject, g.limit), (Subject::Total("params".into()), 25_000_000));
    }

    #[test]
    fn bad_syntax_says_what_was_expected() {
        assert!(Gate::parse("training.peak 8GiB").unwrap_err().contains("expected SUBJECT OP VALUE"));
        assert!(Gate::parse("training.speed < 1").unwrap_err().contains("unknown subject"));
        assert!(Gate::parse("training.peak < 8 parsecs").unwrap_err().contains("unknown unit"));
        assert!(Gate::parse("params < ").unwrap_err().contains("expected a value"));
    }

    #[test]
    fn failing_gate_gives_one_line_reason() {
        let g = Gate::parse("training.peak < 1KiB").unwrap();
        assert!(g.check(1023).is_ok());
        let e = g.check(2048).unwrap_err();
        assert_eq!(e, "assertion failed: training.peak < 1.00 KiB (1,024 bytes): training.peak is 2.00 KiB (2,048 bytes)");
        assert!(Gate::parse("params != 5").unwrap().check(5).is_err());
    }
}
