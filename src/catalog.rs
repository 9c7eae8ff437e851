//! The catalog: every device, link, model, weight format and runtime the planner
//! knows, built from TOML texts the caller has read (the library reads no files).

use std::collections::BTreeMap;

use crate::error::{nearest_ids, InputError};
use crate::formats::{formats_from_toml, WeightFormat};
use crate::hardware::{Device, Link};
use crate::model::Model;
use crate::runtime::Runtime;

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
            catalog
                .devices
                .insert(s.id.clone(), Device::from_toml(&s.id, &s.file, &s.text)?);
        }
        for s in &sources.links {
            catalog
                .links
                .insert(s.id.clone(), Link::from_toml(&s.id, &s.file, &s.text)?);
        }
        for s in &sources.models {
            catalog
                .models
                .insert(s.id.clone(), Model::from_toml(&s.id, &s.file, &s.text)?);
        }
        for s in &sources.runtimes {
            catalog
                .runtimes
                .insert(s.id.clone(), Runtime::from_toml(&s.id, &s.file, &s.text)?);
        }
        for s in &sources.formats {
            for format in formats_from_toml(&s.file, &s.text)? {
                catalog.formats.insert(format.id.clone(), format);
            }
        }
        Ok(catalog)
    }

    /// Ids of `kind` nearest to `wanted`, for "did you mean" messages.
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
