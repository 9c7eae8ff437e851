//! The catalog: every device, link, model, weight format and runtime the planner
//! knows, built from TOML texts. [`CatalogSources::read_dir`] reads them from a
//! catalog root (`hardware/`, `hardware/links/`, `models/`, `runtimes/`, `formats/`):
//! the one place the library touches the file system, so that the binaries, the tests
//! and the benchmarks read a catalog the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{nearest_ids, InputError};
use crate::formats::{formats_from_toml, WeightFormat};
use crate::hardware::{Device, Link};
use crate::model::Model;
use crate::runtime::{Runtime, RuntimeFile};

/// One catalog file's text: `id` is its file stem, `file` its display name.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub id: String,
    pub file: String,
    pub text: String,
}

/// All catalog texts, grouped by kind.
#[derive(Debug, Clone, Default)]
pub struct CatalogSources {
    pub devices: Vec<SourceText>,
    pub links: Vec<SourceText>,
    pub models: Vec<SourceText>,
    pub runtimes: Vec<SourceText>,
    /// The weight-format table (one file).
    pub formats: Vec<SourceText>,
}

/// A catalog file or directory that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogReadError {
    #[error("cannot read catalog directory {}", .path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}", .path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CatalogSources {
    /// Every `*.toml` file of the catalog directories under `root`, each directory
    /// sorted by file name; a file's id is its stem and its display name
    /// `<dir>/<file>`.
    pub fn read_dir(root: &Path) -> Result<CatalogSources, CatalogReadError> {
        Ok(CatalogSources {
            devices: read_tomls(root, "hardware")?,
            links: read_tomls(root, "hardware/links")?,
            models: read_tomls(root, "models")?,
            runtimes: read_tomls(root, "runtimes")?,
            formats: read_tomls(root, "formats")?,
        })
    }
}

fn read_tomls(root: &Path, sub: &str) -> Result<Vec<SourceText>, CatalogReadError> {
    let dir = root.join(sub);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|source| CatalogReadError::Dir {
            path: dir.clone(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|source| CatalogReadError::File {
                path: path.clone(),
                source,
            })?;
            Ok(SourceText {
                id: path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                file: format!(
                    "{sub}/{}",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ),
                text,
            })
        })
        .collect()
}

/// The catalog root a program uses: `flag` (`--catalog DIR`), else
/// `$PLANNER_CATALOG`, else the current directory when it holds `hardware/` and
/// `models/`, else `checkout` (the source tree the program was built from).
pub fn catalog_root(flag: Option<&Path>, checkout: &Path) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os("PLANNER_CATALOG") {
        return PathBuf::from(dir);
    }
    if let Ok(cwd) = std::env::current_dir() {
        if cwd.join("hardware").is_dir() && cwd.join("models").is_dir() {
            return cwd;
        }
    }
    checkout.to_path_buf()
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub devices: BTreeMap<String, Device>,
    pub links: BTreeMap<String, Link>,
    pub models: BTreeMap<String, Model>,
    pub runtimes: BTreeMap<String, Runtime>,
    pub formats: BTreeMap<String, WeightFormat>,
}

impl Catalog {
    pub fn from_sources(sources: &CatalogSources) -> Result<Catalog, InputError> {
        let mut catalog = Catalog::default();
        for s in &sources.devices {
            catalog.devices.insert(
                s.id.clone(),
                Device::from_toml(&s.id, &s.file, &s.text).map_err(|e| e.located_in(&s.text))?,
            );
        }
        for s in &sources.links {
            catalog.links.insert(
                s.id.clone(),
                Link::from_toml(&s.id, &s.file, &s.text).map_err(|e| e.located_in(&s.text))?,
            );
        }
        for s in &sources.models {
            catalog.models.insert(
                s.id.clone(),
                Model::from_toml(&s.id, &s.file, &s.text).map_err(|e| e.located_in(&s.text))?,
            );
        }
        for s in &sources.runtimes {
            catalog.runtimes.insert(
                s.id.clone(),
                Runtime::from_toml(&s.id, &s.file, &s.text).map_err(|e| e.located_in(&s.text))?,
            );
        }
        for s in &sources.formats {
            for format in formats_from_toml(&s.file, &s.text).map_err(|e| e.located_in(&s.text))? {
                catalog.formats.insert(format.id.clone(), format);
            }
        }
        for s in &sources.devices {
            catalog
                .check_device_links(&catalog.devices[&s.id], &s.file)
                .map_err(|e| e.located_in(&s.text))?;
        }
        for s in &sources.runtimes {
            catalog
                .check_runtime_formats(&catalog.runtimes[&s.id], &s.file)
                .map_err(|e| e.located_in(&s.text))?;
        }
        Ok(catalog)
    }

    /// The links a device has ports for are catalog links: a misspelt id would
    /// silently keep `planner plan` from ever joining those nodes by that link.
    fn check_device_links(&self, device: &Device, file: &str) -> Result<(), InputError> {
        match device
            .links
            .iter()
            .find(|id| !self.has(CatalogKind::Link, id))
        {
            Some(id) => Err(InputError::unknown_id(
                file,
                "connectivity.links",
                CatalogKind::Link.noun(),
                id,
                self.suggestions(CatalogKind::Link, id),
            )),
            None => Ok(()),
        }
    }

    /// A runtime's `weight_formats` and `native_formats` name catalog formats, and
    /// what it multiplies natively it also loads: a misspelt id would otherwise
    /// silently let the stack load, or run without checks, a format it does not.
    fn check_runtime_formats(&self, runtime: &Runtime, file: &str) -> Result<(), InputError> {
        let RuntimeFile {
            weight_formats,
            native_formats,
            ..
        } = &runtime.file;
        let loaded = weight_formats.iter().flatten();
        for (key, id) in loaded
            .map(|id| ("weight_formats", id))
            .chain(native_formats.iter().map(|id| ("native_formats", id)))
        {
            if !self.formats.contains_key(id) {
                return Err(InputError::invalid(
                    file,
                    key,
                    id,
                    format!(
                        "expected weight format ids of formats/ ({})",
                        self.formats.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        if let Some(loads) = weight_formats {
            if let Some(id) = native_formats.iter().find(|id| !loads.contains(id)) {
                return Err(InputError::invalid(
                    file,
                    "native_formats",
                    id,
                    "expected only formats that weight_formats also lists",
                ));
            }
        }
        Ok(())
    }

    /// Ids of `kind` nearest to `wanted`, for "did you mean" messages.
    /// Whether the catalog has an entry `id` of `kind`.
    pub fn has(&self, kind: CatalogKind, id: &str) -> bool {
        match kind {
            CatalogKind::Device => self.devices.contains_key(id),
            CatalogKind::Link => self.links.contains_key(id),
            CatalogKind::Model => self.models.contains_key(id),
            CatalogKind::Runtime => self.runtimes.contains_key(id),
            CatalogKind::Format => self.formats.contains_key(id),
        }
    }

    pub fn suggestions(&self, kind: CatalogKind, wanted: &str) -> Vec<String> {
        match kind {
            CatalogKind::Device => nearest_ids(wanted, self.devices.keys()),
            CatalogKind::Link => nearest_ids(wanted, self.links.keys()),
            CatalogKind::Model => nearest_ids(wanted, self.models.keys()),
            CatalogKind::Runtime => nearest_ids(wanted, self.runtimes.keys()),
            CatalogKind::Format => nearest_ids(wanted, self.formats.keys()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogKind {
    Device,
    Link,
    Model,
    Runtime,
    Format,
}

impl CatalogKind {
    pub fn noun(self) -> &'static str {
        match self {
            CatalogKind::Device => "device",
            CatalogKind::Link => "link",
            CatalogKind::Model => "model",
            CatalogKind::Runtime => "runtime",
            CatalogKind::Format => "weight format",
        }
    }
}
