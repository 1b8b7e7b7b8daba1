//! Progress bars for the long steps of a window (training, evaluation), drawn on stderr only
//! when it is a terminal: logs piped to a file or a collector stay clean lines.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` steps labelled `what`; hidden unless stderr is a terminal.
pub fn bar(len: u64, what: impl Into<String>) -> ProgressBar {
    let target =
        if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    if let Ok(style) = ProgressStyle::with_template("{msg:>24} {bar:30} {pos}/{len}  [{elapsed_precise}<{eta_precise}]")
    {
        bar.set_style(style);
    }
    bar.set_message(what.into());
    bar
}
