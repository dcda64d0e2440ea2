//! What the pages say in words: a sweep point ("with clocks 50 ms apart"),
//! its value in a table ("never" where 0 means never), clock settings
//! ("set 50 ms ahead, drifting 200 ppm fast"). Numbers come from the run;
//! only the words are written here.

use serde_json::Value;

use crate::analysis::SummaryRow;
use crate::experiment::spec::{Parameter, shown_number};

/// A sweep point in words, from its parameters' names and values: "with
/// clocks 1,000 ms apart", and "and at 60 operations/s per client" for a
/// second parameter.
pub fn point_words(parameter: &str, value: f64, across: Option<(&str, f64)>) -> String {
    let words = |name: &str, value: f64| match Parameter::from_name(name) {
        Some(parameter) => parameter.phrase(value),
        None => format!("at {name} {}", shown_number(value)),
    };
    let mut text = words(parameter, value);
    if let Some((across, value)) = across {
        text.push_str(&format!(" and {}", words(across, value)));
    }
    text
}

/// A summary row's sweep point in words.
pub fn row_words(row: &SummaryRow) -> String {
    point_words(&row.parameter, row.value, row.across.as_deref().zip(row.across_value))
}

/// A sweep point's value as a table cell shows it.
pub fn point_label(row: &SummaryRow) -> String {
    let label = |name: &str, value: f64| match Parameter::from_name(name).and_then(Parameter::zero_means) {
        Some(word) if value == 0.0 => word.to_string(),
        _ => shown_number(value),
    };
    match (&row.across, row.across_value) {
        (Some(across), Some(value)) => {
            format!("{}, {}", label(&row.parameter, row.value), label(across, value))
        }
        _ => label(&row.parameter, row.value),
    }
}

/// A point record's parameters in words: `{"parameter": "skew_ms",
/// "skew_ms": 50}` is "with clocks 50 ms apart".
pub fn params_words(params: &Value) -> String {
    let words = |name_field: &str| {
        let name = params[name_field].as_str()?;
        let value = params[name].as_f64()?;
        Some(match Parameter::from_name(name) {
            Some(parameter) => parameter.phrase(value),
            None => format!("at {name} {}", shown_number(value)),
        })
    };
    match (words("parameter"), words("across")) {
        (Some(first), Some(second)) => format!("{first} and {second}"),
        (Some(first), None) => first,
        _ => String::new(),
    }
}

/// Clock settings as the runner sent them, in words: "50 ms ahead, drifting
/// 200 ppm fast".
pub fn clock_words(settings: &Value) -> String {
    let Some(fields) = settings.as_object() else { return "as it started: exact".into() };
    let number = |name: &str| fields.get(name).and_then(Value::as_f64);
    let signed = |value: f64, ahead: &str, behind: &str| {
        if value >= 0.0 {
            format!("{} {ahead}", shown_number(value))
        } else {
            format!("{} {behind}", shown_number(-value))
        }
    };
    let mut parts = Vec::new();
    if let Some(offset) = number("offset_ms") {
        parts.push(if offset == 0.0 {
            "set exact".into()
        } else {
            format!("set {}", signed(offset, "ms ahead", "ms behind"))
        });
    }
    if let Some(drift) = number("drift_ppm").filter(|drift| *drift != 0.0) {
        parts.push(format!("drifting {}", signed(drift, "ppm fast", "ppm slow")));
    }
    if let Some(resync) = number("resync_interval_ms").filter(|resync| *resync > 0.0) {
        parts.push(format!("resynced every {} ms", shown_number(resync)));
    }
    if let Some(tick) = number("resolution_ms").filter(|tick| *tick > 0.0) {
        parts.push(format!("ticking every {} ms", shown_number(tick)));
    }
    if let Some(step) = number("step_ms") {
        parts.push(format!("stepped {}", signed(step, "ms forward", "ms back")));
    }
    for (field, what) in [("strobe_ms", "strobing"), ("wobble_ms", "wobbling"), ("jitter_ms", "jittering")] {
        if let Some(size) = number(field) {
            parts.push(format!("{what} by {} ms", shown_number(size)));
        }
    }
    if let Some(leap) = fields.get("leap").and_then(Value::as_str) {
        parts.push(format!("a leap second ({leap})"));
    }
    if parts.is_empty() { "as it started: exact".into() } else { parts.join(", ") }
}
