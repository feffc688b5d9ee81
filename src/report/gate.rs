//! Budget gates: `--assert 'training.peak < 8GiB'` checks a figure of the
//! analysis against a limit, so a CI job fails (exit 1) when a model change
//! blows it; `diff --assert 'training.peak.delta < 5%'` checks how a figure
//! changed between two sides. A figure that is incomplete (a lower bound) or
//! was not computed cannot be checked: that is an error (exit 2), never a pass.
//!
//! Grammar: `SUBJECT OP VALUE`.
//! - SUBJECT: `params`, `non_trainable`, `param_bytes`, `activation_bytes`, or
//!   `SCENARIO.FIGURE` with SCENARIO `inference` | `training` | `style-transfer`
//!   | `decode` and FIGURE `peak` or a peak-breakdown category (`weights`, `weight_grads`,
//!   `optimizer_state`, `activations`, `saved_for_backward`, `activation_grads`,
//!   `workspace`, `inputs`). For `diff`, SUBJECT is followed by `.delta`.
//! - OP: `<`, `<=`, `>`, `>=`, `==`, `!=`.
//! - VALUE: bytes with a unit (`8GiB`, `500MB`; KB/MB/GB are powers of 10,
//!   KiB/MiB/GiB powers of 2) for byte figures; a count (`25000000`, `25M`,
//!   `1.5G`) for `params` and `non_trainable`. A delta may be negative, or a
//!   percentage of side A's figure (`5%`). A value of 2^64 or more is refused,
//!   never saturated (`units::parse_bytes`, `units::parse_count`).

use std::fmt;

use crate::analysis::Analysed;
use crate::memory::{Category, Scenario};
use crate::units::{format_bytes, format_count, parse_bytes, parse_count};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// A gate's comparison operator.
pub enum Comparison {
    /// `<`
    Less,
    /// `<=`
    LessEq,
    /// `>`
    Greater,
    /// `>=`
    GreaterEq,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
}

impl Comparison {
    fn holds<T: PartialOrd>(self, left: T, right: T) -> bool {
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

    /// Splits `text` at its operator: (left, op, right).
    fn split(text: &str) -> Result<(&str, Comparison, &str), String> {
        let ops = [
            ("<=", Comparison::LessEq),
            (">=", Comparison::GreaterEq),
            ("==", Comparison::Equal),
            ("!=", Comparison::NotEqual),
            ("<", Comparison::Less),
            (">", Comparison::Greater),
        ];
        let (at, symbol, comparison) = ops
            .iter()
            .filter_map(|(s, c)| text.find(s).map(|i| (i, *s, *c)))
            .min_by_key(|(i, s, _)| (*i, std::cmp::Reverse(s.len())))
            .ok_or_else(|| format!("\"{text}\": expected SUBJECT OP VALUE, e.g. 'training.peak < 8GiB'"))?;
        let right = text[at + symbol.len()..].trim();
        if right.is_empty() {
            return Err(format!("\"{text}\": expected a value after \"{symbol}\""));
        }
        Ok((text[..at].trim(), comparison, right))
    }
}

/// A figure of the parameter totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Total {
    /// Trainable parameters (elements).
    Params,
    /// Non-trainable parameters (elements: BatchNorm statistics and the like).
    NonTrainable,
    /// Bytes of all parameters.
    ParamBytes,
    /// Bytes of distinct activation storage.
    ActivationBytes,
}

impl Total {
    /// Every total, in the order reports list them.
    pub const ALL: [Total; 4] = [Total::Params, Total::NonTrainable, Total::ParamBytes, Total::ActivationBytes];

    /// The name gates and JSON use.
    pub fn as_str(self) -> &'static str {
        match self {
            Total::Params => "params",
            Total::NonTrainable => "non_trainable",
            Total::ParamBytes => "param_bytes",
            Total::ActivationBytes => "activation_bytes",
        }
    }
}

/// A figure of one scenario: its peak, or one category of the peak's breakdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    /// The scenario's peak.
    Peak,
    /// One category of the peak's breakdown.
    Category(Category),
}

impl Figure {
    /// The name gates use (`peak`, a category's name).
    pub fn as_str(self) -> &'static str {
        match self {
            Figure::Peak => "peak",
            Figure::Category(c) => c.as_str(),
        }
    }

    fn parse(text: &str) -> Option<Figure> {
        if text == "peak" {
            return Some(Figure::Peak);
        }
        Category::ALL.iter().copied().find(|c| c.as_str() == text).map(Figure::Category)
    }
}

/// What a gate measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A model-wide total.
    Total(Total),
    /// A figure of one scenario.
    Scenario(Scenario, Figure),
}

/// Why a subject has no figure to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// The scenario was not computed (`--scenario` left it out).
    NotComputed(Scenario),
    /// The figure is a lower bound: the reason and how to complete it.
    Incomplete(String),
    /// A decode figure of a model without a KV cache.
    NoKvCache,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NotComputed(s) => write!(f, "the {} scenario was not computed (choose it with --scenario)", s.as_str()),
            Unavailable::Incomplete(why) => write!(f, "the figure is incomplete, only a lower bound: {why}"),
            Unavailable::NoKvCache => f.write_str(
                "the model has no KV cache (past keys and values as graph inputs joined into present outputs), so no decode scenario",
            ),
        }
    }
}

impl Subject {
    /// Parses `params`, `training.peak`, `inference.activations`…; `None` when unknown.
    pub fn parse(text: &str) -> Option<Subject> {
        if let Some(t) = Total::ALL.iter().copied().find(|t| t.as_str() == text) {
            return Some(Subject::Total(t));
        }
        let (s, f) = text.split_once('.')?;
        let scenario = Scenario::ALL.into_iter().find(|x| x.as_str() == s)?;
        Some(Subject::Scenario(scenario, Figure::parse(f)?))
    }

    fn grammar() -> String {
        let totals: Vec<&str> = Total::ALL.iter().map(|t| t.as_str()).collect();
        let figures: Vec<&str> = std::iter::once("peak").chain(Category::ALL.iter().map(|c| c.as_str())).collect();
        format!(
            "use {}, or SCENARIO.FIGURE with SCENARIO one of inference, training, style-transfer, decode and FIGURE one of {}",
            totals.join(", "),
            figures.join(", ")
        )
    }

    /// Counts of elements, not bytes.
    pub fn is_count(self) -> bool {
        matches!(self, Subject::Total(Total::Params | Total::NonTrainable))
    }

    /// The scenario this subject needs computed, if any.
    pub fn scenario(self) -> Option<Scenario> {
        match self {
            Subject::Scenario(s, _) => Some(s),
            Subject::Total(_) => None,
        }
    }

    /// The figure in `a`, or why there is none to check.
    pub fn value(self, a: &Analysed) -> Result<u64, Unavailable> {
        match self {
            Subject::Total(t) => {
                let totals = a.graph.param_totals();
                let params_complete = a.graph.params_complete();
                let (value, complete, why) = match t {
                    Total::Params => (totals.params, params_complete, "weights"),
                    Total::NonTrainable => (totals.non_trainable, params_complete, "weights"),
                    Total::ParamBytes => (totals.param_bytes, params_complete, "weights"),
                    Total::ActivationBytes => (
                        super::activation_bytes(&a.graph),
                        !a.graph.tensors.iter().any(|t| t.kind == crate::graph::TensorKind::Activation && t.shape.is_none()),
                        "activations",
                    ),
                };
                if complete {
                    Ok(value)
                } else {
                    let bind = crate::analysis::missing_bindings(&a.graph);
                    Err(Unavailable::Incomplete(format!(
                        "some {why} have an unknown size{}",
                        if bind.is_empty() { String::new() } else { format!("; bind them with {}", bind.join(" ")) }
                    )))
                }
            }
            Subject::Scenario(s, figure) => {
                if s == Scenario::Decode && a.graph.kv_cache.is_none() {
                    return Err(Unavailable::NoKvCache);
                }
                let sc = a.memory.scenario(s).ok_or(Unavailable::NotComputed(s))?;
                if let Some(why) = crate::analysis::incompleteness(&a.graph, sc) {
                    return Err(Unavailable::Incomplete(why));
                }
                Ok(match figure {
                    Figure::Peak => sc.peak_bytes,
                    Figure::Category(c) => sc.peak_breakdown.get(c),
                })
            }
        }
    }

    fn show(self, v: u64) -> String {
        if self.is_count() {
            format_count(v)
        } else {
            format!("{} ({} bytes)", format_bytes(v), format_count(v))
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Total(t) => f.write_str(t.as_str()),
            Subject::Scenario(s, figure) => write!(f, "{}.{}", s.as_str(), figure.as_str()),
        }
    }
}

/// A limit on one figure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gate {
    /// The gate as the user wrote it.
    pub text: String,
    /// The figure it checks.
    pub subject: Subject,
    /// How the figure compares with the limit.
    pub comparison: Comparison,
    /// The limit, in bytes or elements.
    pub limit: u64,
}

/// What a failed check says (one line each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateFailure {
    /// The figure is there and breaks the limit: exit 1.
    Failed(String),
    /// The figure cannot be checked: exit 2.
    Unavailable(String),
}

impl Gate {
    /// Parse `training.peak < 8GiB`; the error says what was expected.
    pub fn parse(text: &str) -> Result<Gate, String> {
        let (left, comparison, right) = Comparison::split(text)?;
        let subject = Subject::parse(left)
            .ok_or_else(|| format!("\"{text}\": unknown subject \"{left}\" ({})", Subject::grammar()))?;
        let limit = if subject.is_count() { parse_count(right) } else { parse_bytes(right) }
            .map_err(|e| format!("\"{text}\": {e}"))?;
        Ok(Gate { text: text.to_string(), subject, comparison, limit })
    }

    /// Check the gate against a figure; `Err` is the one-line reason it failed.
    pub fn check(&self, value: u64) -> Result<(), String> {
        if self.comparison.holds(value, self.limit) {
            return Ok(());
        }
        Err(format!(
            "assertion failed: {} {} {}: {} is {}",
            self.subject,
            self.comparison.symbol(),
            self.subject.show(self.limit),
            self.subject,
            self.subject.show(value)
        ))
    }

    /// Checks the gate on an analysis.
    pub fn evaluate(&self, a: &Analysed) -> Result<(), GateFailure> {
        match self.subject.value(a) {
            Ok(v) => self.check(v).map_err(GateFailure::Failed),
            Err(why) => Err(GateFailure::Unavailable(format!("cannot check '{}': {why}", self.text))),
        }
    }
}

/// How much a figure may change between diff's sides.
#[derive(Clone, Debug, PartialEq)]
pub enum DeltaLimit {
    /// Percent of side A's figure.
    Percent(f64),
    /// Bytes or elements, signed.
    Amount(i128),
}

/// A limit on the change of one figure: `training.peak.delta < 5%`.
#[derive(Clone, Debug, PartialEq)]
pub struct DeltaGate {
    /// The gate as the user wrote it.
    pub text: String,
    /// The figure whose change it checks.
    pub subject: Subject,
    /// How the change compares with the limit.
    pub comparison: Comparison,
    /// The limit on the change.
    pub limit: DeltaLimit,
}

impl DeltaGate {
    /// Parses `training.peak.delta < 5%`; the error says what was expected.
    pub fn parse(text: &str) -> Result<DeltaGate, String> {
        let (left, comparison, right) = Comparison::split(text)?;
        let subject = left
            .strip_suffix(".delta")
            .and_then(Subject::parse)
            .ok_or_else(|| format!("\"{text}\": unknown subject \"{left}\" (diff gates are SUBJECT.delta: {})", Subject::grammar()))?;
        let (negative, magnitude) = match right.strip_prefix('-') {
            Some(m) => (true, m.trim()),
            None => (false, right),
        };
        let limit = if let Some(p) = magnitude.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| format!("\"{text}\": \"{right}\" is not a percentage"))?;
            if !v.is_finite() {
                return Err(format!("\"{text}\": \"{right}\" is not a percentage"));
            }
            DeltaLimit::Percent(if negative { -v } else { v })
        } else {
            let v = if subject.is_count() { parse_count(magnitude) } else { parse_bytes(magnitude) }
                .map_err(|e| format!("\"{text}\": {e}"))?;
            DeltaLimit::Amount(if negative { -i128::from(v) } else { i128::from(v) })
        };
        Ok(DeltaGate { text: text.to_string(), subject, comparison, limit })
    }

    /// Checks B − A against the limit.
    pub fn evaluate(&self, a: &Analysed, b: &Analysed) -> Result<(), GateFailure> {
        let unavailable = |side: &str, why: Unavailable| GateFailure::Unavailable(format!("cannot check '{}' on side {side}: {why}", self.text));
        let x = self.subject.value(a).map_err(|w| unavailable("A", w))?;
        let y = self.subject.value(b).map_err(|w| unavailable("B", w))?;
        let delta = i128::from(y) - i128::from(x);
        let (holds, shown) = match self.limit {
            DeltaLimit::Amount(limit) => (self.comparison.holds(delta, limit), format!("{delta:+}")),
            DeltaLimit::Percent(limit) => {
                let pct = if x == 0 {
                    if delta == 0 { 0.0 } else { f64::INFINITY.copysign(delta as f64) }
                } else {
                    delta as f64 * 100.0 / x as f64
                };
                (self.comparison.holds(pct, limit), format!("{pct:+.2}%"))
            }
        };
        if holds {
            Ok(())
        } else {
            Err(GateFailure::Failed(format!(
                "assertion failed: {}: {} went from {} to {} ({shown})",
                self.text,
                self.subject,
                self.subject.show(x),
                self.subject.show(y)
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scenario_figures_and_totals() {
        let g = Gate::parse("training.peak < 8GiB").unwrap();
        assert_eq!(g.subject, Subject::Scenario(Scenario::Training, Figure::Peak));
        assert_eq!((g.comparison, g.limit), (Comparison::Less, 8 << 30));
        let g = Gate::parse("inference.workspace<=500MB").unwrap();
        assert_eq!(g.subject, Subject::Scenario(Scenario::Inference, Figure::Category(Category::Workspace)));
        assert_eq!((g.comparison, g.limit), (Comparison::LessEq, 500_000_000));
        let g = Gate::parse("params >= 25M").unwrap();
        assert_eq!((g.subject, g.limit), (Subject::Total(Total::Params), 25_000_000));
        let g = Gate::parse("style-transfer.activation_grads > 0").unwrap();
        assert_eq!(g.subject, Subject::Scenario(Scenario::StyleTransfer, Figure::Category(Category::ActivationGrads)));
        let g = Gate::parse("decode.peak < 24GiB").unwrap();
        assert_eq!((g.subject, g.limit), (Subject::Scenario(Scenario::Decode, Figure::Peak), 24 << 30));
        assert_eq!(g.subject.scenario(), Some(Scenario::Decode));
    }

    #[test]
    fn bad_syntax_says_what_was_expected() {
        assert!(Gate::parse("training.peak 8GiB").unwrap_err().contains("expected SUBJECT OP VALUE"));
        assert!(Gate::parse("training.speed < 1").unwrap_err().contains("unknown subject"));
        assert!(Gate::parse("training.peak < 8 parsecs").unwrap_err().contains("unknown unit"));
        assert!(Gate::parse("params < ").unwrap_err().contains("expected a value"));
        assert!(Gate::parse("params < 1e30").unwrap_err().contains("out of range"));
        assert!(Gate::parse("params < 18446744073709551616").unwrap_err().contains("out of range"));
    }

    #[test]
    fn failing_gate_gives_one_line_reason() {
        let g = Gate::parse("training.peak < 1KiB").unwrap();
        assert!(g.check(1023).is_ok());
        let e = g.check(2048).unwrap_err();
        assert_eq!(e, "assertion failed: training.peak < 1.00 KiB (1,024 bytes): training.peak is 2.00 KiB (2,048 bytes)");
        assert!(Gate::parse("params != 5").unwrap().check(5).is_err());
    }

    #[test]
    fn delta_gates_take_percentages_and_signed_amounts() {
        let g = DeltaGate::parse("training.peak.delta < 5%").unwrap();
        assert_eq!(g.subject, Subject::Scenario(Scenario::Training, Figure::Peak));
        assert_eq!(g.limit, DeltaLimit::Percent(5.0));
        let g = DeltaGate::parse("params.delta <= -1M").unwrap();
        assert_eq!(g.limit, DeltaLimit::Amount(-1_000_000));
        let g = DeltaGate::parse("inference.peak.delta<100MiB").unwrap();
        assert_eq!(g.limit, DeltaLimit::Amount(100 << 20));
        assert!(DeltaGate::parse("training.peak < 5%").unwrap_err().contains(".delta"));
        assert!(DeltaGate::parse("training.peak.delta < x%").is_err());
    }
}
