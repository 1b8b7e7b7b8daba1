//! `status.jsonl` in a validator's state folder: one line per processed window, what the local
//! network's live view, its report and the tests read.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use weights::PenaltyEvent;

/// What the validator did in a window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowStatus {
    pub window: u64,
    pub block: u64,
    pub global_step: u64,
    /// Loss on this window's random batches after the outer step.
    pub loss: Option<f64>,
    pub gathered: Vec<u16>,
    pub rejected: Vec<(u16, String)>,
    pub evaluated: Vec<u16>,
    /// Final scores after the window.
    pub scores: Vec<(u16, f64)>,
    /// The weight vector (share of 1).
    pub weights: Vec<(u16, f64)>,
    /// Block at which weights were set on chain, when they were.
    pub weights_block: Option<u64>,
    /// Rules applied this window.
    pub events: Vec<WindowEvent>,
    pub leader: bool,
}

/// A rule applied in a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowEvent {
    /// One of the Gauntlet's rules.
    Gauntlet(PenaltyEvent),
    /// The validator's own rule: an update more than `limit` times the window's median norm is
    /// invalid.
    OversizedUpdate { uid: u16, ratio: f64, limit: f64 },
}

/// The `status.jsonl` a validator with state folder `state_dir` appends to.
pub fn status_file(state_dir: &Path) -> PathBuf {
    state_dir.join("status.jsonl")
}

/// The windows a validator has recorded in its `status.jsonl`, oldest first: every line that
/// parses (a line still being appended does not, and is read next time). Empty while the file
/// does not exist.
pub fn read_statuses(state_dir: &Path) -> Vec<WindowStatus> {
    let Ok(text) = std::fs::read_to_string(status_file(state_dir)) else { return Vec::new() };
    text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

/// Appends one line to `status.jsonl`.
pub fn append_status(state_dir: &Path, status: &WindowStatus) -> Result<()> {
    use std::io::Write;
    let mut line = serde_json::to_vec(status)?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(status_file(state_dir))?;
    f.write_all(&line)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_a_partial_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let status = WindowStatus {
            window: 4,
            events: vec![WindowEvent::OversizedUpdate { uid: 3, ratio: 12.5, limit: 10.0 }],
            ..WindowStatus::default()
        };
        append_status(dir.path(), &status).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(status_file(dir.path()))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"window\": 5, \"blo"))
            .unwrap();
        assert_eq!(read_statuses(dir.path()), vec![status]);
    }
}
