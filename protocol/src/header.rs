//! The one acceptance check of a payload's header (PROTOCOL.md §4): it must name the subnet, the
//! window, the uid and the hotkey the reader expects. The publisher checks its own payload with
//! it before committing, the gather and the catch-up replay check every payload they read. (The
//! model fingerprint is checked by the wire decoder against the reader's manifest, the signature
//! against the same hotkey.)

use crate::ids::{Hotkey, Uid, Window};

/// Who a payload is for and from: what its header says, or what a reader expects it to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadOrigin {
    pub netuid: u16,
    pub window: Window,
    pub uid: Uid,
    /// For a reader: the hotkey the chain has for `uid` (never the header's own claim).
    pub hotkey: Hotkey,
}

/// The header field that differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderField {
    Netuid,
    Window,
    Uid,
    Hotkey,
}

impl HeaderField {
    pub fn name(self) -> &'static str {
        match self {
            Self::Netuid => "netuid",
            Self::Window => "window",
            Self::Uid => "uid",
            Self::Hotkey => "hotkey",
        }
    }
}

/// A header that names another subnet, window, uid or hotkey than expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the payload's header says {} {found}, expected {expected}", field.name())]
pub struct HeaderMismatch {
    pub field: HeaderField,
    pub expected: String,
    pub found: String,
}

impl PayloadOrigin {
    /// Accepts `header` only if it names exactly this origin; reports the first field that
    /// differs, in the order netuid, window, uid, hotkey.
    pub fn check(&self, header: &PayloadOrigin) -> Result<(), HeaderMismatch> {
        let bad = |field, expected: String, found: String| Err(HeaderMismatch { field, expected, found });
        if header.netuid != self.netuid {
            return bad(HeaderField::Netuid, self.netuid.to_string(), header.netuid.to_string());
        }
        if header.window != self.window {
            return bad(HeaderField::Window, self.window.to_string(), header.window.to_string());
        }
        if header.uid != self.uid {
            return bad(HeaderField::Uid, self.uid.to_string(), header.uid.to_string());
        }
        if header.hotkey != self.hotkey {
            return bad(HeaderField::Hotkey, self.hotkey.to_string(), header.hotkey.to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPECTED: PayloadOrigin =
        PayloadOrigin { netuid: 3, window: Window(9), uid: Uid(4), hotkey: Hotkey([1; 32]) };

    #[test]
    fn each_field_is_checked_in_order() {
        assert_eq!(EXPECTED.check(&EXPECTED), Ok(()));
        let cases = [
            (PayloadOrigin { netuid: 4, ..EXPECTED }, HeaderField::Netuid),
            (PayloadOrigin { window: Window(8), ..EXPECTED }, HeaderField::Window),
            (PayloadOrigin { uid: Uid(5), ..EXPECTED }, HeaderField::Uid),
            (PayloadOrigin { hotkey: Hotkey([2; 32]), ..EXPECTED }, HeaderField::Hotkey),
            (PayloadOrigin { netuid: 4, uid: Uid(5), ..EXPECTED }, HeaderField::Netuid),
        ];
        for (header, field) in cases {
            assert_eq!(EXPECTED.check(&header).unwrap_err().field, field, "{header:?}");
        }
        let e = EXPECTED.check(&PayloadOrigin { window: Window(8), ..EXPECTED }).unwrap_err();
        assert_eq!(e.to_string(), "the payload's header says window 8, expected 9");
    }
}
