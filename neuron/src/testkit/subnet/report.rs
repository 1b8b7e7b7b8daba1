//! What a local network run leaves behind: `summary.json` and a static `report.html` with plots
//! of the validator's loss per window and each uid's weight per window (inline SVG, no scripts,
//! no server).

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One window as the leading validator saw it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    pub window: u64,
    /// The validator's loss on random data after the outer step.
    pub loss: Option<f64>,
    pub block: u64,
    pub accepted: Vec<u16>,
    /// `(uid, reason)` for every rejected peer.
    pub rejected: Vec<(u16, String)>,
    /// The validator's weights, `(uid, share of 1)`.
    pub weights: Vec<(u16, f64)>,
    /// On-chain incentive per uid (0..1) at the end of the window.
    pub incentive: Vec<(u16, f64)>,
}

/// One uid at the end of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UidSummary {
    pub uid: u16,
    pub hotkey: String,
    /// `miner`, `validator` or `adversary:<kind>`; `owner` for the subnet owner (the burn uid).
    pub role: String,
    /// The validator's last weight (0..1).
    pub weight: f64,
    /// On chain (0..1).
    pub incentive: f64,
    /// On chain (0..1): a validator's share for weights that agree with the consensus.
    #[serde(default)]
    pub dividends: f64,
}

/// What one validator did over the run, from its own `status.jsonl`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ValidatorRun {
    pub uid: u16,
    /// Windows it processed.
    pub windows: u64,
    /// Windows whose weights reached the chain.
    pub weights_set: u64,
    /// Windows it led (published the aggregate and checkpoints).
    pub led: u64,
    /// Its last processed window, and the outer step and loss after it.
    pub last_window: Option<u64>,
    pub global_step: u64,
    pub loss: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditSummary {
    pub ok: u64,
    pub failed: u64,
}

/// `summary.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub windows: Vec<WindowSummary>,
    /// The network's nodes: miners, validators and adversaries.
    pub uids: Vec<UidSummary>,
    /// The subnet owner's uid, which the validators' weight vector burns to.
    pub owner: Option<UidSummary>,
    pub audit: AuditSummary,
    /// Every validator's own record (`windows` above is the first validator's view).
    #[serde(default)]
    pub validators: Vec<ValidatorRun>,
    /// Why the run ended before its last window, if it did.
    pub stopped_early: Option<String>,
}

const COLORS: [&str; 10] =
    ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

/// A line chart as SVG: `series` of `(label, points)`.
fn chart(title: &str, y_label: &str, series: &[(String, Vec<(f64, f64)>)]) -> String {
    let (w, h, pad) = (640.0, 280.0, 48.0);
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return format!("<p>{title}: no data</p>");
    }
    if (x1 - x0).abs() < f64::EPSILON {
        x1 = x0 + 1.0;
    }
    if (y1 - y0).abs() < f64::EPSILON {
        y1 = y0 + 1.0;
    }
    let sx = |x: f64| pad + (x - x0) / (x1 - x0) * (w - 2.0 * pad);
    let sy = |y: f64| h - pad - (y - y0) / (y1 - y0) * (h - 2.0 * pad);
    let mut svg = format!(
        "<figure><figcaption>{title}</figcaption><svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <rect width=\"{w}\" height=\"{h}\" fill=\"white\" stroke=\"#ccc\"/>\
         <text x=\"{pad}\" y=\"{}\" font-size=\"11\">window {x0} … {x1}</text>\
         <text x=\"4\" y=\"{}\" font-size=\"11\">{y_label}: {y0:.4} … {y1:.4}</text>",
        h - 12.0,
        pad - 20.0
    );
    for (i, (label, pts)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{color}\">{label}</text>",
            w - pad + 4.0,
            pad + 14.0 * i as f64
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The HTML report.
pub fn html(summary: &Summary) -> String {
    let loss: Vec<(f64, f64)> = summary.windows.iter().filter_map(|w| w.loss.map(|l| (w.window as f64, l))).collect();
    let mut weight_series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for u in &summary.uids {
        let pts: Vec<(f64, f64)> = summary
            .windows
            .iter()
            .map(|w| (w.window as f64, w.weights.iter().find(|(uid, _)| *uid == u.uid).map_or(0.0, |(_, x)| *x)))
            .collect();
        weight_series.push((format!("uid {} ({})", u.uid, u.role), pts));
    }
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>covenant-rs localnet</title>\
         <style>body{font-family:sans-serif;max-width:900px;margin:2em auto}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th{background:#eee}</style></head><body>\
         <h1>covenant-rs local network</h1>",
    );
    out.push_str(&chart("Validator loss on random data after each outer step", "loss", &[("loss".into(), loss)]));
    out.push_str(&chart("Weight per uid (the validator's vector)", "weight", &weight_series));
    if let Some(why) = &summary.stopped_early {
        let _ = write!(out, "<p><strong>The run stopped early:</strong> {}</p>", escape(why));
    }
    out.push_str("<h2>Uids at the end</h2><table><tr><th>uid</th><th>role</th><th>weight</th><th>incentive</th><th>dividends</th><th>hotkey</th></tr>");
    for u in summary.owner.iter().chain(&summary.uids) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td></tr>",
            u.uid,
            escape(&u.role),
            u.weight,
            u.incentive,
            u.dividends,
            escape(&u.hotkey)
        );
    }
    out.push_str("</table><h2>Validators</h2><table><tr><th>uid</th><th>windows</th><th>weights set</th><th>led</th><th>last window</th><th>outer steps</th><th>loss</th></tr>");
    for v in &summary.validators {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            v.uid,
            v.windows,
            v.weights_set,
            v.led,
            v.last_window.map_or("-".into(), |w| w.to_string()),
            v.global_step,
            v.loss.map_or("-".into(), |l| format!("{l:.4}"))
        );
    }
    out.push_str(
        "</table><h2>Windows</h2><table><tr><th>window</th><th>loss</th><th>accepted</th><th>rejected</th></tr>",
    );
    for w in &summary.windows {
        let rejected: Vec<String> = w.rejected.iter().map(|(u, r)| format!("{u}: {}", escape(r))).collect();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{:?}</td><td style=\"text-align:left\">{}</td></tr>",
            w.window,
            w.loss.map_or("-".into(), |l| format!("{l:.4}")),
            w.accepted,
            rejected.join("<br>")
        );
    }
    let _ =
        write!(out, "</table><p>Audit: {} ok, {} failed.</p></body></html>", summary.audit.ok, summary.audit.failed);
    out
}

/// Writes `summary.json` and `report.html` into `dir`.
pub fn write(dir: &Path, summary: &Summary) -> anyhow::Result<()> {
    crate::fsutil::write_atomic(&dir.join("summary.json"), &serde_json::to_vec_pretty(summary)?)?;
    crate::fsutil::write_atomic(&dir.join("report.html"), html(summary).as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_has_both_plots_and_the_table() {
        let s = Summary {
            windows: vec![
                WindowSummary { window: 3, loss: Some(10.5), weights: vec![(1, 0.5), (2, 0.5)], ..Default::default() },
                WindowSummary { window: 4, loss: Some(9.0), weights: vec![(1, 0.7), (2, 0.3)], ..Default::default() },
            ],
            uids: vec![UidSummary {
                uid: 2,
                hotkey: "5G<x>".into(),
                role: "miner".into(),
                weight: 0.3,
                incentive: 0.2,
                dividends: 0.0,
            }],
            owner: None,
            audit: AuditSummary { ok: 4, failed: 0 },
            validators: vec![ValidatorRun { uid: 1, windows: 2, weights_set: 2, led: 2, ..Default::default() }],
            stopped_early: None,
        };
        let page = html(&s);
        assert_eq!(page.matches("<svg").count(), 2);
        assert!(page.contains("5G&lt;x&gt;"));
        assert!(page.contains("4 ok, 0 failed"));
        let json: Summary = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(json, s);
    }
}
