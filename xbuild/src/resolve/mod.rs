//! Checks of the resolved dependency graph, before anything compiles: every module crate
//! really is an xbuild module, the graph holds exactly one xbuild-core, and cargo's own
//! resolution errors become one message naming the crate and what exists.

mod explain;

use std::collections::{BTreeSet, HashMap, HashSet};

use cargo_metadata::{Metadata, Package, PackageId};

pub use explain::{ResolveError, explain_cargo_failure};

use crate::events::ResolvedModule;
use crate::plan::{BuildPlan, STANDARD_CRATE, Source};
use crate::spec::crate_ident;
use crate::workspace::{OWN_CRATES_DIR, REPLACEMENTS_DIR, Workspace};
use std::path::Path;

const CORE: &str = "xbuild-core";

/// For each `--replace CRATE=OTHER@REQ` with another crate, the stand-in to write: the
/// version of `CRATE` the graph resolved (so the stand-in meets every requirement on it) and
/// the resolved `OTHER` with its features. A replacement by the same crate is a pin and
/// needs none.
pub fn stand_ins<'p>(
    metadata: &Metadata,
    plan: &'p BuildPlan,
) -> Result<Vec<crate::workspace::StandIn<'p>>, Box<ResolveError>> {
    let mut stand_ins = Vec::new();
    let host = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == crate::workspace::HOST_PACKAGE)
        .expect("the generated package is in its own metadata");
    let host_deps: HashMap<&str, &PackageId> = metadata
        .resolve
        .as_ref()
        .and_then(|r| r.nodes.iter().find(|n| n.id == host.id))
        .map(|node| {
            node.deps
                .iter()
                .map(|d| (d.name.as_str(), &d.pkg))
                .collect()
        })
        .unwrap_or_default();
    for replacement in &plan.replacements {
        let Source::Renamed { package, .. } = &replacement.source else {
            continue;
        };
        if *package == replacement.name {
            continue;
        }
        let key = crate_ident(&crate::workspace::replacement_key(&replacement.name));
        let other = host_deps
            .get(key.as_str())
            .and_then(|id| metadata.packages.iter().find(|p| &p.id == *id))
            .ok_or_else(|| Box::new(ResolveError::Missing(package.clone())))?;
        let replaced = metadata
            .packages
            .iter()
            .filter(|p| p.name.as_str() == replacement.name && p.source.is_some())
            .max_by(|a, b| a.version.cmp(&b.version))
            .ok_or_else(|| {
                Box::new(ResolveError::ReplacedUnused {
                    name: replacement.name.clone(),
                })
            })?;
        let source = replaced
            .source
            .as_ref()
            .map(|s| s.repr.as_str())
            .unwrap_or_default();
        let patch_table =
            if source.contains("crates.io-index") || source.contains("index.crates.io") {
                "crates-io".to_owned()
            } else {
                plan.registry
                    .clone()
                    .unwrap_or_else(|| source.trim_start_matches("registry+").to_owned())
            };
        stand_ins.push(crate::workspace::StandIn {
            name: &replacement.name,
            version: replaced.version.to_string(),
            source: &replacement.source,
            replacement_version: other.version.to_string(),
            features: other.features.keys().cloned().collect(),
            patch_table,
        });
    }
    Ok(stand_ins)
}

/// After the stand-ins are patched in, no registry copy of a replaced crate may remain.
pub fn check_stand_ins(
    metadata: &Metadata,
    stand_ins: &[crate::workspace::StandIn<'_>],
) -> Result<(), Box<ResolveError>> {
    for stand_in in stand_ins {
        if let Some(left) = metadata
            .packages
            .iter()
            .find(|p| p.name.as_str() == stand_in.name && p.source.is_some())
        {
            return Err(Box::new(ResolveError::ReplacementNotTaken {
                name: stand_in.name.to_owned(),
                version: left.version.to_string(),
            }));
        }
    }
    Ok(())
}

/// What resolution settled.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Module crates the host must contain (the `--with` crates, and the standard module
    /// crates `xbuild-standard` names), as resolved.
    pub modules: Vec<ResolvedModule>,
    /// Package IDs of those module crates, to attribute compiler messages.
    pub module_ids: HashSet<PackageId>,
    /// The generated host package.
    pub host_id: PackageId,
    pub core_version: String,
    pub packages: usize,
}

/// Where a package came from, as cargo writes it; a path crate's path as it reaches the
/// binary (remapped, see [`crate::workspace::remapped`]), since this text is embedded too.
pub fn source_of(package: &Package, ws: &Workspace) -> String {
    if let Some(source) = &package.source {
        return source.repr.clone();
    }
    let dir = package
        .manifest_path
        .parent()
        .map(|p| p.as_std_path())
        .unwrap_or(Path::new(""));
    if dir.starts_with(ws.root().join(OWN_CRATES_DIR)) {
        format!("embedded in xbuild {}", crate::VERSION)
    } else if dir.starts_with(ws.root().join(REPLACEMENTS_DIR)) {
        "stand-in generated for --replace".to_owned()
    } else {
        format!("path+file://{}", ws.shown_path(dir))
    }
}

/// Checks the graph of the generated workspace whose root package is `host`.
pub fn check(
    metadata: &Metadata,
    plan: &BuildPlan,
    ws: &Workspace,
) -> Result<Resolved, Box<ResolveError>> {
    let host = ws.package.as_str();
    let packages: HashMap<&PackageId, &Package> =
        metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let resolve = metadata
        .resolve
        .as_ref()
        .expect("cargo metadata resolves dependencies");
    let deps: HashMap<&PackageId, Vec<(&str, &PackageId)>> = resolve
        .nodes
        .iter()
        .map(|node| {
            (
                &node.id,
                node.deps
                    .iter()
                    .map(|d| (d.name.as_str(), &d.pkg))
                    .collect(),
            )
        })
        .collect();
    let root = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == host)
        .expect("the generated package is in its own metadata");

    let cores: Vec<&Package> = metadata
        .packages
        .iter()
        .filter(|p| p.name.as_str() == CORE)
        .collect();
    if cores.len() > 1 {
        let mut described = Vec::new();
        for core in &cores {
            let mut wanted_by: Vec<String> = resolve
                .nodes
                .iter()
                .filter(|node| node.deps.iter().any(|d| d.pkg == core.id))
                .map(|node| {
                    let p = packages[&node.id];
                    if p.id == root.id {
                        "the host (this xbuild's core)".to_owned()
                    } else {
                        format!("`{}` {}", p.name.as_str(), p.version)
                    }
                })
                .collect();
            wanted_by.sort();
            described.push((core.version.to_string(), wanted_by));
        }
        described.sort();
        return Err(Box::new(ResolveError::TwoCores(described)));
    }
    let core = cores.first().expect("the host depends on xbuild-core");

    let reaches_core = |start: &PackageId| {
        let mut seen = HashSet::new();
        let mut stack = vec![start];
        while let Some(id) = stack.pop() {
            if id == &core.id {
                return true;
            }
            if seen.insert(id) {
                stack.extend(deps.get(id).into_iter().flatten().map(|(_, dep)| *dep));
            }
        }
        false
    };
    let root_deps = &deps[&root.id];
    let dependency = |name: &str| -> Option<&Package> {
        let ident = crate_ident(name);
        root_deps
            .iter()
            .find(|(dep_name, _)| *dep_name == ident)
            .map(|(_, id)| packages[id])
    };

    let mut modules = Vec::new();
    let mut module_ids = HashSet::new();
    for module in &plan.modules {
        let Some(package) = dependency(&module.name) else {
            return Err(Box::new(ResolveError::Missing(module.name.clone())));
        };
        if !reaches_core(&package.id) {
            return Err(Box::new(ResolveError::NotAModule {
                name: module.name.clone(),
                version: package.version.to_string(),
            }));
        }
        module_ids.insert(package.id.clone());
        modules.push(ResolvedModule {
            name: package.name.to_string(),
            version: package.version.to_string(),
            source: source_of(package, ws),
        });
    }
    if plan.standard
        && let Some(standard) = dependency(STANDARD_CRATE)
    {
        let mut named = BTreeSet::new();
        for (_, id) in deps.get(&standard.id).into_iter().flatten() {
            let package = packages[id];
            if package.id != core.id
                && reaches_core(&package.id)
                && named.insert(package.name.to_string())
            {
                module_ids.insert(package.id.clone());
                modules.push(ResolvedModule {
                    name: package.name.to_string(),
                    version: package.version.to_string(),
                    source: source_of(package, ws),
                });
            }
        }
    }
    Ok(Resolved {
        modules,
        module_ids,
        host_id: root.id.clone(),
        core_version: core.version.to_string(),
        packages: metadata.packages.len(),
    })
}
