//! Bit-level encodings of indices and codes.
//!
//! These few loops are the payload's hot path and define its exact bytes, so they are written out
//! here rather than routed through a general bit-stream library's per-call `io::Result` machinery.

/// Bytes of `n` 12-bit values packed in pairs (templar's layout; an odd count pads a zero nibble).
pub fn packed12_len(n: usize) -> usize {
    n / 2 * 3 + (n % 2) * 2
}

/// Bytes of `n` 2-bit codes.
pub fn packed2_len(n: usize) -> usize {
    n.div_ceil(4)
}

/// templar's 12-bit packing: pairs `(a, b)` become `[a & 0xFF, (a >> 8) | (b & 0xF) << 4, b >> 4]`.
pub fn pack12(values: &[u16], out: &mut Vec<u8>) {
    let mut pairs = values.chunks_exact(2);
    for pair in &mut pairs {
        let (a, b) = (pair[0], pair[1]);
        out.extend_from_slice(&[a as u8, ((a >> 8) & 0xF) as u8 | ((b & 0xF) << 4) as u8, (b >> 4) as u8]);
    }
    if let [a] = pairs.remainder() {
        out.extend_from_slice(&[*a as u8, ((a >> 8) & 0xF) as u8]);
    }
}

/// Inverse of [`pack12`]: `bytes.len()` must be `packed12_len(out.len())`. Returns false when the
/// padding nibble of an odd count is not zero (a non-canonical encoding).
pub fn unpack12(bytes: &[u8], out: &mut [u16]) -> bool {
    debug_assert_eq!(bytes.len(), packed12_len(out.len()));
    let mut triples = bytes.chunks_exact(3);
    let mut pairs = out.chunks_exact_mut(2);
    for (t, pair) in (&mut triples).zip(&mut pairs) {
        pair[0] = t[0] as u16 | ((t[1] as u16 & 0xF) << 8);
        pair[1] = (t[1] as u16 >> 4) | ((t[2] as u16) << 4);
    }
    match pairs.into_remainder() {
        [last] => {
            let t = &bytes[bytes.len() - 2..];
            *last = t[0] as u16 | ((t[1] as u16 & 0xF) << 8);
            t[1] >> 4 == 0
        }
        _ => true,
    }
}

/// Packs 2-bit codes, four per byte, first code in the lowest bits.
pub fn pack2(codes: &[u8], out: &mut Vec<u8>) {
    let mut quads = codes.chunks_exact(4);
    for q in &mut quads {
        out.push((q[0] & 3) | (q[1] & 3) << 2 | (q[2] & 3) << 4 | (q[3] & 3) << 6);
    }
    let rest = quads.remainder();
    if !rest.is_empty() {
        out.push(rest.iter().enumerate().fold(0u8, |acc, (i, &c)| acc | (c & 3) << (2 * i)));
    }
}

/// Inverse of [`pack2`]: `bytes.len()` must be `packed2_len(out.len())`. Returns false when the
/// padding bits of the last byte are not zero.
pub fn unpack2(bytes: &[u8], out: &mut [u8]) -> bool {
    debug_assert_eq!(bytes.len(), packed2_len(out.len()));
    for (i, c) in out.iter_mut().enumerate() {
        *c = (bytes[i / 4] >> (2 * (i % 4))) & 3;
    }
    match out.len() % 4 {
        0 => true,
        used => bytes[bytes.len() - 1] >> (2 * used) == 0,
    }
}

/// MSB-first bit writer with a 64-bit accumulator.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter {
    fn new() -> Self {
        Self { out: Vec::new(), acc: 0, bits: 0 }
    }

    /// Appends the low `n` bits of `value` (n ≤ 32).
    #[inline]
    fn put(&mut self, value: u32, n: u32) {
        debug_assert!(n <= 32);
        self.acc = (self.acc << n) | (value as u64 & ((1u64 << n) - 1));
        self.bits += n;
        while self.bits >= 8 {
            self.bits -= 8;
            self.out.push((self.acc >> self.bits) as u8);
        }
    }

    /// Appends `ones` one-bits and a terminating zero-bit.
    #[inline]
    fn unary(&mut self, mut ones: u32) {
        while ones >= 32 {
            self.put(u32::MAX, 32);
            ones -= 32;
        }
        self.put(((1u64 << (ones + 1)) - 2) as u32, ones + 1);
    }

    /// Flushes the last partial byte, padded with zero bits.
    fn finish(mut self) -> Vec<u8> {
        if self.bits > 0 {
            self.out.push((self.acc << (8 - self.bits)) as u8);
        }
        self.out
    }
}

/// How reading a unary number failed.
enum Unary {
    Eof,
    TooLong,
}

/// MSB-first bit reader over untrusted bytes; reading past the end is an error, never a panic.
struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    acc: u64,
    bits: u32,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0, acc: 0, bits: 0 }
    }

    #[inline]
    fn refill(&mut self) {
        while self.bits <= 56 && self.pos < self.bytes.len() {
            self.acc |= (self.bytes[self.pos] as u64) << (56 - self.bits);
            self.pos += 1;
            self.bits += 8;
        }
    }

    /// Reads `n ≤ 32` bits.
    #[inline]
    fn get(&mut self, n: u32) -> Option<u32> {
        if n == 0 {
            return Some(0);
        }
        if self.bits < n {
            self.refill();
            if self.bits < n {
                return None;
            }
        }
        let v = (self.acc >> (64 - n)) as u32;
        self.acc <<= n; // n ≤ 32
        self.bits -= n;
        Some(v)
    }

    /// Reads a unary number (ones up to a zero), giving up once it exceeds `max`.
    #[inline]
    fn unary(&mut self, max: u32) -> Result<u32, Unary> {
        let mut ones = 0u32;
        loop {
            if self.bits == 0 {
                self.refill();
                if self.bits == 0 {
                    return Err(Unary::Eof);
                }
            }
            let run = (!self.acc).leading_zeros().min(self.bits);
            ones += run;
            if ones > max {
                return Err(Unary::TooLong);
            }
            if run < self.bits {
                // Consume the run and its terminating zero (up to all 64 bits).
                self.acc = self.acc.checked_shl(run + 1).unwrap_or(0);
                self.bits -= run + 1;
                return Ok(ones);
            }
            self.acc = 0;
            self.bits = 0;
        }
    }

    /// Whether every remaining bit is zero and no whole byte is left unread.
    fn at_canonical_end(&self) -> bool {
        self.pos == self.bytes.len() && self.bits < 8 && self.acc == 0
    }
}

/// Rice parameters the encoder tries (gap means between 1 and 4096).
const RICE_PARAMS: std::ops::RangeInclusive<u32> = 0..=11;

/// Bits the Rice code with parameter `r` needs for `gaps`.
fn rice_cost(gaps: impl Iterator<Item = u32> + Clone, r: u32) -> u64 {
    gaps.map(|g| (g >> r) as u64 + 1 + r as u64).sum()
}

/// The gaps of increasing indices, chunk by chunk: `i0`, then `i_j − i_{j−1} − 1`.
fn gaps(indices: &[u16], k: usize) -> impl Iterator<Item = u32> + Clone + '_ {
    indices.chunks_exact(k).flat_map(|chunk| {
        let mut prev: i32 = -1;
        chunk.iter().map(move |&i| {
            let g = (i as i32 - prev - 1) as u32;
            prev = i as i32;
            g
        })
    })
}

/// Rice-codes the per-chunk gaps of increasing indices with the cheapest parameter; returns the
/// parameter and the bytes (MSB-first, zero-padded to a byte).
pub fn rice_encode(indices: &[u16], k: usize) -> (u8, Vec<u8>) {
    let r = RICE_PARAMS.min_by_key(|&r| rice_cost(gaps(indices, k), r)).unwrap_or(0);
    (r as u8, rice_encode_with(indices, k, r))
}

fn rice_encode_with(indices: &[u16], k: usize, r: u32) -> Vec<u8> {
    let mut w = BitWriter::new();
    for g in gaps(indices, k) {
        w.unary(g >> r);
        w.put(g & ((1 << r) - 1), r);
    }
    w.finish()
}

/// Why a Rice-coded index stream is unacceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RiceError {
    #[error("Rice parameter {0} is outside 0..=11")]
    Parameter(u8),
    #[error("the stream ends before all indices are read")]
    Truncated,
    #[error("chunk {chunk}: an index runs past the chunk's {totalk} elements")]
    OutOfRange { chunk: usize, totalk: usize },
    #[error("the stream has extra or non-zero padding bits after the last index")]
    NonCanonical,
}

/// Decodes [`rice_encode`]'s output into `out` (`out.len()` a multiple of `k`); every decoded index
/// is `< totalk` and strictly increasing within its chunk by construction.
pub fn rice_decode(bytes: &[u8], r: u8, k: usize, totalk: usize, out: &mut [u16]) -> Result<(), RiceError> {
    if !RICE_PARAMS.contains(&(r as u32)) {
        return Err(RiceError::Parameter(r));
    }
    let r = r as u32;
    let max_quotient = (totalk as u32) >> r;
    let mut reader = BitReader::new(bytes);
    for (chunk, idx) in out.chunks_exact_mut(k.max(1)).enumerate() {
        let mut next = 0u32; // smallest index still possible
        for slot in idx {
            let q = reader.unary(max_quotient).map_err(|e| match e {
                Unary::Eof => RiceError::Truncated,
                Unary::TooLong => RiceError::OutOfRange { chunk, totalk },
            })?;
            let low = reader.get(r).ok_or(RiceError::Truncated)?;
            let index = next + ((q << r) | low);
            if index as usize >= totalk {
                return Err(RiceError::OutOfRange { chunk, totalk });
            }
            *slot = index as u16;
            next = index + 1;
        }
    }
    if reader.at_canonical_end() {
        Ok(())
    } else {
        Err(RiceError::NonCanonical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack12_matches_templar_layout() {
        let mut out = Vec::new();
        pack12(&[0xABC, 0x123], &mut out);
        assert_eq!(out, [0xBC, 0x3A, 0x12]);
        let mut back = [0u16; 2];
        assert!(unpack12(&out, &mut back));
        assert_eq!(back, [0xABC, 0x123]);
        let mut odd = Vec::new();
        pack12(&[1, 2, 0xFFF], &mut odd);
        assert_eq!(odd.len(), packed12_len(3));
        let mut back = [0u16; 3];
        assert!(unpack12(&odd, &mut back));
        assert_eq!(back, [1, 2, 0xFFF]);
        *odd.last_mut().unwrap() |= 0x10;
        assert!(!unpack12(&odd, &mut back));
    }

    #[test]
    fn pack2_round_trip_and_padding() {
        let codes = [0u8, 1, 2, 3, 3, 2];
        let mut out = Vec::new();
        pack2(&codes, &mut out);
        assert_eq!(out, [0b11_10_01_00, 0b10_11]);
        let mut back = [0u8; 6];
        assert!(unpack2(&out, &mut back));
        assert_eq!(back, codes);
        out[1] |= 0x40;
        assert!(!unpack2(&out, &mut back));
    }

    #[test]
    fn rice_round_trip() {
        let k = 4;
        let idx = [0u16, 1, 2, 4095, 10, 200, 3000, 3001];
        let (r, bytes) = rice_encode(&idx, k);
        let mut back = [0u16; 8];
        rice_decode(&bytes, r, k, 4096, &mut back).unwrap();
        assert_eq!(back, idx);
        // Truncation and trailing garbage are both rejected.
        assert!(rice_decode(&bytes[..bytes.len() - 1], r, k, 4096, &mut back).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(rice_decode(&longer, r, k, 4096, &mut back), Err(RiceError::NonCanonical));
        // An index beyond the chunk is reported, not wrapped.
        assert!(matches!(rice_decode(&bytes, r, k, 3001, &mut back), Err(RiceError::OutOfRange { .. })));
    }

    #[test]
    fn rice_round_trips_with_every_parameter_including_long_runs() {
        // One index per chunk: gaps 4095, 0, 4095 need unary runs longer than the accumulator.
        let idx = [4095u16, 0, 4095, 17];
        for r in RICE_PARAMS {
            let bytes = rice_encode_with(&idx, 1, r);
            let mut back = [0u16; 4];
            rice_decode(&bytes, r as u8, 1, 4096, &mut back).unwrap();
            assert_eq!(back, idx, "r = {r}");
        }
        assert_eq!(rice_decode(&[], 12, 1, 4096, &mut [0u16; 1]), Err(RiceError::Parameter(12)));
        // All ones: the unary run exceeds any index of the chunk.
        let mut back = [0u16; 1];
        assert!(matches!(rice_decode(&[0xFF; 700], 0, 1, 4096, &mut back), Err(RiceError::OutOfRange { .. })));
    }
}
