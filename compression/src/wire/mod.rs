//! Wire format v1 of a gradient payload: a fixed header, a parameter table, the parameters'
//! index and code sections, and an sr25519 signature. `compression/FORMAT.md` is the byte-level
//! specification; this module is its only implementation.
//!
//! Decoding takes the [`Manifest`] the reader expects and checks the payload against it before
//! allocating anything, so a hostile payload can cost at most what an honest one of that model
//! costs. Every defect is a typed [`DecodeError`]; no input makes the decoder panic.

pub mod bits;

use crate::geometry::ChunkGeometry;
use crate::manifest::{Manifest, ParamSpec, MAX_NAME_LEN, MAX_RANK};
use crate::quant::{QuantError, QuantParams};
use crate::signature::SIGNATURE_LEN;
use crate::sparse::{check_chunk_indices, SparseError, SparseParam};
use bits::RiceError;

/// First bytes of every payload.
pub const MAGIC: [u8; 8] = *b"CVNTGRAD";
/// The format version this module writes and reads.
pub const VERSION: u16 = 1;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 96;
/// Size of a parameter record without its name and dimensions.
const RECORD_FIXED_LEN: usize = 2 + 4 + 6 + 24 + 8;

/// Who produced a payload, for which window, from which model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub netuid: u16,
    pub uid: u16,
    pub window: u64,
    /// The uploader's sr25519 hotkey (public key).
    pub hotkey: [u8; 32],
    /// [`Manifest::fingerprint`] of the model the update is for.
    pub model: [u8; 32],
}

/// The codec constants a payload declares (they fix every parameter's chunk geometry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodecParams {
    pub target_chunk: u16,
    pub topk: u16,
}

/// A decoded (or to-be-encoded) payload: header and one compressed update per manifest parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Payload {
    pub header: Header,
    pub params: Vec<SparseParam>,
}

/// How a payload's indices are written (`packed12` or `entropy` in configuration).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexCoding {
    /// 12 bits per index, templar's pair packing (14 bits per kept value with the code).
    #[default]
    Packed12,
    /// Rice-coded gaps between sorted indices, per parameter the cheapest Rice parameter
    /// (≈ 7.5 bits per index for top-64 of 4096); a parameter whose Rice code would be longer
    /// than 12 bits per index falls back to [`IndexCoding::Packed12`].
    ///
    /// In both codings, parameters that keep every element of every chunk (1-D parameters whose
    /// length is a multiple of 64) send no indices at all.
    Entropy,
}

impl std::str::FromStr for IndexCoding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "packed12" => Ok(Self::Packed12),
            "entropy" => Ok(Self::Entropy),
            other => Err(format!("unknown index coding `{other}` (expected `packed12` or `entropy`)")),
        }
    }
}

/// Index section encodings (the `index_coding` byte of a record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum IndexSection {
    Packed12 = 0,
    Rice = 1,
    /// No bytes: the parameter keeps every element of every chunk.
    Implicit = 2,
}

/// Code section encodings (the `code_coding` byte of a record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CodeSection {
    Packed2 = 0,
}

/// Everything that makes a payload unacceptable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload of {size} bytes exceeds the {limit} bytes this model allows")]
    TooLarge { size: usize, limit: usize },
    #[error("payload is truncated: {0}")]
    Truncated(&'static str),
    #[error("bad magic {0:02x?}: not a covenant gradient payload")]
    BadMagic([u8; 8]),
    #[error("unsupported format version {0} (this build reads version {VERSION})")]
    UnsupportedVersion(u16),
    #[error("unsupported header flags {0:#06x}")]
    UnsupportedFlags(u16),
    #[error("parameter `{name}` has rank {rank}, more than {MAX_RANK}")]
    RankTooHigh { name: String, rank: u8 },
    #[error("payload is for model {found} but this model is {expected}")]
    ModelMismatch { expected: String, found: String },
    #[error("the payload's parameter table is not a valid manifest: {0}")]
    BadManifest(String),
    #[error("payload has {found} parameters, the model has {expected}")]
    ParameterCount { expected: usize, found: usize },
    #[error("parameter {index} is `{found}`, expected `{expected}`")]
    UnexpectedParameter { index: usize, expected: String, found: String },
    #[error("parameter name is not valid UTF-8 or longer than {MAX_NAME_LEN} bytes")]
    BadName,
    #[error("parameter `{name}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("parameter `{name}` declares chunks {found:?} (h, w, k), expected {expected:?}")]
    GeometryMismatch { name: String, expected: (usize, usize, usize), found: (usize, usize, usize) },
    #[error("parameter `{name}`: unknown {field} {value}")]
    UnknownCoding { name: String, field: &'static str, value: u8 },
    #[error("parameter `{name}`: {section} section of {len} bytes, expected {expected}")]
    SectionLength { name: String, section: &'static str, len: usize, expected: String },
    #[error("parameter `{name}`: {source}")]
    Quant { name: String, source: QuantError },
    #[error("parameter `{name}`: {source}")]
    Indices { name: String, source: SparseError },
    #[error("parameter `{name}`: index stream: {source}")]
    IndexStream { name: String, source: RiceError },
    #[error("parameter `{name}`: non-zero padding bits in the {section} section")]
    NonCanonicalPadding { name: String, section: &'static str },
    #[error("{0} unexpected bytes between the last section and the signature")]
    TrailingBytes(usize),
}

/// Why a payload cannot be encoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    #[error("payload has {found} parameters, the manifest {expected}")]
    ParameterCount { expected: usize, found: usize },
    #[error("parameter `{name}`: geometry {found:?} differs from the manifest's {expected:?}")]
    Geometry { name: String, expected: ChunkGeometry, found: ChunkGeometry },
    #[error("parameter `{name}`: {source}")]
    Invalid { name: String, source: SparseError },
    #[error("header names model {found}, the manifest is {expected}")]
    Model { expected: String, found: String },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Size of one parameter's record in the table.
fn record_len(spec: &ParamSpec) -> usize {
    RECORD_FIXED_LEN + spec.name.len() + 4 * spec.shape.len()
}

/// The largest payload a model with `manifest` can produce: its packed12 encoding.
pub fn max_payload_len(manifest: &Manifest) -> usize {
    HEADER_LEN
        + SIGNATURE_LEN
        + manifest
            .params()
            .iter()
            .zip(manifest.geometry())
            .map(|(p, g)| record_len(p) + bits::packed12_len(g.kept()) + bits::packed2_len(g.kept()))
            .sum::<usize>()
}

/// Encodes `payload` for `manifest`, with an all-zero signature slot (see
/// [`crate::signature::sign`]).
pub fn encode(payload: &Payload, manifest: &Manifest, coding: IndexCoding) -> Result<Vec<u8>, EncodeError> {
    if payload.params.len() != manifest.len() {
        return Err(EncodeError::ParameterCount { expected: manifest.len(), found: payload.params.len() });
    }
    if payload.header.model != manifest.fingerprint() {
        return Err(EncodeError::Model { expected: hex(&manifest.fingerprint()), found: hex(&payload.header.model) });
    }
    let mut sections = Vec::with_capacity(payload.params.len());
    for ((sparse, spec), g) in payload.params.iter().zip(manifest.params()).zip(manifest.geometry()) {
        if sparse.geometry != *g {
            return Err(EncodeError::Geometry { name: spec.name.clone(), expected: *g, found: sparse.geometry });
        }
        sparse.validate().map_err(|source| EncodeError::Invalid { name: spec.name.clone(), source })?;
        sections.push(encode_sections(sparse, coding));
    }
    let h = &payload.header;
    let mut out = Vec::with_capacity(
        HEADER_LEN
            + SIGNATURE_LEN
            + manifest.params().iter().map(record_len).sum::<usize>()
            + sections.iter().map(|s| s.indices.len() + s.codes.len()).sum::<usize>(),
    );
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&h.netuid.to_le_bytes());
    out.extend_from_slice(&h.uid.to_le_bytes());
    out.extend_from_slice(&h.window.to_le_bytes());
    out.extend_from_slice(&h.hotkey);
    out.extend_from_slice(&h.model);
    out.extend_from_slice(&(manifest.len() as u32).to_le_bytes());
    out.extend_from_slice(&(manifest.target_chunk() as u16).to_le_bytes());
    out.extend_from_slice(&(manifest.topk() as u16).to_le_bytes());
    debug_assert_eq!(out.len(), HEADER_LEN);
    for ((spec, sparse), s) in manifest.params().iter().zip(&payload.params).zip(&sections) {
        let g = sparse.geometry;
        out.extend_from_slice(&(spec.name.len() as u16).to_le_bytes());
        out.extend_from_slice(spec.name.as_bytes());
        out.extend_from_slice(&[spec.shape.len() as u8, s.index as u8, CodeSection::Packed2 as u8, s.rice]);
        for &d in &spec.shape {
            out.extend_from_slice(&(d as u32).to_le_bytes());
        }
        for v in [g.h, g.w, g.k] {
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        let q = sparse.quant;
        for v in [q.shift, q.scale, q.lookup[0], q.lookup[1], q.lookup[2], q.lookup[3]] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(s.indices.len() as u32).to_le_bytes());
        out.extend_from_slice(&(s.codes.len() as u32).to_le_bytes());
    }
    for s in &sections {
        out.extend_from_slice(&s.indices);
        out.extend_from_slice(&s.codes);
    }
    out.extend_from_slice(&[0u8; SIGNATURE_LEN]);
    Ok(out)
}

struct Sections {
    index: IndexSection,
    rice: u8,
    indices: Vec<u8>,
    codes: Vec<u8>,
}

fn encode_sections(sparse: &SparseParam, coding: IndexCoding) -> Sections {
    let g = sparse.geometry;
    let mut codes = Vec::with_capacity(bits::packed2_len(sparse.codes.len()));
    bits::pack2(&sparse.codes, &mut codes);
    let packed = |codes| {
        let mut indices = Vec::with_capacity(bits::packed12_len(sparse.indices.len()));
        bits::pack12(&sparse.indices, &mut indices);
        Sections { index: IndexSection::Packed12, rice: 0, indices, codes }
    };
    if g.keeps_all() {
        // Every element of every chunk is sent: the indices carry no information.
        return Sections { index: IndexSection::Implicit, rice: 0, indices: Vec::new(), codes };
    }
    match coding {
        IndexCoding::Packed12 => packed(codes),
        IndexCoding::Entropy => {
            let (rice, indices) = bits::rice_encode(&sparse.indices, g.k);
            if indices.len() > bits::packed12_len(sparse.indices.len()) {
                packed(codes)
            } else {
                Sections { index: IndexSection::Rice, rice, indices, codes }
            }
        }
    }
}

/// A bounds-checked little-endian reader over untrusted bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(DecodeError::Truncated(what))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn f32(&mut self, what: &'static str) -> Result<f32, DecodeError> {
        self.array(what).map(f32::from_le_bytes)
    }
}

/// One parameter record as it appears in the table, unchecked against any manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub name: String,
    pub shape: Vec<usize>,
    pub index_coding: u8,
    pub code_coding: u8,
    pub rice: u8,
    /// Declared chunk height, width and values per chunk.
    pub chunk: (usize, usize, usize),
    pub quant: QuantParams,
    pub index_len: usize,
    pub code_len: usize,
}

/// The header and parameter table of a payload, read without a manifest (for inspection and for
/// building a manifest from a trusted payload). Bounded by the payload's own length.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub header: Header,
    pub codec: CodecParams,
    pub records: Vec<Record>,
    /// Offset of the first data section.
    pub data_start: usize,
    pub signature: [u8; SIGNATURE_LEN],
}

/// Reads the header and parameter table of `bytes` without trusting them beyond their own length.
pub fn read_layout(bytes: &[u8]) -> Result<Layout, DecodeError> {
    if bytes.len() < HEADER_LEN + SIGNATURE_LEN {
        return Err(DecodeError::Truncated("header"));
    }
    let mut c = Cursor { bytes, pos: 0 };
    let magic: [u8; 8] = c.array("magic")?;
    if magic != MAGIC {
        return Err(DecodeError::BadMagic(magic));
    }
    let version = c.u16("version")?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let flags = c.u16("flags")?;
    if flags != 0 {
        return Err(DecodeError::UnsupportedFlags(flags));
    }
    let netuid = c.u16("netuid")?;
    let uid = c.u16("uid")?;
    let window = u64::from_le_bytes(c.array("window")?);
    let hotkey = c.array("hotkey")?;
    let model = c.array("model")?;
    let count = c.u32("parameter count")? as usize;
    let codec = CodecParams { target_chunk: c.u16("chunk target")?, topk: c.u16("top-k")? };
    // Each record takes at least RECORD_FIXED_LEN bytes: bound the count before allocating.
    if count > (bytes.len() - HEADER_LEN) / RECORD_FIXED_LEN {
        return Err(DecodeError::Truncated("parameter table"));
    }
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let name_len = c.u16("name length")? as usize;
        if name_len > MAX_NAME_LEN {
            return Err(DecodeError::BadName);
        }
        let name = std::str::from_utf8(c.take(name_len, "name")?).map_err(|_| DecodeError::BadName)?.to_owned();
        let [rank, index_coding, code_coding, rice] = c.array("record codings")?;
        if rank as usize > MAX_RANK {
            return Err(DecodeError::RankTooHigh { name, rank });
        }
        let shape = (0..rank).map(|_| c.u32("shape").map(|d| d as usize)).collect::<Result<Vec<_>, _>>()?;
        let chunk = (c.u16("chunk")? as usize, c.u16("chunk")? as usize, c.u16("chunk")? as usize);
        let quant = QuantParams {
            shift: c.f32("shift")?,
            scale: c.f32("scale")?,
            lookup: [c.f32("lookup")?, c.f32("lookup")?, c.f32("lookup")?, c.f32("lookup")?],
        };
        let index_len = c.u32("section length")? as usize;
        let code_len = c.u32("section length")? as usize;
        records.push(Record { name, shape, index_coding, code_coding, rice, chunk, quant, index_len, code_len });
    }
    let data_start = c.pos;
    let mut signature = [0u8; SIGNATURE_LEN];
    signature.copy_from_slice(&bytes[bytes.len() - SIGNATURE_LEN..]);
    if data_start > bytes.len() - SIGNATURE_LEN {
        return Err(DecodeError::Truncated("parameter table"));
    }
    Ok(Layout { header: Header { netuid, uid, window, hotkey, model }, codec, records, data_start, signature })
}

impl Layout {
    /// The manifest this payload declares: its parameter table and codec constants, checked
    /// against the header's fingerprint. Use only where the payload itself is the authority on
    /// the model (inspection, debugging); peers decode against their own manifest.
    pub fn manifest(&self) -> Result<Manifest, DecodeError> {
        let params = self.records.iter().map(|r| ParamSpec { name: r.name.clone(), shape: r.shape.clone() }).collect();
        let manifest = Manifest::with_codec(params, self.codec.target_chunk as usize, self.codec.topk as usize)
            .map_err(|e| DecodeError::BadManifest(e.to_string()))?;
        if manifest.fingerprint() != self.header.model {
            return Err(DecodeError::ModelMismatch {
                expected: hex(&manifest.fingerprint()),
                found: hex(&self.header.model),
            });
        }
        Ok(manifest)
    }
}

/// Decodes `bytes` as a payload for `manifest`. Does not verify the signature (see
/// [`crate::signature::verify`]).
pub fn decode(bytes: &[u8], manifest: &Manifest) -> Result<Payload, DecodeError> {
    let limit = max_payload_len(manifest);
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge { size: bytes.len(), limit });
    }
    let layout = read_layout(bytes)?;
    let fingerprint = manifest.fingerprint();
    if layout.header.model != fingerprint {
        return Err(DecodeError::ModelMismatch { expected: hex(&fingerprint), found: hex(&layout.header.model) });
    }
    if layout.records.len() != manifest.len() {
        return Err(DecodeError::ParameterCount { expected: manifest.len(), found: layout.records.len() });
    }
    // Check every record and the total length before decoding (and allocating for) any section.
    let mut data_len = 0usize;
    for (index, ((r, spec), g)) in layout.records.iter().zip(manifest.params()).zip(manifest.geometry()).enumerate() {
        check_record(index, r, spec, g)?;
        data_len += r.index_len + r.code_len;
    }
    let expected_end = layout.data_start + data_len + SIGNATURE_LEN;
    match expected_end.cmp(&bytes.len()) {
        std::cmp::Ordering::Greater => return Err(DecodeError::Truncated("data sections")),
        std::cmp::Ordering::Less => return Err(DecodeError::TrailingBytes(bytes.len() - expected_end)),
        std::cmp::Ordering::Equal => {}
    }
    let mut pos = layout.data_start;
    let mut params = Vec::with_capacity(manifest.len());
    for (r, g) in layout.records.iter().zip(manifest.geometry()) {
        let index_bytes = &bytes[pos..pos + r.index_len];
        let code_bytes = &bytes[pos + r.index_len..pos + r.index_len + r.code_len];
        pos += r.index_len + r.code_len;
        params.push(decode_param(r, *g, index_bytes, code_bytes)?);
    }
    Ok(Payload { header: layout.header, params })
}

fn check_record(index: usize, r: &Record, spec: &ParamSpec, g: &ChunkGeometry) -> Result<(), DecodeError> {
    let name = || spec.name.clone();
    if r.name != spec.name {
        return Err(DecodeError::UnexpectedParameter { index, expected: spec.name.clone(), found: r.name.clone() });
    }
    if r.shape != spec.shape {
        return Err(DecodeError::ShapeMismatch { name: name(), expected: spec.shape.clone(), found: r.shape.clone() });
    }
    if r.chunk != (g.h, g.w, g.k) {
        return Err(DecodeError::GeometryMismatch { name: name(), expected: (g.h, g.w, g.k), found: r.chunk });
    }
    r.quant.validate().map_err(|source| DecodeError::Quant { name: name(), source })?;
    let n = g.kept();
    let expected_index = match r.index_coding {
        x if x == IndexSection::Packed12 as u8 => Some(bits::packed12_len(n)),
        x if x == IndexSection::Implicit as u8 && g.keeps_all() => Some(0),
        x if x == IndexSection::Rice as u8 => None,
        value => return Err(DecodeError::UnknownCoding { name: name(), field: "index coding", value }),
    };
    match expected_index {
        Some(len) if r.index_len != len => {
            return Err(DecodeError::SectionLength {
                name: name(),
                section: "index",
                len: r.index_len,
                expected: len.to_string(),
            })
        }
        None if r.index_len > bits::packed12_len(n) => {
            return Err(DecodeError::SectionLength {
                name: name(),
                section: "index",
                len: r.index_len,
                expected: format!("at most {}", bits::packed12_len(n)),
            })
        }
        _ => {}
    }
    if r.code_coding != CodeSection::Packed2 as u8 {
        return Err(DecodeError::UnknownCoding { name: name(), field: "code coding", value: r.code_coding });
    }
    if r.code_len != bits::packed2_len(n) {
        return Err(DecodeError::SectionLength {
            name: name(),
            section: "code",
            len: r.code_len,
            expected: bits::packed2_len(n).to_string(),
        });
    }
    Ok(())
}

fn decode_param(
    r: &Record,
    g: ChunkGeometry,
    index_bytes: &[u8],
    code_bytes: &[u8],
) -> Result<SparseParam, DecodeError> {
    let n = g.kept();
    let name = || r.name.clone();
    let mut indices = vec![0u16; n];
    match r.index_coding {
        x if x == IndexSection::Packed12 as u8 => {
            if !bits::unpack12(index_bytes, &mut indices) {
                return Err(DecodeError::NonCanonicalPadding { name: name(), section: "index" });
            }
            for (chunk, idx) in indices.chunks_exact(g.k).enumerate() {
                check_chunk_indices(chunk, idx, g.totalk())
                    .map_err(|source| DecodeError::Indices { name: name(), source })?;
            }
        }
        x if x == IndexSection::Rice as u8 => {
            bits::rice_decode(index_bytes, r.rice, g.k, g.totalk(), &mut indices)
                .map_err(|source| DecodeError::IndexStream { name: name(), source })?;
        }
        _ => {
            for idx in indices.chunks_exact_mut(g.k) {
                for (l, slot) in idx.iter_mut().enumerate() {
                    *slot = l as u16;
                }
            }
        }
    }
    let mut codes = vec![0u8; n];
    if !bits::unpack2(code_bytes, &mut codes) {
        return Err(DecodeError::NonCanonicalPadding { name: name(), section: "code" });
    }
    Ok(SparseParam { geometry: g, indices, codes, quant: r.quant })
}
