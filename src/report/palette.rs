//! One colour and one marker per strategy, the same in every plot and on
//! every page.
//!
//! A class that has learnt "lww-wall is the orange line with circles" on
//! the first plot must find it orange with circles on the next one, in the
//! live lab's columns and in the step-through's table. So a strategy's
//! style is a function of its *name*, never of its place in a run's list:
//! the seven built-ins have fixed styles, and a plugin gets one of a second
//! set, chosen by a hash of its name, so it too keeps its colour from run to
//! run. Colours come from Okabe and Ito's palette, whose colours stay apart
//! for colour-blind readers (its yellow left out: it vanishes on white and
//! on a washed-out projector), and every strategy also has its own marker
//! shape, so that no line is told apart by colour alone.
//!
//! The dashboard's pages get the same colours from the API
//! ([`colours`]), never from a copy in JavaScript.

use std::collections::BTreeMap;

use plotters::style::RGBColor;

/// Marker shapes: filled outlines that stay apart at a glance, and in grey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Triangle,
    Square,
    Diamond,
    TriangleDown,
    Hexagon,
    Star,
}

/// How one strategy is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub colour: RGBColor,
    pub marker: Marker,
}

/// The built-in strategies' styles, by name.
const BUILTIN: [(&str, Style); 7] = [
    ("lww-wall", Style { colour: RGBColor(213, 94, 0), marker: Marker::Circle }), // vermillion
    ("lww-hlc", Style { colour: RGBColor(0, 114, 178), marker: Marker::Triangle }), // blue
    ("lww-lamport", Style { colour: RGBColor(0, 158, 115), marker: Marker::Square }), // bluish green
    ("truetime", Style { colour: RGBColor(230, 159, 0), marker: Marker::Hexagon }), // orange
    ("vv", Style { colour: RGBColor(204, 121, 167), marker: Marker::Diamond }),   // reddish purple
    ("vv-server", Style { colour: RGBColor(86, 180, 233), marker: Marker::TriangleDown }), // sky blue
    ("set-union", Style { colour: RGBColor(0, 0, 0), marker: Marker::Star }),     // black
];

/// A real database's buckets (`engine = "pglogical"`): one of pglogical's
/// conflict resolution modes each, in tones of their own.
const DATABASE: [(&str, Style); 4] = [
    ("pg-last-update-wins", Style { colour: RGBColor(150, 20, 60), marker: Marker::Circle }), // wine
    ("pg-first-update-wins", Style { colour: RGBColor(110, 60, 160), marker: Marker::Triangle }), // violet
    ("pg-apply-remote", Style { colour: RGBColor(0, 90, 90), marker: Marker::Diamond }),      // teal
    ("pg-keep-local", Style { colour: RGBColor(128, 64, 0), marker: Marker::Square }),        // brown
];

/// Styles for any other strategy (plugins): darker tones that none of the
/// built-ins use, each with a marker.
const OTHERS: [Style; 6] = [
    Style { colour: RGBColor(128, 64, 0), marker: Marker::Square }, // brown
    Style { colour: RGBColor(90, 90, 90), marker: Marker::Circle }, // grey
    Style { colour: RGBColor(110, 60, 160), marker: Marker::Triangle }, // violet
    Style { colour: RGBColor(0, 90, 90), marker: Marker::Diamond }, // teal
    Style { colour: RGBColor(150, 20, 60), marker: Marker::Hexagon }, // wine
    Style { colour: RGBColor(85, 107, 47), marker: Marker::TriangleDown }, // olive
];

/// The style of the strategy named `name`.
pub fn style_of(name: &str) -> Style {
    if let Some((_, style)) = BUILTIN.iter().chain(&DATABASE).find(|(known, _)| *known == name) {
        return *style;
    }
    // FNV-1a: a fixed hash, so a plugin's colour never changes between runs.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    OTHERS[(hash % OTHERS.len() as u64) as usize]
}

/// How a lease guard is drawn (`crate::lease::Guard`): only in lease runs,
/// which draw no strategy. The one that trusts the time of day is
/// vermillion, like `lww-wall`; fencing, the one that holds, is green.
pub fn guard_style(guard: crate::lease::Guard) -> Style {
    use crate::lease::Guard;
    match guard {
        Guard::WallClock => Style { colour: RGBColor(213, 94, 0), marker: Marker::Circle },
        Guard::Monotonic => Style { colour: RGBColor(0, 114, 178), marker: Marker::Triangle },
        Guard::Fenced => Style { colour: RGBColor(0, 158, 115), marker: Marker::Square },
    }
}

/// Each guard's colour, for a page.
pub fn guard_colours() -> BTreeMap<String, String> {
    crate::lease::Guard::ALL
        .into_iter()
        .map(|guard| (guard.as_str().to_string(), hex(guard_style(guard).colour)))
        .collect()
}

/// A colour as CSS writes it: `#d55e00`.
pub fn hex(colour: RGBColor) -> String {
    let RGBColor(r, g, b) = colour;
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Each of `names`' colour, for a page: `{"lww-wall": "#d55e00", ...}`.
pub fn colours<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, String> {
    names.into_iter().map(|name| (name.to_string(), hex(style_of(name).colour))).collect()
}

/// How a page shows a strategy: its colour, and a line on what it does.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StrategyKey {
    pub colour: String,
    pub about: &'static str,
}

/// Each of `names`' colour and line, for a page's key of the strategies.
pub fn key<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, StrategyKey> {
    names
        .into_iter()
        .map(|name| {
            let about = crate::pg::cluster::Resolution::of_bucket(name)
                .map_or_else(|| crate::strategy::about(name), crate::pg::cluster::Resolution::about);
            let entry = StrategyKey { colour: hex(style_of(name).colour), about };
            (name.to_string(), entry)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_strategy_keeps_its_style_whatever_else_is_drawn_and_no_two_builtins_share_one() {
        assert_eq!(hex(style_of("lww-wall").colour), "#d55e00");
        assert_eq!(style_of("vv"), style_of("vv"));
        for (index, (name, style)) in BUILTIN.iter().enumerate() {
            for (other, other_style) in &BUILTIN[index + 1..] {
                assert_ne!(style.colour, other_style.colour, "{name} and {other}");
                assert_ne!(style.marker, other_style.marker, "{name} and {other}");
            }
        }
        // A plugin's style is one no built-in has, and stays the same.
        let plugin = style_of("py-lww-wall");
        assert_eq!(plugin, style_of("py-lww-wall"));
        assert!(BUILTIN.iter().all(|(_, style)| style.colour != plugin.colour));
        assert_eq!(colours(["vv", "lww-hlc"]).get("lww-hlc").map(String::as_str), Some("#0072b2"));
    }
}
