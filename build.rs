//! Rebuilds the binary when a file it carries changes: `include_dir!` embeds
//! `experiments/` and `web/` (see `src/builtin.rs`), and cargo only tracks a
//! directory's files, added and removed ones included, when told to.

fn main() {
    for dir in ["experiments", "web"] {
        println!("cargo:rerun-if-changed={dir}");
    }
}
