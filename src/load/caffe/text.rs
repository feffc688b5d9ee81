//! A tolerant reader for protobuf text format, into a generic tree.
//!
//! It needs no schema, so fork fields and unknown enum values are kept, never
//! rejected (real Caffe forks are full of them). Accepted: `#` comments,
//! CRLF, an optional `:` before `{`, `<…>` messages, `[a, b]` lists, single-
//! and double-quoted strings with escapes, adjacent-string joins, and `,`/`;`
//! separators. Errors carry line and column.

/// Nesting deeper than this is refused (hostile inputs, not real nets).
pub const MAX_DEPTH: usize = 64;

/// More fields than this are refused, so memory stays bounded. The largest real
/// net (Inception-ResNet-v2, 987 layers) has about 15,000.
pub const MAX_FIELDS: usize = 250_000;

/// A longer string or word is refused: names end up copied into the graph,
/// the tensors and every report (a 15 MiB name cost 200 MB). Real ones are
/// short; comments may be any length.
pub const MAX_TOKEN_BYTES: usize = 64 << 10;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// The literal text of a number, enum or bool; the decoded text of a string.
    Scalar { text: String, quoted: bool },
    Message(Message),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub value: Value,
    pub line: usize,
    pub column: usize,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Message {
    pub fields: Vec<Field>,
}

impl Message {
    /// Every field with this name, in file order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Field> + 'a {
        self.fields.iter().filter(move |f| f.name == name)
    }

    /// The last field with this name (text format: a repeated singular field keeps the last).
    pub fn get(&self, name: &str) -> Option<&Field> {
        self.fields.iter().rev().find(|f| f.name == name)
    }

    pub fn message(&self, name: &str) -> Option<&Message> {
        self.get(name).and_then(Field::as_message)
    }

    pub fn messages<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Message> + 'a {
        self.all(name).filter_map(Field::as_message)
    }

    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f.name == name)
    }

    /// The text of a scalar field.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Field::as_text)
    }

    /// Texts of every scalar field with this name.
    pub fn texts<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.all(name).filter_map(Field::as_text)
    }
}

impl Field {
    pub fn as_message(&self) -> Option<&Message> {
        match &self.value {
            Value::Message(m) => Some(m),
            Value::Scalar { .. } => None,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            Value::Message(_) => None,
        }
    }
}

/// A syntax error at a position in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Punct(u8),
    End,
}

struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
    line_start: usize,
    /// The last (position, column) computed: a long line with many fields is
    /// counted once from there, not from the line start for every field
    /// (which made a 40,000-field line take seconds).
    last_column: std::cell::Cell<(usize, usize)>,
}

impl<'a> Lexer<'a> {
    fn column(&self, pos: usize) -> usize {
        // Columns count characters, so multi-byte UTF-8 counts once.
        let chars = |from: usize| self.src[from..pos].iter().filter(|&&b| (b & 0xC0) != 0x80).count();
        let (last_pos, last_col) = self.last_column.get();
        let col = if self.line_start <= last_pos && last_pos <= pos {
            last_col + chars(last_pos)
        } else {
            chars(self.line_start.min(pos)) + 1
        };
        if self.line_start <= pos {
            self.last_column.set((pos, col));
        }
        col
    }

    fn error<T>(&self, pos: usize, message: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError { line: self.line, column: self.column(pos), message: message.into() })
    }

    fn skip_space(&mut self) {
        while let Some(&b) = self.src.get(self.pos) {
            match b {
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    self.line_start = self.pos;
                }
                b' ' | b'\t' | b'\r' | b'\x0c' | b'\x0b' => self.pos += 1,
                b'#' => {
                    while self.src.get(self.pos).is_some_and(|&c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// The next token and the byte offset where it starts.
    fn next(&mut self) -> Result<(Token, usize), SyntaxError> {
        self.skip_space();
        let start = self.pos;
        let Some(&b) = self.src.get(self.pos) else { return Ok((Token::End, start)) };
        match b {
            b'{' | b'}' | b':' | b'<' | b'>' | b'[' | b']' | b',' | b';' => {
                self.pos += 1;
                Ok((Token::Punct(b), start))
            }
            b'"' | b'\'' => {
                let mut text = self.string(b)?;
                // Adjacent literals join: "a" 'b' is "ab".
                loop {
                    let save = (self.pos, self.line, self.line_start);
                    self.skip_space();
                    match self.src.get(self.pos) {
                        Some(&q @ (b'"' | b'\'')) => {
                            text.push_str(&self.string(q)?);
                            if text.len() > MAX_TOKEN_BYTES {
                                return self.error(start, format!("a string of more than {MAX_TOKEN_BYTES} bytes; nnmem refuses strings this long"));
                            }
                        }
                        _ => {
                            (self.pos, self.line, self.line_start) = save;
                            break;
                        }
                    }
                }
                Ok((Token::Str(text), start))
            }
            b if is_word_byte(b) => {
                while self.src.get(self.pos).is_some_and(|&c| is_word_byte(c)) {
                    self.pos += 1;
                }
                if self.pos - start > MAX_TOKEN_BYTES {
                    return self.error(start, format!("a word of more than {MAX_TOKEN_BYTES} bytes; nnmem refuses words this long"));
                }
                let word = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
                Ok((Token::Ident(word), start))
            }
            _ => {
                let shown = String::from_utf8_lossy(&self.src[start..(start + 4).min(self.src.len())]).into_owned();
                let ch = shown.chars().next().unwrap_or('?');
                self.error(start, format!("unexpected character '{}'", ch.escape_default()))
            }
        }
    }

    /// A quoted string starting at `self.pos`, with C-style escapes decoded.
    fn string(&mut self, quote: u8) -> Result<String, SyntaxError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.src.get(self.pos) else {
                return self.error(open, "unterminated string: expected a closing quote before the end of the file");
            };
            self.pos += 1;
            if out.len() > MAX_TOKEN_BYTES {
                return self.error(open, format!("a string of more than {MAX_TOKEN_BYTES} bytes; nnmem refuses strings this long"));
            }
            match b {
                b'\n' => return self.error(open, "unterminated string: expected a closing quote before the end of the line"),
                b if b == quote => break,
                b'\\' => {
                    let Some(&e) = self.src.get(self.pos) else { continue };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.src.get(self.pos) {
                                    Some(&d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push((v & 0xff) as u8);
                        }
                        b'x' => {
                            let mut v = 0u32;
                            for _ in 0..2 {
                                match self.src.get(self.pos).and_then(|d| (*d as char).to_digit(16)) {
                                    Some(d) => {
                                        v = v * 16 + d;
                                        self.pos += 1;
                                    }
                                    None => break,
                                }
                            }
                            out.push(v as u8);
                        }
                        other => out.push(other),
                    }
                }
                b => out.push(b),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Identifier and number characters: names, enums, `-1`, `1e-4`, `0.5`, `inf`.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'+') || b >= 0x80
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<(Token, usize)>,
    /// Fields read so far, against MAX_FIELDS.
    n_fields: usize,
}

impl<'a> Parser<'a> {
    fn peek(&mut self) -> Result<&(Token, usize), SyntaxError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next()?);
        }
        Ok(self.peeked.as_ref().expect("peeked was just filled"))
    }

    fn bump(&mut self) -> Result<(Token, usize), SyntaxError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next(),
        }
    }

    fn position(&self, pos: usize) -> (usize, usize) {
        (self.lexer.line, self.lexer.column(pos))
    }

    fn error_at<T>(&self, pos: usize, message: String) -> Result<T, SyntaxError> {
        self.lexer.error(pos, message)
    }

    /// Fields until `close` (or the end of the file when `close` is None).
    fn message(&mut self, close: Option<u8>, depth: usize) -> Result<Message, SyntaxError> {
        let mut msg = Message::default();
        loop {
            let (tok, pos) = self.bump()?;
            match tok {
                Token::End => {
                    return match close {
                        None => Ok(msg),
                        Some(c) => self.error_at(
                            pos,
                            format!("unexpected end of file: expected '{}' to close a block", c as char),
                        ),
                    };
                }
                Token::Punct(c) if Some(c) == close => return Ok(msg),
                Token::Punct(b',' | b';') => continue,
                Token::Ident(name) => {
                    self.n_fields += 1;
                    if self.n_fields > MAX_FIELDS {
                        return self.error_at(pos, format!("more than {MAX_FIELDS} fields; nnmem refuses files this large"));
                    }
                    let (line, column) = self.position(pos);
                    self.field_value(&mut msg, name, line, column, depth)?;
                }
                other => {
                    let expected = match close {
                        Some(c) => format!("a field name or '{}'", c as char),
                        None => "a field name".to_string(),
                    };
                    return self.error_at(pos, format!("expected {expected}, found {}", describe(&other)));
                }
            }
        }
    }

    fn field_value(
        &mut self,
        msg: &mut Message,
        name: String,
        line: usize,
        column: usize,
        depth: usize,
    ) -> Result<(), SyntaxError> {
        let mut colon = false;
        if self.peek()?.0 == Token::Punct(b':') {
            self.bump()?;
            colon = true;
        }
        let (tok, pos) = self.bump()?;
        match tok {
            Token::Punct(open @ (b'{' | b'<')) => {
                if depth + 1 > MAX_DEPTH {
                    return self.error_at(pos, format!("blocks nested deeper than {MAX_DEPTH} levels"));
                }
                let close = if open == b'{' { b'}' } else { b'>' };
                let inner = self.message(Some(close), depth + 1)?;
                msg.fields.push(Field { name, value: Value::Message(inner), line, column });
            }
            Token::Punct(b'[') if colon => loop {
                let (tok, pos) = self.bump()?;
                match tok {
                    Token::Punct(b']') => break,
                    Token::Punct(b',') => continue,
                    Token::Ident(text) => {
                        msg.fields.push(Field { name: name.clone(), value: Value::Scalar { text, quoted: false }, line, column })
                    }
                    Token::Str(text) => {
                        msg.fields.push(Field { name: name.clone(), value: Value::Scalar { text, quoted: true }, line, column })
                    }
                    other => return self.error_at(pos, format!("expected a value or ']' in the list for \"{name}\", found {}", describe(&other))),
                }
            },
            Token::Ident(text) if colon => {
                msg.fields.push(Field { name, value: Value::Scalar { text, quoted: false }, line, column })
            }
            Token::Str(text) if colon => msg.fields.push(Field { name, value: Value::Scalar { text, quoted: true }, line, column }),
            other if colon => {
                return self.error_at(pos, format!("expected a value after \"{name}:\", found {}", describe(&other)))
            }
            other => {
                return self.error_at(pos, format!("expected ':' or '{{' after \"{name}\", found {}", describe(&other)))
            }
        }
        Ok(())
    }
}

fn describe(tok: &Token) -> String {
    match tok {
        Token::Ident(w) => format!("\"{w}\""),
        Token::Str(s) => format!("the string \"{s}\""),
        Token::Punct(c) => format!("'{}'", *c as char),
        Token::End => "the end of the file".to_string(),
    }
}

/// Parse a whole text-format document.
pub fn parse(src: &[u8]) -> Result<Message, SyntaxError> {
    // A UTF-8 byte-order mark is not part of the text.
    let src = src.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(src);
    let mut parser = Parser { lexer: Lexer { src, pos: 0, line: 1, line_start: 0, last_column: std::cell::Cell::new((0, 1)) }, peeked: None, n_fields: 0 };
    parser.message(None, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(s: &str) -> Message {
        parse(s.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn comments_anywhere_and_crlf() {
        let m = parse_ok("name: \"x\"\t# trailing\r\ninput_dim: 1 #10\r\n# whole line\r\nlayer {\r\n  name: 'a' # c\r\n}");
        assert_eq!(m.text("name"), Some("x"));
        assert_eq!(m.text("input_dim"), Some("1"));
        assert_eq!(m.message("layer").unwrap().text("name"), Some("a"));
    }

    #[test]
    fn optional_colon_and_several_fields_per_line() {
        let m = parse_ok("include: { phase: TEST } shape: { dim: 1 dim: 3 } softmax_param {engine: CAFFE}");
        assert_eq!(m.message("include").unwrap().text("phase"), Some("TEST"));
        let dims: Vec<_> = m.message("shape").unwrap().texts("dim").collect();
        assert_eq!(dims, ["1", "3"]);
        assert_eq!(m.message("softmax_param").unwrap().text("engine"), Some("CAFFE"));
    }

    #[test]
    fn strings_escapes_and_joins() {
        let m = parse_ok(r#"a: 'it''s' b: "q\"uote\n" c: "x" 'y' d: "" e: "\101""#);
        assert_eq!(m.text("a"), Some("its"));
        assert_eq!(m.text("b"), Some("q\"uote\n"));
        assert_eq!(m.text("c"), Some("xy"));
        assert_eq!(m.text("d"), Some(""));
        assert_eq!(m.text("e"), Some("A"));
    }

    #[test]
    fn lists_angle_brackets_and_numbers() {
        let m = parse_ok("v: [0.1, -2, 1e-4] m < x: 0. > n: -1 f: inf");
        let v: Vec<_> = m.texts("v").collect();
        assert_eq!(v, ["0.1", "-2", "1e-4"]);
        assert_eq!(m.message("m").unwrap().text("x"), Some("0."));
        assert_eq!(m.text("n"), Some("-1"));
    }

    #[test]
    fn repeated_fields_keep_their_order() {
        let m = parse_ok("input: 'a' input_shape { dim: 1 } input: 'b' input_shape { dim: 2 }");
        let names: Vec<_> = m.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["input", "input_shape", "input", "input_shape"]);
    }

    #[test]
    fn no_final_newline_and_utf8_bom() {
        assert_eq!(parse_ok("\u{feff}name: \"n\"").text("name"), Some("n"));
    }

    #[test]
    fn unterminated_block_names_position() {
        let e = parse(b"layer {\n  name: \"a\"\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("expected '}'"), "{}", e.message);
    }

    #[test]
    fn missing_value_is_an_error_with_column() {
        let e = parse(b"layer {\n  name: }\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 9));
        assert!(e.message.contains("expected a value after \"name:\""), "{}", e.message);
        let e = parse(b"name \"x\"").unwrap_err();
        assert!(e.message.contains("expected ':' or '{'"), "{}", e.message);
        let e = parse(b"a: 'open").unwrap_err();
        assert!(e.message.contains("unterminated string"), "{}", e.message);
        let e = parse(b"}").unwrap_err();
        assert!(e.message.contains("expected a field name"), "{}", e.message);
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = "a {".repeat(100_000);
        let e = parse(deep.as_bytes()).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{}", e.message);
    }
}
