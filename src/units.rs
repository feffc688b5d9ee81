//! Byte counts for people: binary units (KiB = 2^10 B, MiB = 2^20 B, GiB = 2^30 B)
//! in tables, exact integers everywhere else.

/// Characters that must never reach a terminal (or a page) raw from a model
/// file: C0 and C1 controls and DEL (escape sequences, cursor moves, bells),
/// the bidirectional overrides, embeddings, isolates and marks that reorder
/// the rest of a line (U+202A–U+202E, U+2066–U+2069, U+200E/F, U+061C), and
/// the Unicode line and paragraph separators.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// Text from a model file made safe for a terminal: every `is_unsafe`
/// character becomes a visible `\u{…}` escape. The one escaping helper for
/// terminals; the other formats (`report::escape`) start from it.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars().map(|c| if is_unsafe(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect(),
    )
}

/// `1234567` → `"1.18 MiB"`; below 1 KiB plain bytes.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

/// `143667240` → `"143,667,240"`.
pub fn format_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Parse a size with a unit: `8GiB`, `512 MiB`, `1.5GB`, `1000` (bytes), `1e9`.
/// KB/MB/GB/TB/PB/EB are powers of 10, KiB/MiB/GiB/TiB/PiB/EiB powers of 2.
/// A size of 2^64 bytes or more is refused, never saturated.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text.trim());
    let factor: u128 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "pb" => 1_000_000_000_000_000,
        "eb" => 1_000_000_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "pib" => 1 << 50,
        "eib" => 1 << 60,
        other => return Err(format!("\"{text}\": unknown unit \"{other}\" (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)")),
    };
    scaled(text, number, factor, "a size (e.g. 8GiB, 500MB)")
}

/// Parse a count: `25000000`, `25M`, `1.5G`, `2.5e7` (k/K, M, G, T are powers of 10).
/// A count of 2^64 or more is refused, never saturated.
pub fn parse_count(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text.trim());
    let factor: u128 = match unit.trim() {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => return Err(format!("\"{text}\" is not a count (e.g. 25000000 or 25M)")),
    };
    scaled(text, number, factor, "a count (e.g. 25000000 or 25M)")
}

/// The leading number of `t` (digits, a point, an exponent `e7` / `E-3`) and the rest.
fn split_number(t: &str) -> (&str, &str) {
    let b = t.as_bytes();
    let mut end = b.iter().take_while(|c| c.is_ascii_digit() || **c == b'.').count();
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let mut k = end + 1;
        if matches!(b.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        let digits = b[k.min(b.len())..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 {
            end = k + digits;
        }
    }
    t.split_at(end)
}

/// `number` × `factor` as a u64: exact for whole numbers, rounded otherwise;
/// 2^64 or more is an error.
fn scaled(text: &str, number: &str, factor: u128, what: &str) -> Result<u64, String> {
    let too_large = || format!("\"{text}\" is out of range (2^64 or more, beyond what nnmem counts)");
    if !number.is_empty() && number.bytes().all(|c| c.is_ascii_digit()) {
        // Whole numbers exactly: a u128 parse fails only past 3.4e38, far beyond 2^64.
        let v: u128 = number.parse().map_err(|_| too_large())?;
        return v.checked_mul(factor).and_then(|v| u64::try_from(v).ok()).ok_or_else(too_large);
    }
    let v: f64 = number.parse().map_err(|_| format!("\"{text}\" is not {what}"))?;
    let value = (v * factor as f64).round();
    if !value.is_finite() || value < 0.0 {
        return Err(format!("\"{text}\" is out of range"));
    }
    // 2^64 is exactly representable; every f64 below it converts without saturating.
    if value >= 18_446_744_073_709_551_616.0 {
        return Err(too_large());
    }
    Ok(value as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("conv1"), "conv1");
        assert_eq!(printable("a\x1b[31mb\n"), "a\\u{1b}[31mb\\u{a}");
        // C1 (CSI), DEL and the bidi controls that reorder a terminal line.
        assert_eq!(printable("a\u{9b}2Jb\u{7f}"), "a\\u{9b}2Jb\\u{7f}");
        assert_eq!(printable("abc\u{202e}fed"), "abc\\u{202e}fed");
        for c in ['\u{202a}', '\u{202d}', '\u{2066}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{61c}', '\u{2028}'] {
            assert!(is_unsafe(c), "{c:?}");
        }
        assert_eq!(printable("conv1/ünïcode·名前"), "conv1/ünïcode·名前");
    }

    #[test]
    fn binary_units() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.50 KiB");
        assert_eq!(format_bytes(574_668_960), "548.05 MiB");
    }

    #[test]
    fn counts_get_separators() {
        assert_eq!(format_count(143_667_240), "143,667,240");
        assert_eq!(format_count(999), "999");
    }

    #[test]
    fn sizes_parse_decimal_and_binary() {
        assert_eq!(parse_bytes("8GiB").unwrap(), 8 << 30);
        assert_eq!(parse_bytes("8 GB").unwrap(), 8_000_000_000);
        assert_eq!(parse_bytes("1.5KiB").unwrap(), 1536);
        assert!(parse_bytes("8 parsecs").is_err());
        assert_eq!(parse_bytes("1e9").unwrap(), 1_000_000_000);
        assert_eq!(parse_bytes("1EB").unwrap(), 1_000_000_000_000_000_000);
    }

    #[test]
    fn sizes_and_counts_of_2_64_or_more_are_refused() {
        assert_eq!(parse_bytes("18446744073709551615").unwrap(), u64::MAX);
        for big in ["18446744073709551616", "20EiB", "16EiB", "1e30", "18446744073709551616B", "2e19", "99999999999999999999999999999999999999999"] {
            let e = parse_bytes(big).unwrap_err();
            assert!(e.contains("2^64 or more"), "{big}: {e}");
        }
        assert!(parse_bytes("15.99EiB").is_ok());
        assert_eq!(parse_count("18446744073709551615").unwrap(), u64::MAX);
        for big in ["18446744073709551616", "1e30", "18446744074G", "2e19"] {
            assert!(parse_count(big).unwrap_err().contains("2^64 or more"), "{big}");
        }
        assert_eq!(parse_count("2.5e7").unwrap(), 25_000_000);
        assert_eq!(parse_count("25M").unwrap(), 25_000_000);
        assert!(parse_count("25Q").is_err());
    }
}
