//! Numbers and complaints in a spec writer's words.

/// A reader's complaint in a spec writer's words: Rust's type names
/// (`u64`) said as what they take.
pub(super) fn plain_problem(message: &str) -> String {
    message
        .replace("expected u64", "expected a whole number, 0 or more")
        .replace("expected usize", "expected a whole number, 0 or more")
        .replace("expected u32", "expected a whole number, 0 or more")
        .replace("expected i64", "expected a whole number")
        .replace("expected f64", "expected a number")
        .trim()
        .to_string()
}

/// `text` with every run of more than 20 digits (a 300-digit `1e300`
/// written out) in its short scientific form.
pub fn short_numbers(text: &str) -> String {
    let mut shortened = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        shortened.push_str(&rest[..start]);
        let run = &rest[start..];
        let end = run.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(run.len());
        let digits = &run[..end];
        match digits.parse::<f64>() {
            Ok(number) if digits.len() > 20 => shortened.push_str(&format!("{number:.1e}")),
            _ => shortened.push_str(digits),
        }
        rest = &run[end..];
    }
    shortened.push_str(rest);
    shortened
}

/// A number as a sentence or a label shows it: no decimals for a whole
/// one, thousands grouped (`20,000`).
pub fn shown_number(number: f64) -> String {
    if number.fract() != 0.0 || number.abs() >= 1e15 {
        return format!("{number}");
    }
    let digits = format!("{:.0}", number.abs());
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if number < 0.0 { format!("-{grouped}") } else { grouped }
}
