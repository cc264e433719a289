//! Where a new namespace runs: the placement rule, without I/O.
//!
//! A namespace goes to a cell of its region that is healthy, is not in ring 0 (ring 0 takes
//! synthetic canary traffic only and is the first to receive every release), and has room.
//! Among those the least loaded wins; ties go to the lowest ring, then the smallest id, so the
//! choice is deterministic and a retried placement picks the same cell.

use std::cmp::Reverse;

/// What placement needs to know about a cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellCandidate {
    pub id: String,
    pub region: String,
    pub ring: u32,
    pub healthy: bool,
    /// Namespaces placed on it (desired runtimes), not counting the one being placed.
    pub namespaces: u32,
    /// How many namespaces it may hold.
    pub capacity: u32,
}

/// Why no cell could take the namespace; the message is for the tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("region {0} has no cells")]
    NoCells(String),
    #[error("region {0} has no healthy cell that takes namespaces (ring 0 takes canaries only)")]
    NoHealthyCell(String),
    #[error("every cell of region {0} is full")]
    Full(String),
}

/// The cell a new namespace of `region` should run on.
pub fn place<'a>(
    region: &str,
    cells: &'a [CellCandidate],
) -> Result<&'a CellCandidate, PlacementError> {
    let in_region: Vec<&CellCandidate> = cells.iter().filter(|c| c.region == region).collect();
    if in_region.is_empty() {
        return Err(PlacementError::NoCells(region.into()));
    }
    let eligible: Vec<&CellCandidate> = in_region
        .into_iter()
        .filter(|c| c.healthy && c.ring > 0)
        .collect();
    if eligible.is_empty() {
        return Err(PlacementError::NoHealthyCell(region.into()));
    }
    eligible
        .into_iter()
        .filter(|c| c.namespaces < c.capacity)
        // Most free room first (as a share of capacity, so big and small cells fill evenly).
        .max_by_key(|c| {
            (
                Reverse(u64::from(c.namespaces) * 1_000_000 / u64::from(c.capacity.max(1))),
                Reverse(c.ring),
                Reverse(c.id.clone()),
            )
        })
        .ok_or_else(|| PlacementError::Full(region.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(id: &str, ring: u32, healthy: bool, namespaces: u32, capacity: u32) -> CellCandidate {
        CellCandidate {
            id: id.into(),
            region: "local-east".into(),
            ring,
            healthy,
            namespaces,
            capacity,
        }
    }

    #[test]
    fn ring_zero_and_unhealthy_cells_never_take_namespaces() {
        let cells = [cell("c0", 0, true, 0, 10), cell("c1", 1, false, 0, 10)];
        assert_eq!(
            place("local-east", &cells),
            Err(PlacementError::NoHealthyCell("local-east".into()))
        );
        assert_eq!(
            place("local-west", &cells),
            Err(PlacementError::NoCells("local-west".into()))
        );
    }

    #[test]
    fn the_least_loaded_cell_wins_and_ties_are_deterministic() {
        let cells = [
            cell("c3", 2, true, 2, 10),
            cell("c2", 1, true, 1, 10),
            cell("c1", 1, true, 1, 10),
            cell("c0", 0, true, 0, 10),
        ];
        assert_eq!(place("local-east", &cells).unwrap().id, "c1");
        // Load is a share of capacity: 2 of 20 beats 1 of 5.
        let cells = [cell("small", 1, true, 1, 5), cell("big", 1, true, 2, 20)];
        assert_eq!(place("local-east", &cells).unwrap().id, "big");
        // Equal load: the lower ring, then the smaller id.
        let cells = [
            cell("b", 2, true, 0, 10),
            cell("z", 1, true, 0, 10),
            cell("a", 1, true, 0, 10),
        ];
        assert_eq!(place("local-east", &cells).unwrap().id, "a");
    }

    #[test]
    fn full_cells_are_skipped_and_a_full_region_says_so() {
        let cells = [cell("c1", 1, true, 10, 10), cell("c2", 1, true, 9, 10)];
        assert_eq!(place("local-east", &cells).unwrap().id, "c2");
        let cells = [cell("c1", 1, true, 10, 10)];
        assert_eq!(
            place("local-east", &cells),
            Err(PlacementError::Full("local-east".into()))
        );
    }
}
