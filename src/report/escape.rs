//! One escaping helper per output format. Every name that comes from a model
//! file (layer, node, tensor, op type, input, symbolic dims, paths) goes
//! through the helper of the format it is written in. Each starts from
//! `units::printable`, so no C0/C1 control, DEL or bidirectional override ever
//! reaches a terminal, a spreadsheet or a page raw: it is shown as `\u{…}`.

use std::borrow::Cow;

use crate::units::{is_unsafe, printable};

/// Aligned text for a terminal.
pub fn terminal(text: &str) -> Cow<'_, str> {
    printable(text)
}

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a space
/// at either end, quotes doubled. A field that a spreadsheet would run as a
/// formula (starting with `=`, `+`, `-` or `@`) is prefixed with `'`.
pub fn csv(text: &str) -> String {
    let t = printable(text);
    let formula = t.starts_with(['=', '+', '-', '@']);
    let t = if formula { Cow::Owned(format!("'{t}")) } else { t };
    if t.contains([',', '"']) || t.starts_with(' ') || t.ends_with(' ') || formula {
        format!("\"{}\"", t.replace('"', "\"\""))
    } else {
        t.into_owned()
    }
}

/// Inline Markdown (a table cell, a heading, a list item): the characters
/// that start markup (emphasis, code, links, HTML, tables, headings, math)
/// are backslash-escaped, which CommonMark allows for any ASCII punctuation.
pub fn markdown(text: &str) -> String {
    let t = printable(text);
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '&' | '!' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// HTML text or attribute value.
pub fn html(text: &str) -> String {
    let t = printable(text);
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A serialized JSON document with every `is_unsafe` character that
/// serde_json leaves raw (DEL, C1 controls, bidi controls) written as a
/// `\uXXXX` escape: the same string to a JSON reader, inert on a terminal.
/// They can only occur inside strings, so the rewrite keeps the document valid.
pub fn json(document: Vec<u8>) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(&document) else { return document };
    if !text.chars().any(is_unsafe) {
        return document;
    }
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        if is_unsafe(c) && !matches!(c, '\n') {
            // Outside the BMP nothing is unsafe, so one \uXXXX is enough.
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_escapes_and_defuses_formulas() {
        assert_eq!(csv("conv1"), "conv1");
        assert_eq!(csv("[1,3,8,8]"), "\"[1,3,8,8]\"");
        assert_eq!(csv("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv("a\x1b[31mred\r\n"), "a\\u{1b}[31mred\\u{d}\\u{a}");
        assert_eq!(csv("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv("@cmd"), "\"'@cmd\"");
        assert_eq!(csv("abc\u{202e}def"), "abc\\u{202e}def");
    }

    #[test]
    fn markdown_escapes_markup() {
        assert_eq!(markdown("a|b`c*d_e"), "a\\|b\\`c\\*d\\_e");
        assert_eq!(markdown("# title ##"), "\\# title \\#\\#");
        assert_eq!(markdown("<img src=x>"), "\\<img src=x\\>");
        assert_eq!(markdown("x\u{85}y"), "x\\\\u{85}y");
        assert_eq!(markdown("conv1.weight"), "conv1.weight");
    }

    #[test]
    fn html_escapes_markup_and_controls() {
        assert_eq!(html("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(html("abc\u{202e}def\u{1b}"), "abc\\u{202e}def\\u{1b}");
    }

    #[test]
    fn json_escapes_what_serde_leaves_raw() {
        let doc = serde_json::to_vec_pretty(&serde_json::json!({"name": "a\u{202e}b\u{9b}c\u{7f}\u{1b}"})).unwrap();
        let escaped = json(doc);
        let text = String::from_utf8(escaped.clone()).unwrap();
        assert!(text.contains("a\\u202eb\\u009bc\\u007f\\u001b"), "{text}");
        let back: serde_json::Value = serde_json::from_slice(&escaped).unwrap();
        assert_eq!(back["name"], "a\u{202e}b\u{9b}c\u{7f}\u{1b}");
        assert_eq!(json(b"{\n  \"a\": 1\n}".to_vec()), b"{\n  \"a\": 1\n}");
    }
}
