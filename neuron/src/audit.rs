//! Auditing a window from public data alone (PROTOCOL.md §1 "Auditor"): for every uid with a
//! commitment naming the window, fetch the object from the uid's bucket (read credentials are on
//! chain) and check that its hash matches the commitment, the commitment was included within the
//! put window, the signature verifies for the uid's hotkey, and the payload decodes for the model.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chain::client::Client;
use compression::Manifest;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::storage::{CommitProblem, Endpoint, GatherOptions, Gatherer, PeerBook, WindowTiming, WindowView, S3};

/// One uid's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub uid: u16,
    pub hotkey: String,
    /// Block the window's hash was committed in, if it was.
    pub commit_block: Option<u64>,
    /// Size of the verified object.
    pub bytes: Option<usize>,
    /// `None` when every check passed; otherwise why not.
    pub problem: Option<String>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Audits `window` of subnet `netuid`: every uid that committed a hash for the window, in time or
/// not (or every uid with a commitment, with `all_uids`).
pub async fn audit_window(
    chain: &Client,
    endpoint: Endpoint,
    netuid: u16,
    window: u64,
    timing: WindowTiming,
    manifest: Arc<Manifest>,
    all_uids: bool,
) -> Result<Vec<Verdict>> {
    // Metagraph and commitments at one block.
    let book = PeerBook::read(chain, netuid).await?;
    let view = WindowView::read(chain, netuid, window, timing).await?;
    let tried = |uid: u16| match view.get(uid) {
        Ok(_) => true,
        Err(p) => matches!(p, CommitProblem::Early { .. } | CommitProblem::Late { .. }),
    };
    let uids: Vec<u16> = book.peers.values().filter(|p| all_uids || tried(p.uid)).map(|p| p.uid).collect();
    let gatherer = Gatherer::new(S3::default(), endpoint);
    let deadline = Instant::now() + Duration::from_secs(120);
    let got = gatherer.gather(netuid, &view, &uids, &manifest, deadline, &GatherOptions::default()).await;
    let mut verdicts: Vec<Verdict> = got
        .accepted
        .iter()
        .map(|a| Verdict {
            uid: a.uid,
            hotkey: a.hotkey.ss58(),
            commit_block: Some(a.commit_block),
            bytes: Some(a.size),
            problem: None,
        })
        .collect();
    for (uid, why) in &got.rejected {
        let peer = book.get(*uid);
        verdicts.push(Verdict {
            uid: *uid,
            hotkey: peer.map(|p| p.hotkey.ss58()).unwrap_or_default(),
            commit_block: view.get(*uid).ok().map(|c| c.block),
            bytes: None,
            problem: Some(why.to_string()),
        });
    }
    verdicts.sort_by_key(|v| v.uid);
    Ok(verdicts)
}
