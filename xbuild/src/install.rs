//! The last step of a build: the host moves to the output with its manifest (and SBOM)
//! beside it, all or nothing. Each file is staged in the output's directory; then the
//! previous files are moved aside and the new ones renamed into place, and if any step
//! fails, what was moved is put back, so a reader finds the old set or the new one. The
//! previous files stay aside (in [`Replaced`]) until the caller has written the lock file
//! too (one lock may hold several builds), so a lock that cannot be written undoes the
//! installs as well.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cargo_metadata::Metadata;

use crate::build_error::{BuildError, io};
use crate::cache::Entry;
use crate::cargo::Interrupt;
use crate::events::{Event, Reporter, Step};
use crate::manifest::{self, Manifest, ManifestModule};
use crate::plan::BuildPlan;
use crate::resolve::{self, Resolved};
use crate::workspace::Workspace;

/// What a successful build produced.
#[derive(Debug)]
pub struct Outcome {
    pub output: PathBuf,
    pub manifest: PathBuf,
    pub build_id: String,
    pub sha256: String,
    /// Whether the host came from the cache, without compiling.
    pub cached: bool,
    /// The resolution built (the generated workspace's Cargo.lock), for the lock file.
    pub cargo_lock: String,
    /// The CycloneDX SBOM beside the output, when asked for.
    pub sbom: Option<PathBuf>,
    /// What each crate adds to the host (`None` if it has no symbol table).
    pub sizes: Option<xbuild_core::build_info::Sizes>,
    /// The files this build replaced, kept until the set is final (the caller writes the
    /// lock, then lets it drop; or undoes the install if the lock cannot be written).
    pub replaced: Replaced,
}

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
    let host_bytes = std::fs::read(&binary).map_err(io("read the built host"))?;
    // What the build measured and wrote into the host; a host whose core has no room for
    // it is measured here, by symbol paths alone.
    let sizes = crate::sizes::embedded(&host_bytes).or_else(|| {
        crate::sizes::measure(
            &host_bytes,
            &crate::sizes::CrateNames::from_metadata(context.metadata),
            &crate::sizes::Definers::default(),
        )
        .ok()
    });
    if let Some(max) = plan.max_size
        && host_bytes.len() as u64 > max
    {
        return Err(BuildError::TooLarge {
            output: plan.output.clone(),
            size: host_bytes.len() as u64,
            max,
            largest: sizes
                .as_ref()
                .map(|s| crate::sizes::largest(s, 3))
                .unwrap_or_default(),
        });
    }
    drop(host_bytes);
    // Created only now, once there is something to install (`--output` checked that it
    // can be).
    std::fs::create_dir_all(dir).map_err(io(format!("create `{}`", dir.display())))?;
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
        sizes: sizes.clone(),
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
    // A lock on their directory keeps another xbuild installing to the same place from
    // interleaving with this one.
    let _dir_lock = lock_dir(dir)?;
    let mut files = vec![
        (staged, plan.output.clone()),
        (staged_manifest, manifest_path.clone()),
    ];
    let sbom = staged_sbom.map(|(staged, path)| {
        files.push((staged, path.clone()));
        path
    });
    let replaced = replace(files).map_err(|(failed, state)| BuildError::Install {
        output: plan.output.clone(),
        failed,
        state,
    })?;
    Ok(Outcome {
        output: plan.output.clone(),
        manifest: manifest_path,
        build_id,
        sha256,
        cached,
        cargo_lock: lock,
        sbom,
        sizes,
        replaced,
    })
}

/// The files an install moved into place, and the previous ones it moved aside. Dropping
/// it makes the install final (the previous files are deleted); [`Replaced::undo`] puts
/// the previous files back.
#[derive(Debug, Default)]
pub struct Replaced {
    /// Each destination, and where its previous file waits (`None`: there was none).
    moved: Vec<(PathBuf, Option<PathBuf>)>,
}

impl Replaced {
    /// Puts back what was there before, newest first. On failure, says what is where.
    pub fn undo(mut self) -> Result<(), String> {
        let mut stuck = Vec::new();
        while let Some((dest, previous)) = self.moved.pop() {
            let restored = match &previous {
                Some(previous) => std::fs::rename(previous, &dest),
                None => std::fs::remove_file(&dest),
            };
            if let Err(e) = restored {
                stuck.push(match previous {
                    Some(previous) => format!(
                        "the previous `{}` is kept as `{}` ({e})",
                        dest.display(),
                        previous.display()
                    ),
                    None => format!("the new `{}` could not be removed ({e})", dest.display()),
                });
            }
        }
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(stuck.join("; "))
        }
    }
}

impl Drop for Replaced {
    fn drop(&mut self) {
        for previous in self
            .moved
            .iter()
            .filter_map(|(_, previous)| previous.as_ref())
        {
            let _ = std::fs::remove_file(previous);
        }
    }
}

/// Moves each staged file to its destination, the destination's previous file moved aside
/// first. All or nothing: on a failure, what was done is undone, and the error is the
/// failure and the state the destinations are left in.
fn replace(files: Vec<(tempfile::TempPath, PathBuf)>) -> Result<Replaced, (String, String)> {
    let names = files
        .iter()
        .map(|(_, dest)| format!("`{}`", dest.display()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut replaced = Replaced::default();
    for (staged, dest) in files {
        let previous = if std::fs::symlink_metadata(&dest).is_ok() {
            let name = dest.file_name().unwrap_or_default().to_string_lossy();
            let aside =
                dest.with_file_name(format!(".xbuild-previous-{}-{name}", std::process::id()));
            if let Err(e) = std::fs::rename(&dest, &aside) {
                let failed = format!("cannot move the previous `{}` aside: {e}", dest.display());
                return Err((failed, undone(replaced, &names)));
            }
            Some(aside)
        } else {
            None
        };
        if let Err(e) = staged.persist(&dest) {
            let failed = format!(
                "cannot move the new file to `{}`: {}",
                dest.display(),
                e.error
            );
            let back = previous.map(|aside| std::fs::rename(&aside, &dest).map_err(|e| (aside, e)));
            let mut state = undone(replaced, &names);
            if let Some(Err((aside, e))) = back {
                state = format!(
                    "{state}, except the previous `{}`, kept as `{}` ({e})",
                    dest.display(),
                    aside.display()
                );
            }
            return Err((failed, state));
        }
        replaced.moved.push((dest, previous));
    }
    Ok(replaced)
}

/// Undoes `replaced` and says in what state that left `names`.
fn undone(replaced: Replaced, names: &str) -> String {
    match replaced.undo() {
        Ok(()) => format!("nothing was changed: {names} are as they were before this build"),
        Err(stuck) => format!("the output is mixed: {stuck}"),
    }
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
