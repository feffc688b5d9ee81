//! Byte counts for people: binary units (KiB = 2^10 B, MiB = 2^20 B, GiB = 2^30 B)
//! in tables, exact integers everywhere else.

/// Text from a model file made safe for a terminal: control characters (which
/// could move the cursor or recolour the screen) become `\u{…}` escapes.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars().map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() }).collect(),
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

/// Parse a size with a unit: `8GiB`, `512 MiB`, `1.5GB`, `1000` (bytes).
/// KB/MB/GB/TB are powers of 10, KiB/MiB/GiB/TiB powers of 2.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("\"{text}\" is not a size (e.g. 8GiB, 500MB)"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0f64.powi(4),
        other => return Err(format!("\"{text}\": unknown unit \"{other}\" (use B, KB, MB, GB, KiB, MiB, GiB)")),
    };
    let bytes = (value * factor).round();
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("\"{text}\" is out of range"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("conv1"), "conv1");
        assert_eq!(printable("a\x1b[31mb\n"), "a\\u{1b}[31mb\\u{a}");
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
    }
}
