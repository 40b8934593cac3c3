//! The last step of a build: the host moves to the output with its manifest beside it, each
//! staged in the output's directory and renamed into place, so a failure or an interrupt
//! leaves the previous output as it was. (The lock file is the caller's: one lock may hold
//! several builds.)

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cargo_metadata::Metadata;

use crate::builder::{BuildError, Outcome, io};
use crate::cache::Entry;
use crate::cargo::Interrupt;
use crate::events::{Event, Reporter, Step};
use crate::manifest::{self, Manifest, ManifestModule};
use crate::plan::BuildPlan;
use crate::resolve::{self, Resolved};
use crate::workspace::Workspace;

/// A host ready to install.
pub struct Built {
    pub binary: PathBuf,
    pub entry: Entry,
    pub cached: bool,
    pub build_id: String,
    pub lock: String,
    pub sbom: crate::sbom::Sbom,
}

/// What the manifest is written from.
pub struct Context<'a> {
    pub resolved: &'a Resolved,
    pub metadata: &'a Metadata,
    pub ws: &'a Workspace,
}

pub fn install(
    plan: &BuildPlan,
    built: Built,
    context: &Context<'_>,
    reporter: &mut dyn Reporter,
    interrupt: &Interrupt,
) -> Result<Outcome, BuildError> {
    let Built {
        binary,
        entry,
        cached,
        build_id,
        lock,
        sbom,
    } = built;
    let dir = plan
        .output
        .parent()
        .expect("output paths are absolute files");
    // Staged beside the output so the final rename is atomic (same file system).
    let staged = tempfile::Builder::new()
        .prefix(".xbuild-staged-")
        .tempfile_in(dir)
        .map_err(io(format!("create a file in `{}`", dir.display())))?
        .into_temp_path();
    std::fs::copy(&binary, &staged)
        .map_err(io(format!("copy the host into `{}`", dir.display())))?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755))
        .map_err(io("make the host executable"))?;

    let sha256 = crate::sbom::sha256_file(&staged).map_err(io("hash the host"))?;
    let manifest = Manifest {
        build_id: build_id.clone(),
        sha256: sha256.clone(),
        core_version: context.resolved.core_version.clone(),
        rustc: plan.rustc_version().to_owned(),
        target: plan.target.clone(),
        profile: plan.profile.cargo_name().to_owned(),
        static_link: plan.static_link,
        modules: manifest_modules(context.resolved, context.metadata, &entry, context.ws),
    };
    let manifest_path = manifest::manifest_path(&plan.output);
    let manifest_json =
        serde_json::to_string_pretty(&manifest).expect("manifest serializes") + "\n";
    let staged_manifest = stage_text(dir, &manifest_json)?;
    let staged_sbom = if plan.sbom {
        let version = plan.dist.version.as_deref().unwrap_or("0.0.0");
        let document = sbom.cyclonedx(&plan.dist.name, version, &build_id);
        let text = serde_json::to_string_pretty(&document).expect("the SBOM serialises") + "\n";
        Some((stage_text(dir, &text)?, sbom_path(&plan.output)))
    } else {
        None
    };

    interrupt.check()?;
    reporter.report(Event::Step {
        step: Step::Install,
        message: plan.output.display().to_string(),
    });
    // Binary and manifest move in one after the other; a lock on their directory keeps
    // another xbuild installing to the same place from interleaving with this one.
    let _dir_lock = lock_dir(dir)?;
    staged
        .persist(&plan.output)
        .map_err(|e| io(format!("move the host to `{}`", plan.output.display()))(e.error))?;
    staged_manifest
        .persist(&manifest_path)
        .map_err(|e| io(format!("write `{}`", manifest_path.display()))(e.error))?;
    let sbom = match staged_sbom {
        Some((staged, path)) => {
            staged
                .persist(&path)
                .map_err(|e| io(format!("write `{}`", path.display()))(e.error))?;
            Some(path)
        }
        None => None,
    };
    Ok(Outcome {
        output: plan.output.clone(),
        manifest: manifest_path,
        build_id,
        sha256,
        cached,
        cargo_lock: lock,
        sbom,
    })
}

/// `<output>.cdx.json`, the CycloneDX SBOM beside an output.
pub fn sbom_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".cdx.json");
    output.with_file_name(name)
}

/// Every module crate of the host: the ones asked for, and any other crate that registered
/// a module (a module crate that another module crate depends on), as `list-modules` saw.
fn manifest_modules(
    resolved: &Resolved,
    metadata: &Metadata,
    entry: &Entry,
    ws: &Workspace,
) -> Vec<ManifestModule> {
    let ids_of = |name: &str| -> Vec<String> {
        let mut ids: Vec<String> = entry
            .ids
            .iter()
            .filter(|(krate, _)| krate == name)
            .map(|(_, id)| id.clone())
            .collect();
        ids.sort();
        ids
    };
    let mut modules: Vec<ManifestModule> = resolved
        .modules
        .iter()
        .map(|m| ManifestModule {
            name: m.name.clone(),
            version: m.version.clone(),
            source: m.source.clone(),
            ids: ids_of(&m.name),
        })
        .collect();
    let mut others: Vec<&str> = entry
        .ids
        .iter()
        .map(|(krate, _)| krate.as_str())
        .filter(|krate| !modules.iter().any(|m| m.name == *krate))
        .collect();
    others.sort();
    others.dedup();
    for name in others {
        let package = metadata.packages.iter().find(|p| p.name.as_str() == name);
        modules.push(ManifestModule {
            name: name.to_owned(),
            version: package.map(|p| p.version.to_string()).unwrap_or_default(),
            source: package
                .map(|p| resolve::source_of(p, ws))
                .unwrap_or_default(),
            ids: ids_of(name),
        });
    }
    modules
}

/// An exclusive lock on a directory (flock on the directory itself, so nothing is written
/// into it), held while files are moved into it.
fn lock_dir(dir: &Path) -> Result<std::fs::File, BuildError> {
    let handle = std::fs::File::open(dir).map_err(io(format!("open `{}`", dir.display())))?;
    handle
        .lock()
        .map_err(io(format!("lock `{}`", dir.display())))?;
    Ok(handle)
}

/// A readable file beside the output, renamed into place later.
fn stage_text(dir: &Path, text: &str) -> Result<tempfile::TempPath, BuildError> {
    let staged = tempfile::Builder::new()
        .prefix(".xbuild-staged-")
        .tempfile_in(dir)
        .map_err(io(format!("create a file in `{}`", dir.display())))?;
    std::fs::write(staged.path(), text).map_err(io(format!("write into `{}`", dir.display())))?;
    let staged = staged.into_temp_path();
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o644))
        .map_err(io("make a file readable"))?;
    Ok(staged)
}
