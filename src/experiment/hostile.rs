//! Hostile specs: every shipped spec, altered at random (a field dropped,
//! given another type, set to an extreme, a negative, NaN or a huge
//! number), must be accepted within the limits or refused with an error
//! that names the file and the field; never a panic, never a spec that asks
//! for more work than the limits allow.

use std::path::Path;

use proptest::prelude::*;

use super::limits::{FLAT_OUT_RATE, MAX_OPERATIONS_PER_RUN, MAX_WORKLOAD_MS_PER_RUN};
use super::spec::Spec;

/// What a fuzzed value is replaced with.
fn hostile_values() -> Vec<Option<toml::Value>> {
    use toml::Value;
    vec![
        None, // the field dropped
        Some(Value::String("bogus".into())),
        Some(Value::Boolean(true)),
        Some(Value::Integer(-1)),
        Some(Value::Integer(0)),
        Some(Value::Integer(i64::MAX)),
        Some(Value::Integer(1_000_000_000)),
        Some(Value::Float(1e300)),
        Some(Value::Float(-1e300)),
        Some(Value::Float(f64::NAN)),
        Some(Value::Float(f64::INFINITY)),
        Some(Value::Float(0.5)),
        Some(Value::Array(Vec::new())),
        Some(Value::Table(toml::Table::new())),
    ]
}

/// Every path to a value in `table`: keys, and array indices.
fn paths(value: &toml::Value, prefix: Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    match value {
        toml::Value::Table(table) => {
            for (key, inner) in table {
                let mut path = prefix.clone();
                path.push(PathStep::Key(key.clone()));
                out.push(path.clone());
                paths(inner, path, out);
            }
        }
        toml::Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                let mut path = prefix.clone();
                path.push(PathStep::Index(index));
                out.push(path.clone());
                paths(inner, path, out);
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

/// Replaces (or, with `None`, removes) the value at `path`.
fn alter(value: &mut toml::Value, path: &[PathStep], new: Option<toml::Value>) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut at = value;
    for step in parents {
        at = match (step, at) {
            (PathStep::Key(key), toml::Value::Table(table)) => match table.get_mut(key) {
                Some(inner) => inner,
                None => return,
            },
            (PathStep::Index(index), toml::Value::Array(items)) => match items.get_mut(*index) {
                Some(inner) => inner,
                None => return,
            },
            _ => return,
        };
    }
    match (last, at, new) {
        (PathStep::Key(key), toml::Value::Table(table), Some(new)) => {
            table.insert(key.clone(), new);
        }
        (PathStep::Key(key), toml::Value::Table(table), None) => {
            table.remove(key);
        }
        (PathStep::Index(index), toml::Value::Array(items), Some(new)) if *index < items.len() => {
            items[*index] = new;
        }
        (PathStep::Index(index), toml::Value::Array(items), None) if *index < items.len() => {
            items.remove(*index);
        }
        _ => {}
    }
}

/// An upper bound of the operations `spec` schedules, worked out here on
/// its own rather than by the code under test.
fn operations_bound(spec: &Spec) -> (f64, f64) {
    let mut rates = vec![spec.workload.rate_per_client];
    for (parameter, values) in std::iter::once((spec.sweep.parameter, &spec.sweep.values))
        .chain(spec.sweep.across.as_ref().map(|across| (across.parameter, &across.values)))
    {
        if parameter == super::spec::Parameter::RatePerClient {
            rates.extend(values.iter().copied());
        }
    }
    let rate =
        rates.into_iter().map(|rate| if rate > 0.0 { rate } else { FLAT_OUT_RATE }).fold(0.0, f64::max);
    let points = spec.sweep.values.len() * spec.sweep.across.as_ref().map_or(1, |across| across.values.len());
    let trials = points as f64 * spec.trials as f64;
    let operations = spec.workload.clients as f64 * rate * spec.duration_ms as f64 / 1e3 * trials;
    (operations, trials * spec.duration_ms as f64)
}

fn shipped() -> Vec<(String, toml::Value)> {
    let folder = crate::builtin::Folder::builtin_experiments();
    folder
        .toml_stems()
        .into_iter()
        .map(|name| {
            let text = folder.read_to_string(&format!("{name}.toml")).expect("a shipped spec");
            (name, toml::from_str(&text).expect("a shipped spec is TOML"))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn an_altered_spec_is_accepted_within_the_limits_or_refused_naming_file_and_field(
        which in any::<prop::sample::Index>(),
        place in any::<prop::sample::Index>(),
        replacement in any::<prop::sample::Index>(),
        second in any::<prop::sample::Index>(),
        twice in any::<bool>(),
    ) {
        let specs = shipped();
        let (name, original) = &specs[which.index(specs.len())];
        let mut value = original.clone();
        let choices = hostile_values();
        let mut all = Vec::new();
        paths(&value, Vec::new(), &mut all);
        let path = &all[place.index(all.len())];
        alter(&mut value, path, choices[replacement.index(choices.len())].clone());
        if twice {
            let mut again = Vec::new();
            paths(&value, Vec::new(), &mut again);
            if !again.is_empty() {
                let path = &again[second.index(again.len())];
                alter(&mut value, path, choices[second.index(choices.len())].clone());
            }
        }
        let text = toml::to_string(&value).expect("a table writes back");
        let file = format!("{name}-fuzzed.toml");
        let parsed = std::panic::catch_unwind(|| Spec::parse(&text, Path::new(&file)));
        let parsed = parsed.unwrap_or_else(|_| panic!("the checker panicked on {path:?}:\n{text}"));
        match parsed {
            Ok(spec) => {
                for spec in [spec.clone(), spec.quick()] {
                    let (operations, workload_ms) = operations_bound(&spec);
                    prop_assert!(operations <= MAX_OPERATIONS_PER_RUN, "{operations} operations accepted:\n{text}");
                    prop_assert!(workload_ms <= MAX_WORKLOAD_MS_PER_RUN, "{workload_ms} ms accepted:\n{text}");
                }
            }
            Err(error) => {
                let message = error.to_string();
                prop_assert!(message.starts_with(&format!("{file}: ")), "no file: {message}");
                prop_assert!(message.contains("field `"), "no field: {message}");
                prop_assert!(!message.contains(&"0".repeat(30)), "a number nobody can read: {message}");
            }
        }
    }
}

#[test]
fn the_errors_a_user_meets_name_the_file_and_the_field() {
    let refused = |text: &str, expected: &[&str]| {
        let error = Spec::parse(text, Path::new("bad.toml")).expect_err(text).to_string();
        assert!(error.starts_with("bad.toml: field `"), "{error}");
        for part in expected {
            assert!(error.contains(part), "{text}: {error}");
        }
    };
    let sweep = "[sweep]\nparameter = \"skew_ms\"\nvalues = [0]\n";
    refused(&format!("trials = -1\n{sweep}"), &["field `trials`", "a whole number, 0 or more"]);
    refused(&format!("duration_ms = 1e300\n{sweep}"), &["field `duration_ms`", "1.0e300"]);
    refused(
        "[sweep]\nparameter = \"bogus\"\nvalues = [0]\n",
        &["field `sweep.parameter`", "bogus", "skew_ms"],
    );
    refused(&format!("[workload]\nclientz = 3\n{sweep}"), &["field `workload", "clientz", "clients"]);
    refused(
        &format!("[[fault]]\nkind = \"teleport\"\nat_ms = 1\nreplica = 1\n{sweep}"),
        &["fault", "teleport"],
    );
    refused("[sweep]\nparameter = \"skew_ms\"\nvalues = [1e300]\n", &["field `sweep.values`"]);
}
