//! What the binary carries, and where files on disk take over.
//!
//! A user who installs the binary (`cargo install --path .`) and runs it in
//! any directory still needs the experiment specs, the step-through
//! scenarios, the live lab's presets and the dashboard's page. They are compiled in (with
//! `include_dir`), so the binary works on its own; the plot font is embedded
//! the same way by `report::plots`.
//!
//! A directory on disk overrides a built-in folder, so that editing a spec in
//! the checkout takes effect without a rebuild. In order:
//!
//! 1. the directory a flag names (`--experiments DIR`, `--web DIR`);
//! 2. `./experiments` or `./web` if the working directory has one;
//! 3. the built-in copy.
//!
//! A [`Folder`] hides which of the two it is: it lists `.toml` files, reads
//! files by name, and says where it is for messages.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

/// `experiments/` as it was when the binary was built.
static EXPERIMENTS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/experiments");
/// `web/` as it was when the binary was built.
static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/web");

/// The default names of the two folders, in the working directory.
pub const EXPERIMENTS_DIR: &str = "experiments";
pub const WEB_DIR: &str = "web";
/// The scenarios' and the live lab's presets' folders inside the experiments.
pub const SCENARIOS_DIR: &str = "scenarios";
pub const PRESETS_DIR: &str = "presets";
pub const LEASE_STORIES_DIR: &str = "lease-stories";

/// A folder of files: a directory on disk, or one the binary carries.
#[derive(Debug, Clone)]
pub enum Folder {
    Disk(PathBuf),
    Builtin { name: String, dir: &'static Dir<'static> },
}

impl Folder {
    /// The experiment specs (and `scenarios/`): `flag`, else
    /// `./experiments` if it exists, else the built-in ones.
    pub fn experiments(flag: Option<&Path>) -> Self {
        Self::chosen(flag, EXPERIMENTS_DIR, &EXPERIMENTS, |dir| dir.is_dir())
    }

    /// The step-through scenarios: `flag/scenarios` for an experiments
    /// directory given as `flag`, else `./experiments/scenarios` if it
    /// exists, else the built-in ones (a checkout's `./experiments` without
    /// scenarios does not hide them).
    pub fn scenarios(flag: Option<&Path>) -> Self {
        Self::inside_experiments(flag, SCENARIOS_DIR)
    }

    /// DDIA Figures 8-4 and 8-5 as lease specs, found as the scenarios are.
    pub fn lease_stories(flag: Option<&Path>) -> Self {
        Self::inside_experiments(flag, LEASE_STORIES_DIR)
    }

    /// The live lab's presets, found as the scenarios are.
    pub fn presets(flag: Option<&Path>) -> Self {
        Self::inside_experiments(flag, PRESETS_DIR)
    }

    fn inside_experiments(flag: Option<&Path>, name: &str) -> Self {
        let on_disk = Path::new(EXPERIMENTS_DIR).join(name);
        match flag {
            Some(dir) => Self::Disk(dir.join(name)),
            None if on_disk.is_dir() => Self::Disk(on_disk),
            None => Self::builtin_experiments().child(name),
        }
    }

    /// The dashboard's page: `flag`, else `./web` if it holds an
    /// `index.html`, else the built-in one.
    pub fn web(flag: Option<&Path>) -> Self {
        Self::chosen(flag, WEB_DIR, &WEB, |dir| dir.join("index.html").is_file())
    }

    /// The built-in experiments, whatever is on disk.
    pub fn builtin_experiments() -> Self {
        Self::Builtin { name: EXPERIMENTS_DIR.into(), dir: &EXPERIMENTS }
    }

    fn chosen(
        flag: Option<&Path>,
        default: &str,
        builtin: &'static Dir<'static>,
        usable: impl Fn(&Path) -> bool,
    ) -> Self {
        match flag {
            Some(dir) => Self::Disk(dir.to_path_buf()),
            None if usable(Path::new(default)) => Self::Disk(default.into()),
            None => Self::Builtin { name: default.into(), dir: builtin },
        }
    }

    /// The folder `name` inside this one (`scenarios` in the experiments).
    pub fn child(&self, name: &str) -> Self {
        match self {
            Self::Disk(dir) => Self::Disk(dir.join(name)),
            Self::Builtin { name: parent, dir } => Self::Builtin {
                name: format!("{parent}/{name}"),
                dir: dir.get_dir(dir.path().join(name)).unwrap_or(&EMPTY),
            },
        }
    }

    pub fn is_builtin(&self) -> bool {
        matches!(self, Self::Builtin { .. })
    }

    /// The directory on disk, for a folder that is one.
    pub fn disk_path(&self) -> Option<&Path> {
        match self {
            Self::Disk(dir) => Some(dir),
            Self::Builtin { .. } => None,
        }
    }

    /// Where the file `name` is, for messages: a path, or `built-in PATH`.
    pub fn describe_file(&self, name: &str) -> String {
        match self {
            Self::Disk(dir) => dir.join(name).display().to_string(),
            Self::Builtin { name: folder, .. } => format!("built-in {folder}/{name}"),
        }
    }

    /// The file `name` (a plain name, or a relative path of plain names).
    /// `None` if there is no such file or the name tries to leave the folder.
    pub fn read(&self, name: &str) -> Option<Cow<'static, [u8]>> {
        if !is_relative_plain(name) {
            return None;
        }
        match self {
            Self::Disk(dir) => std::fs::read(dir.join(name)).ok().map(Cow::Owned),
            Self::Builtin { dir, .. } => {
                dir.get_file(dir.path().join(name)).map(|file| Cow::Borrowed(file.contents()))
            }
        }
    }

    /// The file `name` as text; the error says which file and why.
    pub fn read_to_string(&self, name: &str) -> Result<String, String> {
        let bytes = self.read(name).ok_or_else(|| format!("{} does not exist", self.describe_file(name)))?;
        String::from_utf8(bytes.into_owned())
            .map_err(|_| format!("{} is not UTF-8 text", self.describe_file(name)))
    }

    /// Whether the file `name` exists here.
    pub fn has(&self, name: &str) -> bool {
        match self {
            Self::Disk(dir) => is_relative_plain(name) && dir.join(name).is_file(),
            Self::Builtin { .. } => self.read(name).is_some(),
        }
    }

    /// The names (file stems) of the `.toml` files directly in this folder, sorted.
    pub fn toml_stems(&self) -> Vec<String> {
        let stem = |path: &Path| -> Option<String> {
            if path.extension()? != "toml" {
                return None;
            }
            Some(path.file_stem()?.to_string_lossy().into_owned())
        };
        let mut names: Vec<String> = match self {
            Self::Disk(dir) => std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
                .filter_map(|entry| stem(&entry.path()))
                .collect(),
            Self::Builtin { dir, .. } => dir.files().filter_map(|file| stem(file.path())).collect(),
        };
        names.sort();
        names
    }
}

impl fmt::Display for Folder {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disk(dir) => write!(formatter, "{}", dir.display()),
            Self::Builtin { name, .. } => write!(formatter, "the built-in {name}/"),
        }
    }
}

static EMPTY: Dir<'static> = Dir::new("", &[]);

/// Whether `name` is a relative path made only of plain components.
fn is_relative_plain(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && Path::new(name).components().all(|part| matches!(part, std::path::Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_experiments_are_the_checkouts() {
        let builtin = Folder::builtin_experiments();
        let disk = Folder::Disk(Path::new(env!("CARGO_MANIFEST_DIR")).join(EXPERIMENTS_DIR));
        assert!(builtin.toml_stems().contains(&"skew".to_string()));
        assert_eq!(builtin.toml_stems(), disk.toml_stems());
        assert_eq!(builtin.read("skew.toml"), disk.read("skew.toml"));
        let scenarios = builtin.child("scenarios");
        assert!(scenarios.toml_stems().contains(&"figure-8-3".to_string()));
        assert_eq!(
            scenarios.describe_file("figure-8-3.toml"),
            "built-in experiments/scenarios/figure-8-3.toml"
        );
    }

    #[test]
    fn names_that_leave_the_folder_are_not_read() {
        let builtin = Folder::builtin_experiments();
        for name in ["", "../Cargo.toml", "/etc/passwd", "scenarios/../skew.toml", "a\\b"] {
            assert_eq!(builtin.read(name), None, "{name:?}");
            assert!(!Folder::Disk(env!("CARGO_MANIFEST_DIR").into()).has(name), "{name:?}");
        }
        assert!(Folder::builtin_experiments().child("no-such-folder").toml_stems().is_empty());
    }

    #[test]
    fn the_builtin_page_has_its_index() {
        let web = Folder::Builtin { name: WEB_DIR.into(), dir: &WEB };
        let index = web.read("index.html").expect("index.html is built in");
        assert!(String::from_utf8_lossy(&index).contains("<html"));
        assert!(web.has("app.js"));
    }
}
