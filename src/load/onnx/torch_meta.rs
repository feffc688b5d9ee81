//! What PyTorch's dynamo exporter records about each node in its
//! `metadata_props`: the module path (`pkg.torch.onnx.name_scopes`) and the
//! traced call the node was expanded from (`pkg.torch.onnx.fx_node`). Its node
//! names (`node_MatMul_64`) carry no module path, unlike the TorchScript
//! exporter's `/layer1/conv1/Conv`, so this is where a dynamo graph's scopes
//! come from.
//!
//! ```text
//! pkg.torch.onnx.name_scopes = ['', 'layers.0', 'layers.0.query', 'linear']
//! pkg.torch.onnx.fx_node = %scaled_dot_product_attention : [num_users=1] =
//!     call_function[target=torch.ops.aten.scaled_dot_product_attention.default](
//!     args = (%transpose, %transpose_1, %transpose_2, None, 0.1), kwargs = {})
//! ```

use super::proto::StringStringEntryProto;
use crate::graph::{FrameworkCall, SourceLine};
use std::sync::Arc;

const NAME_SCOPES: &str = "pkg.torch.onnx.name_scopes";
const FX_NODE: &str = "pkg.torch.onnx.fx_node";
const STACK_TRACE: &str = "pkg.torch.onnx.stack_trace";

fn prop<'a>(props: &'a [StringStringEntryProto], key: &str) -> Option<&'a str> {
    props.iter().find(|p| p.key == key).map(|p| p.value.as_str())
}

/// The module path in `name_scopes`: the list names the root module (`''`),
/// each submodule by its qualified name, then the traced call itself, which is
/// not a module. `None` when the node has no such entry.
pub(super) fn module_scope(props: &[StringStringEntryProto]) -> Option<Vec<String>> {
    let list = prop(props, NAME_SCOPES)?;
    let items = split_top_level(list.trim().strip_prefix('[')?.strip_suffix(']')?);
    let names: Vec<String> = items.iter().map(|s| unquote(s).to_string()).collect();
    if names.len() < 2 {
        return Some(Vec::new());
    }
    Some(names[1..names.len() - 1].iter().filter(|n| !n.is_empty()).cloned().collect())
}

/// The traced call in `fx_node`, when it is a `call_function`, with the source
/// lines of `stack_trace`; `previous` (the last node's stack) is shared when
/// the lines are the same.
pub(super) fn framework_call(
    props: &[StringStringEntryProto],
    previous: Option<&Arc<[SourceLine]>>,
) -> Option<FrameworkCall> {
    let text = prop(props, FX_NODE)?;
    let id = text.trim().strip_prefix('%')?.split([' ', ':']).next()?.to_string();
    let target_at = text.find("call_function[target=")? + "call_function[target=".len();
    let rest = &text[target_at..];
    let target = &rest[..rest.find(']')?];
    let target = target.strip_prefix("torch.ops.").unwrap_or(target);
    // `aten.add.Tensor`, `aten.scaled_dot_product_attention.default`: drop the overload.
    let function = match target.matches('.').count() {
        0 | 1 => target.to_string(),
        _ => target[..target.rfind('.')?].to_string(),
    };
    let args = rest.find("args = (").map(|a| {
        let inner = &rest[a + "args = (".len()..];
        split_top_level(&inner[..matching_close(inner, '(', ')').unwrap_or(inner.len())])
    });
    let kwargs = rest.find("kwargs = {").map(|k| {
        let inner = &rest[k + "kwargs = {".len()..];
        split_top_level(&inner[..matching_close(inner, '{', '}').unwrap_or(inner.len())])
            .into_iter()
            .filter_map(|kv| kv.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
            .collect()
    });
    let stack = match (prop(props, STACK_TRACE).map(source_lines), previous) {
        (Some(lines), Some(p)) if lines[..] == p[..] => Arc::clone(p),
        (Some(lines), _) => lines.into(),
        (None, _) => Arc::default(),
    };
    Some(FrameworkCall { function, id, args: args.unwrap_or_default(), kwargs: kwargs.unwrap_or_default(), stack })
}

/// More frames than any module nesting has: a deeper stack is cut here (and
/// then no longer lines up with the node's scope, so no rule reads it).
const MOST_FRAMES: usize = 64;
/// Longer lines of code are cut: a statement's names and calls are at its start.
const LONGEST_CODE: usize = 1024;

/// The frames of a Python traceback (`File "m.py", line 12, in forward` then
/// the line of code), outermost first. Lines that fit neither are skipped; a
/// frame without its code line keeps an empty statement.
fn source_lines(trace: &str) -> Vec<SourceLine> {
    let mut frames: Vec<SourceLine> = Vec::new();
    let mut awaiting_code = false;
    for line in trace.lines() {
        let text = line.trim();
        if let Some(rest) = text.strip_prefix("File \"") {
            if frames.len() > MOST_FRAMES {
                break;
            }
            let Some((file, rest)) = rest.split_once('"') else { continue };
            let number = rest.trim_start_matches(", line ").split(',').next().unwrap_or("").trim();
            frames.push(SourceLine { location: format!("{file}:{number}"), code: String::new() });
            awaiting_code = true;
        } else if awaiting_code && !text.is_empty() {
            if let Some(last) = frames.last_mut() {
                let mut end = text.len().min(LONGEST_CODE);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                last.code = text[..end].to_string();
            }
            awaiting_code = false;
        }
    }
    frames
}

/// Index of the bracket closing an already opened `open` in `s`.
fn matching_close(s: &str, open: char, close: char) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            if depth == 0 {
                return Some(i);
            }
            depth -= 1;
        }
    }
    None
}

/// Splits at commas outside brackets and quotes; items trimmed, empty ones dropped.
fn split_top_level(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0usize);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(s[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim().to_string());
    out.retain(|x| !x.is_empty());
    out
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')).or_else(|| s.strip_prefix('"').and_then(|x| x.strip_suffix('"'))).unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Vec<StringStringEntryProto> {
        pairs.iter().map(|(k, v)| StringStringEntryProto { key: k.to_string(), value: v.to_string() }).collect()
    }

    #[test]
    fn stack_trace_frames_outermost_first() {
        let trace = "File \"/w/m.py\", line 377, in forward\n    x, bias, _ = blk(x, bias)\n  \
                     File \"/w/m.py\", line 326, in forward\n    scores = scores + position_bias\n";
        let p = props(&[(FX_NODE, "%add : [num_users=1] = call_function[target=torch.ops.aten.add.Tensor](args = (%a, %b), kwargs = {})"), (STACK_TRACE, trace)]);
        let call = framework_call(&p, None).unwrap();
        assert_eq!(call.stack.len(), 2);
        assert_eq!(call.stack[0].location, "/w/m.py:377");
        assert_eq!(call.stack[1].code, "scores = scores + position_bias");
        let again = framework_call(&p, Some(&call.stack)).unwrap();
        assert!(Arc::ptr_eq(&again.stack, &call.stack));
    }

    #[test]
    fn a_hostile_stack_is_cut() {
        let frame = "File \"m.py\", line 1, in forward\n    x = f(x)\n";
        assert_eq!(source_lines(&frame.repeat(10_000)).len(), MOST_FRAMES + 1);
        let long = format!("File \"m.py\", line 1, in forward\n    x = {}\n", "é".repeat(5_000));
        assert!(source_lines(&long)[0].code.len() <= LONGEST_CODE);
    }

    #[test]
    fn scope_drops_the_root_and_the_call() {
        let p = props(&[(NAME_SCOPES, "['', 'layers.0', 'layers.0.query', 'linear']")]);
        assert_eq!(module_scope(&p).unwrap(), vec!["layers.0", "layers.0.query"]);
        let p = props(&[(NAME_SCOPES, "['', 'add']")]);
        assert_eq!(module_scope(&p).unwrap(), Vec::<String>::new());
        assert_eq!(module_scope(&[]), None);
    }

    #[test]
    fn sdpa_call_with_positional_dropout() {
        let fx = "%scaled_dot_product_attention_1 : [num_users=1] = call_function[target=torch.ops.aten.scaled_dot_product_attention.default](args = (%transpose_4, %transpose_5, %transpose_6, None, 0.1), kwargs = {})";
        let c = framework_call(&props(&[(FX_NODE, fx)]), None).unwrap();
        assert_eq!(c.function, "aten.scaled_dot_product_attention");
        assert_eq!(c.id, "scaled_dot_product_attention_1");
        assert_eq!(c.args, vec!["%transpose_4", "%transpose_5", "%transpose_6", "None", "0.1"]);
        assert_eq!(c.arg(4, "dropout_p"), Some("0.1"));
        assert_eq!(c.arg(5, "is_causal"), None);
    }

    #[test]
    fn keyword_arguments_and_lists() {
        let fx = "%expand : [num_users=1] = call_function[target=torch.ops.aten.expand.default](args = (%unsqueeze, [%sym_size_int_2, %sym_size_int_3]), kwargs = {device: cpu, pin_memory: False})";
        let c = framework_call(&props(&[(FX_NODE, fx)]), None).unwrap();
        assert_eq!(c.function, "aten.expand");
        assert_eq!(c.args, vec!["%unsqueeze", "[%sym_size_int_2, %sym_size_int_3]"]);
        assert_eq!(c.kwargs, vec![("device".into(), "cpu".into()), ("pin_memory".into(), "False".into())]);
        assert_eq!(c.arg(9, "pin_memory"), Some("False"));
    }

    #[test]
    fn odd_text_is_no_call() {
        assert_eq!(framework_call(&props(&[(FX_NODE, "placeholder")]), None), None);
        assert_eq!(framework_call(&props(&[(FX_NODE, "%x : [] = call_module[target=foo](args = ())")]), None), None);
    }
}
