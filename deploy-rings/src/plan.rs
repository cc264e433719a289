//! The rollout plan: which cells go in which batch of which ring, decided once from the rings
//! file and the cells that can take a release, before the rollout starts.
//!
//! The plan is deterministic (the same file and cells give the same plan) and is persisted with
//! the rollout: a running rollout never re-plans, so a cell added later is not picked up by it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::file::{Gates, RingsFile};

/// What the planner needs to know about a cell. The caller passes only cells that can take a
/// release (e.g. not draining or being decommissioned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellRef {
    pub id: String,
    pub region: String,
    pub ring: u32,
    pub labels: BTreeMap<String, String>,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("cell {cell:?} is selected by both ring {first:?} and ring {second:?}")]
    Overlap {
        cell: String,
        first: String,
        second: String,
    },
    /// Two rollouts never touch the same cell.
    #[error("cell {cell:?} is already in rollout {rollout:?}")]
    CellBusy { cell: String, rollout: String },
    #[error("cell {0:?} is listed twice")]
    DuplicateCell(String),
}

/// Rings in rollout order, each cut into batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub rings: Vec<PlannedRing>,
    /// Cells that no ring selects, by id: the rollout does not touch them.
    pub unmatched: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRing {
    pub name: String,
    /// Position in the plan (and the file), from 0.
    pub index: usize,
    pub approval: bool,
    #[serde(with = "crate::duration::text")]
    pub bake_after_ring: Duration,
    pub gates: Gates,
    /// Empty when the ring selects no cell; the ring stays in the plan so it is shown, and the
    /// rollout passes over it (no approval, no bake).
    pub batches: Vec<PlannedBatch>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedBatch {
    /// Position in its ring, from 0.
    pub index: usize,
    /// Cell ids, sorted.
    pub cells: Vec<String>,
    #[serde(with = "crate::duration::text")]
    pub bake: Duration,
}

/// Plans a rollout of `file` over `cells`. `busy` maps cell ids to the id of another active
/// rollout on that cell; planning fails if the rollout would touch one of them.
///
/// Each ring takes the cells its selector matches, sorted by id, cut into batches of the ring's
/// batch size (a percentage is of the ring's cell count, rounded up, at least 1 cell).
pub fn plan(
    file: &RingsFile,
    cells: &[CellRef],
    busy: &BTreeMap<String, String>,
) -> Result<Plan, PlanError> {
    let mut sorted: Vec<&CellRef> = cells.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(pair) = sorted.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(PlanError::DuplicateCell(pair[0].id.clone()));
    }

    let rings = file.rings();
    let mut members: Vec<Vec<String>> = vec![Vec::new(); rings.len()];
    let mut unmatched = Vec::new();
    for cell in sorted {
        let mut matching = rings
            .iter()
            .enumerate()
            .filter(|(_, r)| r.cells.matches(cell));
        match (matching.next(), matching.next()) {
            (None, _) => unmatched.push(cell.id.clone()),
            (Some((i, _)), None) => members[i].push(cell.id.clone()),
            (Some((_, first)), Some((_, second))) => {
                return Err(PlanError::Overlap {
                    cell: cell.id.clone(),
                    first: first.name.clone(),
                    second: second.name.clone(),
                });
            }
        }
    }

    for cell in members.iter().flatten() {
        if let Some(rollout) = busy.get(cell) {
            return Err(PlanError::CellBusy {
                cell: cell.clone(),
                rollout: rollout.clone(),
            });
        }
    }

    let rings = rings
        .iter()
        .zip(members)
        .enumerate()
        .map(|(index, (ring, cells))| PlannedRing {
            name: ring.name.clone(),
            index,
            approval: ring.approval,
            bake_after_ring: ring.bake_after_ring,
            gates: ring.gates.clone(),
            batches: cells
                .chunks(ring.batch.size(cells.len()))
                .enumerate()
                .map(|(index, chunk)| PlannedBatch {
                    index,
                    cells: chunk.to_vec(),
                    bake: ring.bake,
                })
                .collect(),
        })
        .collect();
    Ok(Plan { rings, unmatched })
}

impl Plan {
    /// Every batch in rollout order, with the index of its ring.
    pub fn batches(&self) -> impl Iterator<Item = (usize, &PlannedBatch)> {
        self.rings
            .iter()
            .flat_map(|r| r.batches.iter().map(move |b| (r.index, b)))
    }

    /// Cells the rollout touches (not counting `unmatched`).
    pub fn cell_count(&self) -> usize {
        self.batches().map(|(_, b)| b.cells.len()).sum()
    }

    /// Ids of the cells the rollout touches.
    pub fn cell_ids(&self) -> BTreeSet<&str> {
        self.batches()
            .flat_map(|(_, b)| b.cells.iter().map(String::as_str))
            .collect()
    }

    pub fn ring_index(&self, name: &str) -> Option<usize> {
        self.rings.iter().position(|r| r.name == name)
    }

    pub fn batch(&self, ring: usize, batch: usize) -> Option<&PlannedBatch> {
        self.rings.get(ring)?.batches.get(batch)
    }

    /// The first batch at or after `(ring, batch)` in rollout order, passing over rings without
    /// batches; `None` when there is none.
    pub(crate) fn first_batch_from(&self, ring: usize, batch: usize) -> Option<(usize, usize)> {
        if self.batch(ring, batch).is_some() {
            return Some((ring, batch));
        }
        self.rings
            .iter()
            .skip(ring + 1)
            .find(|r| !r.batches.is_empty())
            .map(|r| (r.index, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(id: &str, ring: u32, labels: &[(&str, &str)]) -> CellRef {
        CellRef {
            id: id.into(),
            region: "local-east".into(),
            ring,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn rings(toml: &str) -> RingsFile {
        RingsFile::parse(toml).unwrap()
    }

    fn no_busy() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// Each ring's batches as lists of cell ids.
    fn shape(plan: &Plan) -> Vec<Vec<Vec<&str>>> {
        plan.rings
            .iter()
            .map(|r| {
                r.batches
                    .iter()
                    .map(|b| b.cells.iter().map(String::as_str).collect())
                    .collect()
            })
            .collect()
    }

    fn one_ring(batch: &str, cells: usize) -> Vec<usize> {
        let file = rings(&format!(
            "[[ring]]\nname = \"all\"\ncells = {{ ring_at_least = 0 }}\nbatch = {batch}\n"
        ));
        let cells: Vec<CellRef> = (0..cells)
            .map(|i| cell(&format!("c{i:02}"), 1, &[]))
            .collect();
        let plan = plan(&file, &cells, &no_busy()).unwrap();
        plan.rings[0]
            .batches
            .iter()
            .map(|b| b.cells.len())
            .collect()
    }

    #[test]
    fn batch_sizes() {
        let cases: &[(&str, usize, &[usize])] = &[
            ("\"50%\"", 5, &[3, 2]),
            ("\"25%\"", 1, &[1]),
            ("\"25%\"", 8, &[2, 2, 2, 2]),
            ("\"30%\"", 10, &[3, 3, 3, 1]),
            ("\"1%\"", 3, &[1, 1, 1]),
            ("\"100%\"", 4, &[4]),
            ("1", 3, &[1, 1, 1]),
            ("2", 5, &[2, 2, 1]),
            ("10", 3, &[3]),
            ("2", 0, &[]),
        ];
        for (batch, cells, sizes) in cases {
            assert_eq!(
                one_ring(batch, *cells),
                *sizes,
                "batch {batch} of {cells} cells"
            );
        }
    }

    #[test]
    fn rings_keep_file_order_and_cells_are_sorted_by_id() {
        let file = rings(
            r#"
            [[ring]]
            name = "canary"
            cells = { ring = 0 }
            [[ring]]
            name = "early"
            cells = { ring = 1 }
            batch = 2
            [[ring]]
            name = "broad"
            cells = { ring_at_least = 2 }
            batch = "50%"
            "#,
        );
        let cells = [
            cell("z-broad", 3, &[]),
            cell("b-early", 1, &[]),
            cell("a-broad", 2, &[]),
            cell("c-early", 1, &[]),
            cell("a-early", 1, &[]),
            cell("canary", 0, &[]),
        ];
        let plan = plan(&file, &cells, &no_busy()).unwrap();
        let names: Vec<&str> = plan.rings.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["canary", "early", "broad"]);
        assert_eq!(
            shape(&plan),
            vec![
                vec![vec!["canary"]],
                vec![vec!["a-early", "b-early"], vec!["c-early"]],
                vec![vec!["a-broad"], vec!["z-broad"]],
            ]
        );
        assert_eq!(plan.cell_count(), 6);
        let order: Vec<(usize, usize)> = plan.batches().map(|(r, b)| (r, b.index)).collect();
        assert_eq!(order, [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1)]);
        // The same input in another order gives the same plan.
        let mut reversed = cells.to_vec();
        reversed.reverse();
        assert_eq!(super::plan(&file, &reversed, &no_busy()).unwrap(), plan);
    }

    #[test]
    fn ring_settings_are_carried_into_the_plan() {
        let file = rings(
            r#"
            [[ring]]
            name = "gold"
            cells = { labels = { tier = "gold" } }
            bake = "10m"
            bake_after_ring = "1h"
            approval = true
            gates = { min_requests = 50 }
            "#,
        );
        let plan = plan(&file, &[cell("c1", 1, &[("tier", "gold")])], &no_busy()).unwrap();
        let ring = &plan.rings[0];
        assert!(ring.approval);
        assert_eq!(ring.bake_after_ring, Duration::from_secs(3_600));
        assert_eq!(ring.gates.min_requests, 50);
        assert_eq!(ring.batches[0].bake, Duration::from_secs(600));
    }

    #[test]
    fn label_and_range_selectors() {
        let file = rings(
            r#"
            [[ring]]
            name = "gold-east"
            cells = { labels = { tier = "gold", zone = "east" } }
            [[ring]]
            name = "high"
            cells = { ring_at_least = 3 }
            "#,
        );
        let cells = [
            cell("gold-east", 1, &[("tier", "gold"), ("zone", "east")]),
            cell("gold-west", 1, &[("tier", "gold"), ("zone", "west")]),
            cell("gold-only", 1, &[("tier", "gold")]),
            cell("ring3", 3, &[]),
            cell("ring7", 7, &[("tier", "silver")]),
            cell("ring2", 2, &[]),
        ];
        let plan = plan(&file, &cells, &no_busy()).unwrap();
        assert_eq!(
            shape(&plan),
            vec![vec![vec!["gold-east"]], vec![vec!["ring3"], vec!["ring7"]]]
        );
        assert_eq!(plan.unmatched, ["gold-only", "gold-west", "ring2"]);
        assert_eq!(plan.cell_count(), 3);
    }

    #[test]
    fn a_cell_selected_by_two_rings_is_refused() {
        let file = rings(
            r#"
            [[ring]]
            name = "early"
            cells = { ring = 1 }
            [[ring]]
            name = "gold"
            cells = { labels = { tier = "gold" } }
            "#,
        );
        let cells = [cell("c2", 1, &[("tier", "gold")]), cell("c1", 1, &[])];
        let err = plan(&file, &cells, &no_busy()).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"cell "c2" is selected by both ring "early" and ring "gold""#
        );
    }

    #[test]
    fn a_ring_without_cells_is_kept_with_no_batches() {
        let file = rings(
            r#"
            [[ring]]
            name = "canary"
            cells = { ring = 0 }
            [[ring]]
            name = "broad"
            cells = { ring_at_least = 2 }
            approval = true
            "#,
        );
        let plan = plan(&file, &[cell("c0", 0, &[])], &no_busy()).unwrap();
        assert_eq!(plan.rings.len(), 2);
        assert!(plan.rings[1].batches.is_empty());
        assert!(plan.rings[1].approval);
        assert_eq!(plan.first_batch_from(0, 1), None);
    }

    #[test]
    fn a_busy_cell_is_refused_unless_the_rollout_does_not_touch_it() {
        let file = rings("[[ring]]\nname = \"early\"\ncells = { ring = 1 }\n");
        let cells = [cell("c1", 1, &[]), cell("c2", 1, &[]), cell("c9", 9, &[])];
        let busy = BTreeMap::from([
            ("c2".to_string(), "rollout-7".to_string()),
            ("c9".to_string(), "rollout-8".to_string()),
        ]);
        assert_eq!(
            plan(&file, &cells, &busy),
            Err(PlanError::CellBusy {
                cell: "c2".into(),
                rollout: "rollout-7".into()
            })
        );
        assert_eq!(
            plan(&file, &cells, &busy).unwrap_err().to_string(),
            r#"cell "c2" is already in rollout "rollout-7""#
        );
        // c9 is busy too, but unmatched: planning without c2 succeeds.
        let plan = plan(&file, &[cells[0].clone(), cells[2].clone()], &busy).unwrap();
        assert_eq!(plan.unmatched, ["c9"]);
    }

    #[test]
    fn a_cell_listed_twice_is_refused() {
        let file = rings("[[ring]]\nname = \"early\"\ncells = { ring = 1 }\n");
        let cells = [cell("c1", 1, &[]), cell("c1", 2, &[])];
        assert_eq!(
            plan(&file, &cells, &no_busy()),
            Err(PlanError::DuplicateCell("c1".into()))
        );
    }

    #[test]
    fn the_plan_round_trips_through_json_with_readable_durations() {
        let file = rings(crate::DEV_RINGS_TOML);
        let cells = [cell("c0", 0, &[]), cell("c1", 1, &[]), cell("c2", 2, &[])];
        let plan = plan(&file, &cells, &no_busy()).unwrap();
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["rings"][0]["batches"][0]["bake"], "30s");
        assert_eq!(json["rings"][0]["bake_after_ring"], "30s");
        assert_eq!(serde_json::from_value::<Plan>(json).unwrap(), plan);
    }
}
