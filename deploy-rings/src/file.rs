//! The ring definitions file (TOML): which cells form each ring, how a ring is cut into batches,
//! how long each batch bakes and which health gates it must pass.
//!
//! The file is read strictly (unknown keys are errors) and then validated as a whole, so a bad
//! file is refused before any rollout starts, with a message that names the ring and the key.
//! The result is typed: durations are `Duration`s, batches and selectors are enums, and every
//! ring carries its gates with the defaults already applied. `README.md` documents the format.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration;
use crate::plan::CellRef;

/// The definitions shipped for the local development setup (`deploy-rings/rings.toml`).
pub const DEV_RINGS_TOML: &str = include_str!("../rings.toml");

/// Longest bake or ring bake the file accepts: longer is almost certainly a typo, and a rollout
/// that waits a month on one step is better split into rings with approval.
pub const MAX_BAKE: Duration = Duration::from_secs(30 * 86_400);

/// Why a rings file was refused. Every message says where: the ring (by name and position), the
/// key, or the line of a TOML error.
#[derive(Debug, thiserror::Error)]
pub enum RingsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An error in the file at `path` (wraps the others when reading with `from_path`).
    #[error("{}: {source}", path.display())]
    InFile {
        path: PathBuf,
        source: Box<RingsError>,
    },
    /// Not TOML, an unknown key, or a value of the wrong type.
    #[error("{}{message}", location(*.line, *.column))]
    Toml {
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    #[error("the file defines no rings")]
    NoRings,
    #[error("duplicate ring name {0:?}")]
    DuplicateName(String),
    /// Two rings select the same ring number, so some cells would belong to both.
    #[error("ring {first:?} and ring {second:?} both select ring {ring}")]
    Overlap {
        first: String,
        second: String,
        ring: u32,
    },
    /// A value that parsed but breaks a rule; `at` is `defaults`, `ring #3` or `ring "x" (#3)`.
    #[error("{at}: {message}")]
    Invalid { at: String, message: String },
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("line {line}, column {column}: "),
        (Some(line), None) => format!("line {line}: "),
        _ => String::new(),
    }
}

/// A validated rings file: at least one ring, unique names, no two rings selecting the same ring
/// number, rings selected by number listed lowest first.
#[derive(Debug, Clone, PartialEq)]
pub struct RingsFile {
    rings: Vec<Ring>,
}

/// One ring, with the file's defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Ring {
    pub name: String,
    pub cells: CellSelector,
    pub batch: Batch,
    /// Wait after each batch before its gates are evaluated.
    pub bake: Duration,
    /// Wait after the ring's last batch passed, before the next ring starts.
    pub bake_after_ring: Duration,
    /// The ring's first batch waits for an explicit approval.
    pub approval: bool,
    pub gates: Gates,
}

/// How many of a ring's cells go into one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// At most this many cells per batch (at least 1).
    Count(u32),
    /// This percentage of the ring's cells per batch, rounded up (1 to 100).
    Percent(u8),
}

impl Batch {
    /// Cells per batch for a ring of `ring_cells` cells; at least 1.
    pub fn size(self, ring_cells: usize) -> usize {
        let size = match self {
            Batch::Count(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Batch::Percent(p) => (ring_cells * usize::from(p)).div_ceil(100),
        };
        size.max(1)
    }
}

/// Which cells belong to a ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellSelector {
    /// Cells of exactly this ring number.
    Ring(u32),
    /// Cells of this ring number or higher.
    RingAtLeast(u32),
    /// Cells carrying all of these labels with these values.
    Labels(BTreeMap<String, String>),
}

impl CellSelector {
    pub fn matches(&self, cell: &CellRef) -> bool {
        match self {
            CellSelector::Ring(ring) => cell.ring == *ring,
            CellSelector::RingAtLeast(ring) => cell.ring >= *ring,
            CellSelector::Labels(labels) => {
                labels.iter().all(|(k, v)| cell.labels.get(k) == Some(v))
            }
        }
    }

    /// The ring numbers selected; `None` for label selectors, whose cells are only known when
    /// planning.
    fn ring_range(&self) -> Option<RingRange> {
        match self {
            CellSelector::Ring(ring) => Some((*ring, Some(*ring))),
            CellSelector::RingAtLeast(ring) => Some((*ring, None)),
            CellSelector::Labels(_) => None,
        }
    }
}

/// Lowest and highest ring number a selector selects (`None`: no upper bound).
type RingRange = (u32, Option<u32>);

/// The health gates a batch must pass after its bake (see `gates::evaluate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gates {
    /// Every runtime of the batch's cells reports healthy.
    pub runtime_healthy: bool,
    /// Lowest canary success rate (0–1) on cells that run a canary.
    pub canary_success_rate_min: f64,
    /// Highest share of failed requests (0–1) per cell during the bake.
    pub runtime_error_rate_max: f64,
    /// Fewest requests the whole batch must have served during the bake for the error-rate gate
    /// to mean anything; 0 turns the check off.
    pub min_requests: u64,
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            runtime_healthy: true,
            canary_success_rate_min: 0.99,
            runtime_error_rate_max: 0.01,
            min_requests: 0,
        }
    }
}

/// Built-in values for keys that neither a ring nor `[defaults]` sets.
const DEFAULT_BATCH: Batch = Batch::Count(1);
const DEFAULT_BAKE: Duration = Duration::from_secs(2 * 60);
const DEFAULT_BAKE_AFTER_RING: Duration = Duration::from_secs(5 * 60);

impl RingsFile {
    /// Parses and validates a rings file.
    pub fn parse(text: &str) -> Result<RingsFile, RingsError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        let defaults = resolve_defaults(raw.defaults).map_err(|message| RingsError::Invalid {
            at: "defaults".into(),
            message,
        })?;
        if raw.ring.is_empty() {
            return Err(RingsError::NoRings);
        }
        let mut rings: Vec<Ring> = Vec::with_capacity(raw.ring.len());
        for (i, raw_ring) in raw.ring.into_iter().enumerate() {
            let ring = resolve_ring(i, raw_ring, &defaults)?;
            if rings.iter().any(|r| r.name == ring.name) {
                return Err(RingsError::DuplicateName(ring.name));
            }
            rings.push(ring);
        }
        check_ring_numbers(&rings)?;
        Ok(RingsFile { rings })
    }

    /// Reads, parses and validates the rings file at `path`; errors name the file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<RingsFile, RingsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| RingsError::Read {
            path: path.into(),
            source,
        })?;
        RingsFile::parse(&text).map_err(|e| RingsError::InFile {
            path: path.into(),
            source: Box::new(e),
        })
    }

    /// The rings in rollout order (file order).
    pub fn rings(&self) -> &[Ring] {
        &self.rings
    }
}

/// `ring #3` before the name is known, `ring "early" (#3)` after.
fn ring_label(index: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("ring {name:?} (#{})", index + 1),
        None => format!("ring #{}", index + 1),
    }
}

struct Defaults {
    batch: Batch,
    bake: Duration,
    bake_after_ring: Duration,
    approval: bool,
    gates: Gates,
}

fn resolve_defaults(raw: RawDefaults) -> Result<Defaults, String> {
    Ok(Defaults {
        batch: raw
            .batch
            .as_ref()
            .map(batch)
            .transpose()?
            .unwrap_or(DEFAULT_BATCH),
        bake: raw
            .bake
            .as_deref()
            .map(|t| bake("bake", t))
            .transpose()?
            .unwrap_or(DEFAULT_BAKE),
        bake_after_ring: raw
            .bake_after_ring
            .as_deref()
            .map(|t| bake("bake_after_ring", t))
            .transpose()?
            .unwrap_or(DEFAULT_BAKE_AFTER_RING),
        approval: raw.approval.unwrap_or(false),
        gates: gates(&raw.gates, &Gates::default())?,
    })
}

fn resolve_ring(index: usize, raw: RawRing, defaults: &Defaults) -> Result<Ring, RingsError> {
    let invalid = |name: Option<&str>, message: String| RingsError::Invalid {
        at: ring_label(index, name),
        message,
    };
    let name = raw
        .name
        .ok_or_else(|| invalid(None, "missing name".into()))?;
    if let Err(e) = tessera_domain::validate::dns_label("name", &name, 1) {
        return Err(invalid(None, format!("name {name:?} {}", e.message)));
    }
    let at = |message: String| invalid(Some(&name), message);
    let cells = match raw.cells {
        None => return Err(at("missing cells (e.g. cells = { ring = 1 })".into())),
        Some(raw) => selector(raw).map_err(at)?,
    };
    let batch = match &raw.batch {
        Some(value) => batch(value).map_err(at)?,
        None => defaults.batch,
    };
    let bake_of = |key: &str, text: Option<&str>, default: Duration| {
        text.map_or(Ok(default), |t| bake(key, t)).map_err(at)
    };
    Ok(Ring {
        cells,
        batch,
        bake: bake_of("bake", raw.bake.as_deref(), defaults.bake)?,
        bake_after_ring: bake_of(
            "bake_after_ring",
            raw.bake_after_ring.as_deref(),
            defaults.bake_after_ring,
        )?,
        approval: raw.approval.unwrap_or(defaults.approval),
        gates: gates(&raw.gates, &defaults.gates).map_err(at)?,
        name,
    })
}

fn selector(raw: RawSelector) -> Result<CellSelector, String> {
    let selector = match (raw.ring, raw.ring_at_least, raw.labels) {
        (Some(ring), None, None) => CellSelector::Ring(ring),
        (None, Some(ring), None) => CellSelector::RingAtLeast(ring),
        (None, None, Some(labels)) => {
            if labels.is_empty() {
                return Err("cells.labels must name at least one label".into());
            }
            for key in labels.keys() {
                if let Err(e) = tessera_domain::validate::dns_label("labels", key, 1) {
                    return Err(format!("cells.labels key {key:?} {}", e.message));
                }
            }
            CellSelector::Labels(labels)
        }
        _ => {
            return Err(
                "cells must have exactly one of ring, ring_at_least or labels \
                 (e.g. cells = { ring = 1 })"
                    .into(),
            );
        }
    };
    Ok(selector)
}

fn batch(value: &toml::Value) -> Result<Batch, String> {
    match value {
        toml::Value::Integer(n) if *n < 1 => Err(format!("batch {n} must be at least 1")),
        toml::Value::Integer(n) => u32::try_from(*n)
            .map(Batch::Count)
            .map_err(|_| format!("batch {n} is too large")),
        toml::Value::String(text) => {
            let digits = text
                .strip_suffix('%')
                .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
            let Some(digits) = digits else {
                return Err(format!(
                    "batch {text:?} must be a count like 2 or a percentage like \"25%\""
                ));
            };
            match digits.parse::<u8>() {
                Ok(p @ 1..=100) => Ok(Batch::Percent(p)),
                _ => Err(format!("batch {text:?} must be between 1% and 100%")),
            }
        }
        other => Err(format!(
            "batch {other} must be a count like 2 or a percentage like \"25%\""
        )),
    }
}

fn bake(key: &str, text: &str) -> Result<Duration, String> {
    let duration = duration::parse(text)
        .ok_or_else(|| format!("{key} {text:?} is not a duration (use e.g. 30s, 5m, 1h30m)"))?;
    if duration > MAX_BAKE {
        return Err(format!(
            "{key} {text:?} is longer than {}",
            duration::format(MAX_BAKE)
        ));
    }
    Ok(duration)
}

/// `raw` over `base`, key by key.
fn gates(raw: &RawGates, base: &Gates) -> Result<Gates, String> {
    let rate = |key: &str, value: Option<f64>, default: f64| match value {
        None => Ok(default),
        Some(v) if (0.0..=1.0).contains(&v) => Ok(v),
        Some(v) => Err(format!("gates.{key} must be between 0 and 1, got {v}")),
    };
    Ok(Gates {
        runtime_healthy: raw.runtime_healthy.unwrap_or(base.runtime_healthy),
        canary_success_rate_min: rate(
            "canary_success_rate_min",
            raw.canary_success_rate_min,
            base.canary_success_rate_min,
        )?,
        runtime_error_rate_max: rate(
            "runtime_error_rate_max",
            raw.runtime_error_rate_max,
            base.runtime_error_rate_max,
        )?,
        min_requests: raw.min_requests.unwrap_or(base.min_requests),
    })
}

/// Rings selected by ring number must not share a number (label selectors are checked per cell
/// when planning) and must come lowest first, so ring 0 always goes before ring 1.
fn check_ring_numbers(rings: &[Ring]) -> Result<(), RingsError> {
    let numbered: Vec<(usize, &Ring, RingRange)> = rings
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.cells.ring_range().map(|range| (i, r, range)))
        .collect();
    for (n, (_, first, (lo1, hi1))) in numbered.iter().enumerate() {
        for (_, second, (lo2, hi2)) in &numbered[n + 1..] {
            let lo = (*lo1).max(*lo2);
            let hi = match (hi1, hi2) {
                (Some(a), Some(b)) => Some((*a).min(*b)),
                (Some(h), None) | (None, Some(h)) => Some(*h),
                (None, None) => None,
            };
            if hi.is_none_or(|hi| lo <= hi) {
                return Err(RingsError::Overlap {
                    first: first.name.clone(),
                    second: second.name.clone(),
                    ring: lo,
                });
            }
        }
    }
    for pair in numbered.windows(2) {
        let (i, earlier, (earlier_lo, _)) = pair[0];
        let (j, later, (later_lo, _)) = pair[1];
        if later_lo < earlier_lo {
            return Err(RingsError::Invalid {
                at: ring_label(j, Some(&later.name)),
                message: format!(
                    "selects ring {later_lo}, lower than ring {earlier_lo} of {} listed before it: \
                     rings roll out in file order, so list lower ring numbers first",
                    ring_label(i, Some(&earlier.name))
                ),
            });
        }
    }
    Ok(())
}

fn toml_error(text: &str, e: &toml::de::Error) -> RingsError {
    let (line, column) = match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    RingsError::Toml {
        line,
        column,
        message: e.message().trim_end().to_string(),
    }
}

// The file as written: every key optional, so the validation pass can name what is missing.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    ring: Vec<RawRing>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    batch: Option<toml::Value>,
    bake: Option<String>,
    bake_after_ring: Option<String>,
    approval: Option<bool>,
    #[serde(default)]
    gates: RawGates,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRing {
    name: Option<String>,
    cells: Option<RawSelector>,
    batch: Option<toml::Value>,
    bake: Option<String>,
    bake_after_ring: Option<String>,
    approval: Option<bool>,
    #[serde(default)]
    gates: RawGates,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelector {
    ring: Option<u32>,
    ring_at_least: Option<u32>,
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGates {
    runtime_healthy: Option<bool>,
    canary_success_rate_min: Option<f64>,
    runtime_error_rate_max: Option<f64>,
    min_requests: Option<u64>,
}

#[cfg(test)]
mod tests;
