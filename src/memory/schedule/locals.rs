//! Python locals: how long eager code keeps a tensor that a variable names.
//!
//! In eager PyTorch a tensor bound to a local variable lives until the variable
//! is rebound or its function returns, however early its last reader ran:
//! `scores = scores + bias; w = softmax(scores); out = w @ v` keeps `scores`
//! through the product. The graph does not say which tensors are bound, but
//! the dynamo exporter records each node's call stack (`FrameworkCall::stack`,
//! one frame per module call, with the line of code). From it:
//!
//! - a *statement instance* is a run of consecutive nodes made by one line of
//!   one frame (a loop running the line again starts a new instance when its
//!   first module call comes round again);
//! - a tensor made in statement S of a frame and read by a later statement of
//!   the same frame was bound to S's targets (`x, bias = ...`), so it lives
//!   until the end of the next statement of that frame that assigns all of
//!   them, or until the frame returns.
//!
//! Files without call stacks (the TorchScript exporter, Caffe) get nothing
//! here; a statement that assigns no plain name (`skips.append(...)`,
//! `self.cache = ...`, `return ...`) holds nothing beyond its readers.

use crate::graph::{Graph, SourceLine, TensorId};
use std::collections::HashMap;

/// Deeper call stacks are not read.
const MOST_FRAMES: usize = 64;

/// For each tensor bound to a local: the last node that must run before the
/// variable lets it go.
pub(super) fn local_holds(graph: &Graph) -> Vec<(TensorId, usize)> {
    let stacks: Vec<Option<&[SourceLine]>> = graph
        .nodes
        .iter()
        .map(|n| {
            let stack = &n.call.as_ref()?.stack[..];
            // Frame d belongs to the module scope[..d]; a node whose stack does
            // not line up with its scope is left out rather than guessed at, as
            // is one deeper than any module nesting (the work here grows with
            // the square of the depth).
            (!stack.is_empty() && stack.len() == n.scope.len() + 1 && stack.len() <= MOST_FRAMES).then_some(stack)
        })
        .collect();
    if stacks.iter().all(Option::is_none) {
        return Vec::new();
    }
    let statements = Statements::find(graph, &stacks);
    let mut until: HashMap<TensorId, usize> = HashMap::new();
    for (r, node) in graph.nodes.iter().enumerate() {
        if stacks[r].is_none() {
            continue;
        }
        for &t in &node.inputs {
            let Some(p) = graph.tensor(t).producer.map(|p| p.0) else { continue };
            if p >= r || stacks[p].is_none() {
                continue;
            }
            if let Some(end) = statements.binding_end(p, r) {
                let e = until.entry(t).or_insert(end);
                *e = (*e).max(end);
            }
        }
    }
    let mut holds: Vec<(TensorId, usize)> = until.into_iter().collect();
    holds.sort_unstable_by_key(|(t, _)| t.0);
    holds
}

/// The statement instance being read at one depth.
struct Open<'a> {
    statement: usize,
    frame: usize,
    location: &'a str,
    /// Where its first module call went: a loop running the line again calls
    /// there again.
    first_call: Option<&'a str>,
    calls: usize,
    /// Calls the line's code can make at most (`input = module(input)`: one).
    most_calls: usize,
}

impl<'a> Open<'a> {
    /// Whether a module call starting at `location` still belongs to this
    /// instance rather than to the line's next run: a loop runs the line
    /// again when the calls outnumber the line's calls, or when the first
    /// call's code comes round again on what a call of this run made (`for up, dec in
    /// ...: x = dec(cat(up(x)))`; `word(ids) + position(pos)` calls one
    /// module type twice on other values and stays one run).
    fn another_call(&mut self, location: &'a str, reads_own: impl FnOnce() -> bool) -> bool {
        if self.calls >= self.most_calls || (self.first_call == Some(location) && reads_own()) {
            return false;
        }
        self.first_call.get_or_insert(location);
        self.calls += 1;
        true
    }
}

/// One run of nodes made by one line of one frame.
struct Statement {
    frame: usize,
    /// Its index in the frame's list of statements.
    position: usize,
    last_node: usize,
    targets: Vec<String>,
    /// The plain names its line mentions (`x, _ = attn(x, mask)`: x, _, attn, mask).
    mentions: Vec<String>,
}

struct Statements {
    /// `of[node][d]`: the statement instance node belongs to at depth d.
    of: Vec<Vec<usize>>,
    list: Vec<Statement>,
    /// Last node of each frame instance.
    frame_end: Vec<usize>,
    /// Per frame instance, its statements in order.
    frame_statements: Vec<Vec<usize>>,
}

impl Statements {
    fn find(graph: &Graph, stacks: &[Option<&[SourceLine]>]) -> Self {
        let n = graph.nodes.len();
        let mut of: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut list: Vec<Statement> = Vec::new();
        let mut frame_end: Vec<usize> = Vec::new();
        let mut frame_statements: Vec<Vec<usize>> = Vec::new();
        let depth = stacks.iter().flatten().map(|s| s.len()).max().unwrap_or(0);
        for d in 0..depth {
            let mut open: Option<Open<'_>> = None;
            let mut prev: Option<usize> = None;
            for i in 0..n {
                let Some(stack) = stacks[i] else { continue };
                let scope = &graph.nodes[i].scope;
                if stack.len() <= d {
                    open = None;
                    prev = Some(i);
                    continue;
                }
                let prev_stack = prev.and_then(|j| stacks[j].map(|s| (j, s)));
                // The node starts a call of a module inside this frame's line.
                let call_start = stack.len() > d + 1
                    && prev_stack.is_none_or(|(j, s)| s.len() <= d + 1 || graph.nodes[j].scope[..=d] != scope[..=d]);
                let same_frame = open.is_some()
                    && prev_stack.is_some_and(|(j, s)| {
                        s.len() > d
                            && graph.nodes[j].scope[..d] == scope[..d]
                            && s[..d].iter().map(|f| &f.location).eq(stack[..d].iter().map(|f| &f.location))
                    });
                let continues = match (&mut open, same_frame) {
                    (Some(o), true) if o.location == stack[d].location => {
                        let statement = o.statement;
                        // Whether the call reads what a module call of this run made.
                        let reads_own = || {
                            graph.nodes[i].inputs.iter().any(|t| {
                                graph.tensor(*t).producer.is_some_and(|p| {
                                    of[p.0].get(d) == Some(&statement) && stacks[p.0].is_some_and(|s| s.len() > d + 1)
                                })
                            })
                        };
                        !call_start || o.another_call(&stack[d + 1].location, reads_own)
                    }
                    _ => false,
                };
                if !continues {
                    let frame = match (&open, same_frame) {
                        (Some(o), true) => o.frame,
                        _ => {
                            frame_end.push(i);
                            frame_statements.push(Vec::new());
                            frame_end.len() - 1
                        }
                    };
                    let code = &stack[d].code;
                    let position = frame_statements[frame].len();
                    list.push(Statement { frame, position, last_node: i, targets: assigned_names(code), mentions: mentioned_names(code) });
                    frame_statements[frame].push(list.len() - 1);
                    open = Some(Open {
                        statement: list.len() - 1,
                        frame,
                        location: &stack[d].location,
                        first_call: call_start.then(|| stack[d + 1].location.as_str()),
                        calls: usize::from(call_start),
                        most_calls: call_count(code),
                    });
                }
                let o = open.as_ref().expect("a statement is open");
                list[o.statement].last_node = i;
                frame_end[o.frame] = i;
                of[i].push(o.statement);
                prev = Some(i);
            }
        }
        Statements { of, list, frame_end, frame_statements }
    }

    /// The node until which a tensor made by `producer` and read by `reader`
    /// is held by a variable: found at the outermost depth where the two sit
    /// in one frame but in different statements.
    fn binding_end(&self, producer: usize, reader: usize) -> Option<usize> {
        for (&sp, &sr) in self.of[producer].iter().zip(&self.of[reader]) {
            let (made, read) = (&self.list[sp], &self.list[sr]);
            if made.frame != read.frame {
                return None;
            }
            if sp == sr {
                continue;
            }
            if made.targets.is_empty() {
                return None;
            }
            // The reader reaches the tensor through a name it mentions: of
            // `x, _ = attn(x)` read by `x = x + y`, the tensor is `x`'s.
            let named: Vec<&String> = made.targets.iter().filter(|t| read.mentions.contains(t)).collect();
            let names = if named.is_empty() { made.targets.iter().collect() } else { named };
            let rebinding = self.frame_statements[made.frame][made.position + 1..]
                .iter()
                .find(|&&s| names.iter().all(|t| self.list[s].targets.contains(t)));
            return Some(match rebinding {
                Some(&s) => self.list[s].last_node,
                None => self.frame_end[made.frame],
            });
        }
        None
    }
}

/// The plain names a line of Python assigns: `x, bias, _ = blk(x)` gives
/// x, bias and _; `out += y` gives out; `self.a = ...`, `xs[0] = ...`,
/// `return ...` and expressions give none.
fn assigned_names(code: &str) -> Vec<String> {
    let bytes = code.as_bytes();
    let (mut depth, mut quote) = (0i32, None::<u8>);
    let mut cuts = Vec::new();
    for (i, &c) in bytes.iter().enumerate() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(c),
            (None, b'(' | b'[' | b'{') => depth += 1,
            (None, b')' | b']' | b'}') => depth -= 1,
            (None, b'#') => break,
            (None, b'=') if depth == 0 => {
                let before = i.checked_sub(1).map(|j| bytes[j]);
                let after = bytes.get(i + 1).copied();
                let comparison = matches!(before, Some(b'=' | b'!' | b'<' | b'>')) || after == Some(b'=');
                if !comparison {
                    cuts.push(i);
                }
            }
            _ => {}
        }
    }
    // A list or dict display binds the container; what it holds goes when
    // the code takes it out (`skips = [x]` ... `skips.pop()`), unseen here.
    if cuts.last().is_some_and(|&c| code[c + 1..].trim_start().starts_with(['[', '{'])) {
        return Vec::new();
    }
    let mut names = Vec::new();
    let mut start = 0;
    for cut in cuts {
        // `+=`, `//=`, `**=`, `@=`: the operator belongs to the target side.
        let target = code[start..cut].trim_end_matches(|c: char| "+-*/%@&|^<>".contains(c));
        for part in target.split(',') {
            let name = part.trim().trim_start_matches(['(', '[', '*']).trim_end_matches([')', ']']).trim();
            let is_name = !name.is_empty()
                && name.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_alphanumeric() || c == '_');
            if is_name && name != "return" {
                names.push(name.to_string());
            }
        }
        start = cut + 1;
    }
    names
}

/// The plain names a line mentions: identifiers not after a `.` (an
/// attribute) and outside strings.
fn mentioned_names(code: &str) -> Vec<String> {
    let bytes = code.as_bytes();
    let mut names: Vec<String> = Vec::new();
    let (mut i, mut quote) = (0, None::<u8>);
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                i += 1;
            }
            None if c == b'\'' || c == b'"' => {
                quote = Some(c);
                i += 1;
            }
            None if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let after_dot = code[..start].trim_end().ends_with('.');
                let name = &code[start..i];
                if !after_dot && !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
            None => i += 1,
        }
    }
    names
}

/// How many calls a line of code makes at most: every `(` that follows a
/// name or a closing bracket (`f(`, `g(x)(`, `xs[0](`).
fn call_count(code: &str) -> usize {
    let mut count = 0;
    let mut last = ' ';
    for c in code.chars() {
        if c == '(' && (last.is_alphanumeric() || matches!(last, '_' | ')' | ']')) {
            count += 1;
        }
        if !c.is_whitespace() {
            last = c;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{FrameworkCall, ModelFormat, Node, NodeId, Shape, Tensor, TensorKind};
    use crate::ops::{Activation, ElementwiseOp, Op};
    use crate::tensor::DType;
    use std::sync::Arc;

    /// Adds a node reading `input` whose call stack is `frames` (module
    /// path, `file:line`, code), one per depth; returns its output.
    fn node(g: &mut Graph, input: TensorId, frames: &[(&str, &str, &str)]) -> TensorId {
        let out = g.add_tensor(Tensor {
            name: format!("t{}", g.tensors.len()),
            shape: Some(Shape::new(vec![4])),
            unknown: None,
            dtype: DType::F32,
            kind: TensorKind::Activation,
            trainable: false,
            producer: Some(NodeId(g.nodes.len())),
        });
        let stack: Vec<SourceLine> =
            frames.iter().map(|(_, l, c)| SourceLine { location: l.to_string(), code: c.to_string() }).collect();
        let scope: Vec<String> = frames[1..].iter().map(|(m, _, _)| m.to_string()).collect();
        g.nodes.push(Node {
            name: format!("n{}", g.nodes.len()),
            source_type: "Relu".into(),
            op: Op::Elementwise(ElementwiseOp::Activation(Activation::Sigmoid)),
            inputs: vec![input],
            params: Vec::new(),
            outputs: vec![out],
            in_place: false,
            attrs: Vec::new(),
            scope: scope.into(),
            call: Some(FrameworkCall { stack: stack.into(), ..Default::default() }),
        });
        out
    }

    fn graph() -> (Graph, TensorId) {
        let mut g = Graph::new("t", ModelFormat::Onnx);
        let x = g.add_tensor(Tensor {
            name: "x".into(),
            shape: Some(Shape::new(vec![4])),
            unknown: None,
            dtype: DType::F32,
            kind: TensorKind::Input,
            trainable: false,
            producer: None,
        });
        (g, x)
    }

    #[test]
    fn a_local_lives_until_its_frame_returns() {
        // scores = q @ k; scores = scores + bias; w = softmax(scores); out = w @ v
        let (mut g, x) = graph();
        let attn = |line: &'static str, code: &'static str| [("", "m.py:1", "a = self.attn(x)"), ("attn", line, code)];
        let qk = node(&mut g, x, &attn("m.py:10", "scores = q @ k"));
        let biased = node(&mut g, qk, &attn("m.py:11", "scores = scores + bias"));
        let w = node(&mut g, biased, &attn("m.py:12", "w = softmax(scores)"));
        node(&mut g, w, &attn("m.py:13", "out = w @ v"));
        let holds = local_holds(&g);
        // The first `scores` goes as the line rebinding it ends; the second
        // and `w` stay to the end of the call.
        assert_eq!(holds, vec![(qk, 1), (biased, 3), (w, 3)]);
    }

    #[test]
    fn a_loop_over_modules_rebinds_its_variable_each_time() {
        // x = stem(x); for up, dec in ...: x = dec(cat(up(x)))
        let (mut g, x) = graph();
        let line = ("", "m.py:5", "x = dec(torch.cat([skips.pop(), up(x)], dim=1))");
        let stem = node(&mut g, x, &[("", "m.py:4", "x = self.stem(x)")]);
        let up0 = node(&mut g, stem, &[line, ("up.0", "conv.py:9", "return self._conv(x)")]);
        let cat0 = node(&mut g, up0, &[line]);
        let dec0 = node(&mut g, cat0, &[line, ("dec.0", "seq.py:3", "input = module(input)")]);
        let up1 = node(&mut g, dec0, &[line, ("up.1", "conv.py:9", "return self._conv(x)")]);
        let cat1 = node(&mut g, up1, &[line]);
        node(&mut g, cat1, &[line, ("dec.1", "seq.py:3", "input = module(input)")]);
        // The stem's `x` stays bound through the first dec, the first dec's
        // through the second: each run of the line rebinds it as it ends.
        assert_eq!(local_holds(&g), vec![(stem, 3), (dec0, 6)]);
    }

    #[test]
    fn containers_and_files_without_stacks_hold_nothing() {
        let (mut g, x) = graph();
        let a = node(&mut g, x, &[("", "m.py:1", "skips = [self.inc(x)]")]);
        node(&mut g, a, &[("", "m.py:2", "y = self.f(skips[-1])")]);
        assert!(local_holds(&g).is_empty());
        for n in &mut g.nodes {
            n.call = None;
        }
        assert!(local_holds(&g).is_empty());
    }

    #[test]
    fn any_stacks_give_holds_within_the_graph() {
        // Random scopes, stacks (aligned or not), lines and wiring: no panic,
        // and every hold ends at or after its tensor's producer, inside the graph.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let codes = ["x = f(x)", "x, y = g(x)", "return h(x)", "xs.append(k(x))", "y = a(b(x)) + x", "z = [x]", ""];
        let modules = ["a", "a.b", "c", "c.d.e"];
        for _ in 0..200 {
            let (mut g, x) = graph();
            let mut made = vec![x];
            for _ in 0..(1 + next(40)) {
                let input = made[next(made.len() as u64) as usize];
                let depth = next(4) as usize;
                let mut frames: Vec<(&str, String, &str)> = vec![("", format!("m.py:{}", next(6)), codes[next(7) as usize])];
                for _ in 0..depth {
                    let line = format!("{}.py:{}", next(3), next(4));
                    frames.push((modules[next(4) as usize], line, codes[next(7) as usize]));
                }
                let borrowed: Vec<(&str, &str, &str)> = frames.iter().map(|(m, l, c)| (*m, l.as_str(), *c)).collect();
                let out = node(&mut g, input, &borrowed);
                if next(5) == 0 {
                    // A stack that does not line up with the scope.
                    let last = g.nodes.len() - 1;
                    g.nodes[last].scope = Vec::new().into();
                }
                made.push(out);
            }
            for (t, until) in local_holds(&g) {
                let producer = g.tensor(t).producer.expect("a node's output").0;
                assert!(producer < until && until < g.nodes.len(), "{producer} {until}");
            }
        }
    }

    #[test]
    fn calls_a_line_makes() {
        assert_eq!(call_count("input = module(input)"), 1);
        assert_eq!(call_count("x = dec(torch.cat([skips.pop(), up(x)], dim=1))"), 4);
        assert_eq!(call_count("(a, b) = (c, d)"), 0);
    }

    #[test]
    fn names_a_line_mentions() {
        assert_eq!(mentioned_names("x = x + self.drop(a)"), vec!["x", "self", "a"]);
        assert_eq!(mentioned_names("y = f('x', z.w)"), vec!["y", "f", "z"]);
    }

    #[test]
    fn a_tuple_target_is_let_go_with_the_name_read() {
        // x, _ = attn(x); x = x + inp; y = mlp(x): the attention output is
        // `x`'s and goes as `x` is rebound, though `_` never is.
        let (mut g, x) = graph();
        let attn = node(&mut g, x, &[("", "m.py:1", "x, _ = self.attn(x)")]);
        let sum = node(&mut g, attn, &[("", "m.py:2", "x = x + inp")]);
        node(&mut g, sum, &[("", "m.py:3", "y = self.mlp(x)")]);
        assert_eq!(local_holds(&g), vec![(attn, 1), (sum, 2)]);
    }

    #[test]
    fn names_a_line_assigns() {
        assert_eq!(assigned_names("x, bias, _ = blk(x, bias)"), vec!["x", "bias", "_"]);
        assert_eq!(assigned_names("scores = scores + position_bias"), vec!["scores"]);
        assert_eq!(assigned_names("out += identity"), vec!["out"]);
        assert_eq!(assigned_names("x = dec(torch.cat([skips.pop(), up(x)], dim=1))"), vec!["x"]);
        assert_eq!(assigned_names("a = b = f(k=1)"), vec!["a", "b"]);
        assert_eq!(assigned_names("(q, k) = split(x)"), vec!["q", "k"]);
        assert!(assigned_names("return self.o(a), position_bias").is_empty());
        assert!(assigned_names("skips.append(d(self.pool(skips[-1])))").is_empty());
        assert!(assigned_names("self.cache = x").is_empty());
        assert!(assigned_names("skips = [self.inc(x)]").is_empty());
        assert!(assigned_names("if a == b:").is_empty());
        assert!(assigned_names("y = x if a <= b else z").len() == 1);
    }
}
