//! `sluice plugin new`: writes a plugin project that lives outside sluice's repository — the
//! language's own manifest, the contract (`wit/plugin.wit`), the SDK of this sluice, a sample
//! input the template turns into rows, a test, a README and an executable `build` script.
//!
//! Templates are `plugins/templates/<language>/` (files ending in `.tmpl` have `{{name}}`,
//! `{{table}}`, `{{crate}}` and `{{sluice_version}}` filled in) plus `plugins/templates/common/`,
//! all embedded in the binary with the SDKs, so the command needs nothing but itself.
//!
//! The Rust SDK is copied into the project (`sluice-sdk/`, its manifest made standalone with the
//! workspace's dependency versions) rather than named as a git dependency: the project then builds
//! on a machine that reaches only the package registries, with the SDK of the sluice it runs on.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use include_dir::{Dir, include_dir};

static TEMPLATES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../plugins/templates");
static RUST_SDK: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../plugins/sdk");
static CONTRACT: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../plugins/contract");
const PYTHON_SDK: &str = include_str!("../../../plugins/sdk-python/sluice_plugin.py");
const JS_SDK: &str = include_str!("../../../plugins/sdk-js/sluice-plugin.js");
/// The author's guide; the Rust SDK's documentation includes it (its example is the doctest).
const GUIDE: &str = include_str!("../../../plugins/README.md");
const WORKSPACE_MANIFEST: &str = include_str!("../../../Cargo.toml");

/// A language plugins can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, with the sluice plugin SDK (a copy in `sluice-sdk/`).
    Rust,
    /// Python, built with componentize-py, with the SDK module `sluice_plugin.py`.
    Python,
    /// JavaScript, bundled with esbuild and built with componentize-js, with the SDK module
    /// `sluice-plugin.js`.
    Js,
}

impl Lang {
    fn folder(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Python => "python",
            Self::Js => "js",
        }
    }
}

/// Writes a new plugin project `name` in `language` into `dir` (which must not exist or be
/// empty) and returns the files written, relative to `dir`.
pub fn new_project(name: &str, language: Lang, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    sluice_runtime::check_plugin_name(name).map_err(anyhow::Error::msg)?;
    if dir.exists() && fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?.next().is_some() {
        bail!("{} already exists and is not empty; pick another --dir", dir.display());
    }
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{table}}", &name.replace('-', "_"))
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{sluice_version}}", env!("CARGO_PKG_VERSION"))
    };
    let mut files = Vec::new();
    let mut write = |relative: &Path, contents: &[u8]| -> anyhow::Result<()> {
        let path = dir.join(relative);
        fs::create_dir_all(path.parent().expect("a file in the project"))
            .with_context(|| format!("cannot create {}", path.parent().unwrap().display()))?;
        fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
        if relative == Path::new("build") {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        }
        files.push(relative.to_path_buf());
        Ok(())
    };

    for folder in ["common", language.folder()] {
        let templates = TEMPLATES.get_dir(folder).expect("the templates are embedded");
        for file in files_in(templates) {
            let relative = file.path().strip_prefix(folder).expect("a file of the folder");
            match relative.to_str().and_then(|r| r.strip_suffix(".tmpl")) {
                Some(plain) => {
                    write(Path::new(plain), fill(file.contents_utf8().expect("templates are UTF-8")).as_bytes())?
                }
                // Kept without its dot in the templates, where it would apply to this repository.
                None if relative == Path::new("gitignore") => write(Path::new(".gitignore"), file.contents())?,
                None => write(relative, file.contents())?,
            }
        }
    }
    let (_, newest) = sluice_runtime::CONTRACT_WIT.last().expect("a contract version");
    write(Path::new("wit/plugin.wit"), newest.as_bytes())?;
    match language {
        Lang::Rust => {
            for (crate_dir, into) in [(&RUST_SDK, "sluice-sdk/sdk"), (&CONTRACT, "sluice-sdk/contract")] {
                for file in files_in(crate_dir).filter(|f| f.path().starts_with("src")) {
                    write(&Path::new(into).join(file.path()), file.contents())?;
                }
                let manifest = crate_dir.get_file("Cargo.toml").expect("a crate manifest");
                let standalone = standalone_manifest(manifest.contents_utf8().expect("UTF-8"), WORKSPACE_MANIFEST)?;
                write(&Path::new(into).join("Cargo.toml"), standalone.as_bytes())?;
            }
            write(Path::new("sluice-sdk/README.md"), GUIDE.as_bytes())?;
        }
        Lang::Python => write(Path::new("sluice_plugin.py"), PYTHON_SDK.as_bytes())?,
        Lang::Js => write(Path::new("sluice-plugin.js"), JS_SDK.as_bytes())?,
    }
    Ok(files)
}

/// Every file under `dir`, depth first.
fn files_in<'a>(dir: &'a Dir<'a>) -> impl Iterator<Item = &'a include_dir::File<'a>> {
    let mut stack = vec![dir];
    let mut files = Vec::new();
    while let Some(dir) = stack.pop() {
        files.extend(dir.files());
        stack.extend(dir.dirs());
    }
    files.into_iter()
}

/// A member crate's manifest made standalone: every `workspace = true` replaced by the
/// workspace's value (dependency versions and features stay exactly the workspace's), the
/// in-repository `sluice-contract` taken from the sibling folder, lints dropped. The copies are
/// path dependencies of the project, members of its workspace.
fn standalone_manifest(member: &str, workspace: &str) -> anyhow::Result<String> {
    let mut member: toml::Table = member.parse().context("a member manifest")?;
    let workspace: toml::Table = workspace.parse().context("the workspace manifest")?;
    let shared = &workspace["workspace"];
    if let Some(package) = member.get_mut("package").and_then(toml::Value::as_table_mut) {
        for (key, value) in package.iter_mut() {
            if is_inherited(value) {
                *value = shared["package"][key.as_str()].clone();
            }
        }
    }
    if let Some(dependencies) = member.get_mut("dependencies").and_then(toml::Value::as_table_mut) {
        for (name, value) in dependencies.iter_mut() {
            if name == "sluice-contract" {
                let mut local = toml::Table::new();
                local.insert("path".into(), "../contract".into());
                if let Some(features) = value.get("features") {
                    local.insert("features".into(), features.clone());
                }
                *value = local.into();
            } else if is_inherited(value) {
                let mut resolved = match &shared["dependencies"][name.as_str()] {
                    toml::Value::String(version) => {
                        let mut table = toml::Table::new();
                        table.insert("version".into(), version.clone().into());
                        table
                    }
                    other => other.as_table().context("a dependency table")?.clone(),
                };
                for (key, extra) in value.as_table().into_iter().flatten() {
                    if key == "features" {
                        let features = resolved.entry("features").or_insert_with(|| toml::Value::Array(Vec::new()));
                        features
                            .as_array_mut()
                            .context("features")?
                            .extend(extra.as_array().cloned().unwrap_or_default());
                    } else if key != "workspace" {
                        resolved.insert(key.clone(), extra.clone());
                    }
                }
                *value = resolved.into();
            }
        }
    }
    member.remove("lints");
    Ok(toml::to_string(&member)?)
}

fn is_inherited(value: &toml::Value) -> bool {
    value.get("workspace").and_then(toml::Value::as_bool) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_manifest_becomes_standalone_with_the_workspace_versions() {
        let workspace = r#"
            [workspace.package]
            version = "0.1.0"
            edition = "2024"
            [workspace.dependencies]
            serde = { version = "1", features = ["derive"] }
            csv = "1.4"
        "#;
        let member = r#"
            [package]
            name = "sluice-plugin-sdk"
            version.workspace = true
            edition.workspace = true
            [dependencies]
            sluice-contract.workspace = true
            serde = { workspace = true, features = ["rc"] }
            csv.workspace = true
            [lints]
            workspace = true
        "#;
        let standalone: toml::Table = standalone_manifest(member, workspace).unwrap().parse().unwrap();
        assert_eq!(standalone["package"]["version"].as_str(), Some("0.1.0"));
        assert_eq!(standalone["package"]["edition"].as_str(), Some("2024"));
        let dependencies = &standalone["dependencies"];
        assert_eq!(dependencies["sluice-contract"]["path"].as_str(), Some("../contract"));
        assert_eq!(dependencies["serde"]["version"].as_str(), Some("1"));
        assert_eq!(dependencies["serde"]["features"].as_array().unwrap().len(), 2);
        assert_eq!(dependencies["csv"]["version"].as_str(), Some("1.4"));
        assert!(standalone.get("lints").is_none());
    }

    #[test]
    fn names_and_folders_are_checked_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let error = new_project("Bad Name", Lang::Python, &dir.path().join("x")).unwrap_err();
        assert!(error.to_string().starts_with("plugin name `Bad Name` must start with a lowercase letter"), "{error}");
        assert!(!dir.path().join("x").exists());
        fs::write(dir.path().join("taken"), b"").unwrap();
        let error = new_project("ok", Lang::Python, dir.path()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("{} already exists and is not empty; pick another --dir", dir.path().display())
        );
    }
}
