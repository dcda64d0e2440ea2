//! Each experiment's lesson, as the README tells it.
//!
//! The README explains every experiment in three moves: *Predict.* (the
//! setup and a question for the class), *What happens* (the run's numbers)
//! and *Why.* (the explanation). The dashboard's "predict, then reveal" view
//! asks the first and reveals the last, and reads both from the README
//! itself, built into the binary, so the question a class is asked and the
//! explanation it is given are told once, in one place. A test checks that
//! every shipped experiment has both.
//!
//! An experiment's part of the README is the section whose heading names it,
//! and no other, in backticks (`` ### `ntp-step`: a clock jumps back or
//! forward ``), up to the next heading. *Predict.* opens a paragraph; *Why.* (or *Why:*) opens
//! one or starts part way through one, and runs to the paragraph's end.
//! Markdown is reduced to plain text: emphasis and code marks dropped, a
//! link kept as its words, an image left out.

use serde::Serialize;

/// The README, as it was when the binary was built.
pub const README: &str = include_str!("../../README.md");

/// What the README says to ask before a run's results are shown, and what
/// it says after.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lesson {
    pub predict: Option<String>,
    pub why: Option<String>,
}

/// The lesson of experiment `name` in `readme`.
pub fn lesson(readme: &str, name: &str) -> Lesson {
    let Some(section) = section(readme, name) else { return Lesson::default() };
    let paragraphs: Vec<String> = section
        .split("\n\n")
        .map(|paragraph| paragraph.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let predict = paragraphs.iter().find_map(|paragraph| paragraph.strip_prefix("*Predict.*")).map(plain);
    let why = paragraphs.iter().find_map(|paragraph| {
        let at = paragraph.find("*Why.*").or_else(|| paragraph.find("*Why:*"))?;
        let why = plain(&paragraph[at + "*Why.*".len()..]);
        let mut letters = why.chars();
        Some(letters.next().map(|first| first.to_uppercase().chain(letters).collect()).unwrap_or(why))
    });
    Lesson { predict, why }
}

/// The lines after the heading that names `name`, and no other, in
/// backticks, up to the next heading.
fn section<'a>(readme: &'a str, name: &str) -> Option<&'a str> {
    let names_only_it = |line: &str| {
        let quoted: Vec<&str> = line.split('`').skip(1).step_by(2).collect();
        quoted == [name]
    };
    let mut offset = 0;
    let mut start = None;
    for line in readme.split_inclusive('\n') {
        if line.starts_with('#') {
            if let Some(start) = start {
                return Some(&readme[start..offset]);
            }
            if names_only_it(line) {
                start = Some(offset + line.len());
            }
        }
        offset += line.len();
    }
    start.map(|start| &readme[start..])
}

/// Markdown as plain text: emphasis and code marks dropped, links kept as
/// their words, images left out.
fn plain(markdown: &str) -> String {
    let mut text = String::with_capacity(markdown.len());
    let mut rest = markdown;
    while let Some(open) = rest.find(['[', '!']) {
        let (before, from) = rest.split_at(open);
        text.push_str(before);
        let image = from.starts_with("![");
        let bracket = if image { &from[1..] } else { from };
        let link = bracket.strip_prefix('[').and_then(|inside| {
            let close = inside.find("](")?;
            let end = inside[close..].find(')')? + close;
            Some((&inside[..close], &inside[end + 1..]))
        });
        match link {
            Some((words, after)) => {
                if !image {
                    text.push_str(words);
                }
                rest = after;
            }
            None => {
                text.push_str(&from[..1]);
                rest = &from[1..];
            }
        }
    }
    text.push_str(rest);
    text.replace(['*', '`'], "").split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_experiment_has_a_question_and_an_explanation_in_the_readme() {
        let experiments = crate::builtin::Folder::builtin_experiments();
        for name in experiments.toml_stems() {
            let lesson = lesson(README, &name);
            let predict =
                lesson.predict.unwrap_or_else(|| panic!("{name}: no *Predict.* paragraph in README.md"));
            let why = lesson.why.unwrap_or_else(|| panic!("{name}: no *Why.* in README.md"));
            for text in [&predict, &why] {
                assert!(text.len() > 40 && !text.contains('*') && !text.contains("]("), "{name}: {text}");
            }
            // A question for the class, which does not give the answer away.
            assert!(predict.ends_with('?') && !predict.contains("should"), "{name}: {predict}");
            // Shown on a page with no README around it: nothing that points elsewhere.
            for text in [&predict, &why] {
                for elsewhere in
                    ["x axis", "y axis", "src/", ".rs", "experiment below", "shown above", "the table"]
                {
                    assert!(
                        !text.contains(elsewhere),
                        "{name} says {elsewhere:?}, which the page does not show: {text}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_section_runs_to_the_next_heading_and_markdown_becomes_plain_text() {
        let readme = "# Top\n\n## `one` and `two`\n\nBoth.\n\n### `one`: first\n\n*Predict.* Will `x`\nrise? See [the plot](a.png).\n\n\
                      ![A plot](a.png)\n\nIt rises. *Why:* clocks **lie**.\n\n### `two`\n\n*Predict.* Other.\n";
        let one = lesson(readme, "one");
        assert_eq!(one.predict.as_deref(), Some("Will x rise? See the plot."));
        assert_eq!(one.why.as_deref(), Some("Clocks lie."));
        assert_eq!(lesson(readme, "two"), Lesson { predict: Some("Other.".into()), why: None });
        assert_eq!(lesson(readme, "three"), Lesson::default());
    }
}
