//! A graph input's dimension written as arithmetic on symbols, as PyTorch's
//! dynamo exporter names dims it derived (`16*height_blocks` for a side
//! declared a multiple of 16, `s15 + s70`). `--dim` binds the symbols; the
//! dimension is the expression's value once all of them are bound.

/// The symbols `text` reads, when it is such an expression (integers, names,
/// `+ - * //`, brackets); `None` for anything else.
pub(super) fn symbols(text: &str) -> Option<Vec<&str>> {
    let tokens = tokens(text)?;
    let mut p = Parser { tokens: &tokens, at: 0, value_of: &|_: &str| Some(1), depth: 0 };
    if p.sum().is_none() || p.at != tokens.len() {
        return None;
    }
    let mut names: Vec<&str> = tokens.iter().filter_map(|t| if let Token::Name(n) = t { Some(*n) } else { None }).collect();
    names.sort_unstable();
    names.dedup();
    Some(names)
}

/// The expression's value with each symbol's value from `value_of`; `None`
/// when a symbol is unbound, the text is no such expression, or the value
/// leaves 0..2^63 (checked arithmetic throughout).
pub(super) fn evaluate(text: &str, value_of: impl Fn(&str) -> Option<u64>) -> Option<u64> {
    let tokens = tokens(text)?;
    let mut p = Parser { tokens: &tokens, at: 0, value_of: &value_of, depth: 0 };
    let v = p.sum()?;
    (p.at == tokens.len() && (0..=i64::MAX as i128).contains(&v)).then_some(v as u64)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Token<'a> {
    Number(u64),
    Name(&'a str),
    Plus,
    Minus,
    Times,
    FloorDiv,
    Open,
    Close,
}

fn tokens(text: &str) -> Option<Vec<Token<'_>>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        i += 1;
        out.push(match c {
            b' ' => continue,
            b'+' => Token::Plus,
            b'-' => Token::Minus,
            b'*' => Token::Times,
            b'/' if bytes.get(i) == Some(&b'/') => {
                i += 1;
                Token::FloorDiv
            }
            b'(' => Token::Open,
            b')' => Token::Close,
            b'0'..=b'9' => {
                while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                Token::Number(text[start..i].parse().ok()?)
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') {
                    i += 1;
                }
                Token::Name(&text[start..i])
            }
            _ => return None,
        });
    }
    // A lone name is a plain symbol, not an expression.
    (out.len() > 1).then_some(out)
}

struct Parser<'t, 'a, F> {
    tokens: &'t [Token<'a>],
    at: usize,
    value_of: &'t F,
    /// Bracket and sign nesting, bounded so that hostile text cannot overflow the stack.
    depth: usize,
}

impl<F: Fn(&str) -> Option<u64>> Parser<'_, '_, F> {
    fn next_is(&mut self, t: Token<'_>) -> bool {
        let hit = self.tokens.get(self.at) == Some(&t);
        self.at += usize::from(hit);
        hit
    }

    fn sum(&mut self) -> Option<i128> {
        let mut v = self.product()?;
        loop {
            if self.next_is(Token::Plus) {
                v = v.checked_add(self.product()?)?;
            } else if self.next_is(Token::Minus) {
                v = v.checked_sub(self.product()?)?;
            } else {
                return Some(v);
            }
        }
    }

    fn product(&mut self) -> Option<i128> {
        let mut v = self.atom()?;
        loop {
            if self.next_is(Token::Times) {
                v = v.checked_mul(self.atom()?)?;
            } else if self.next_is(Token::FloorDiv) {
                v = v.checked_div_euclid(self.atom()?)?;
            } else if v.abs() > 1 << 80 {
                return None;
            } else {
                return Some(v);
            }
        }
    }

    fn atom(&mut self) -> Option<i128> {
        let t = *self.tokens.get(self.at)?;
        self.at += 1;
        match t {
            Token::Number(n) => Some(n as i128),
            Token::Name(n) => (self.value_of)(n).map(i128::from),
            Token::Minus if self.depth < 32 => {
                self.depth += 1;
                let v = self.atom()?.checked_neg();
                self.depth -= 1;
                v
            }
            Token::Open if self.depth < 32 => {
                self.depth += 1;
                let v = self.sum()?;
                self.depth -= 1;
                self.next_is(Token::Close).then_some(v)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(name: &str) -> Option<u64> {
        match name {
            "height_blocks" => Some(6),
            "s15" => Some(3),
            "s70" => Some(7),
            _ => None,
        }
    }

    #[test]
    fn dynamo_dim_expressions() {
        assert_eq!(symbols("16*height_blocks"), Some(vec!["height_blocks"]));
        assert_eq!(evaluate("16*height_blocks", bound), Some(96));
        assert_eq!(evaluate("s15 + s70", bound), Some(10));
        assert_eq!(evaluate("2*(s15 + s70) - 1", bound), Some(19));
        assert_eq!(evaluate("s70//2", bound), Some(3));
    }

    #[test]
    fn what_is_not_an_expression_or_not_bound() {
        assert_eq!(symbols("batch"), None);
        assert_eq!(symbols("batch size"), None);
        assert_eq!(symbols("s1 - s2 - s3"), Some(vec!["s1", "s2", "s3"]));
        assert_eq!(symbols("a.b"), None);
        assert_eq!(evaluate("16*width", bound), None);
        assert_eq!(evaluate("s15 - s70", bound), None);
        assert_eq!(evaluate("s15//0", bound), None);
        assert_eq!(evaluate("((((s15", bound), None);
        assert_eq!(evaluate(&format!("{}*s70", u64::MAX), bound), None);
        let deep = format!("{}s15{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(evaluate(&deep, bound), None);
        assert_eq!(evaluate(&format!("{}s15", "-".repeat(1_000_000)), bound), None);
        assert_eq!(evaluate("--s15", bound), Some(3));
    }
}
