//! Structural "shapes" of calls and storage items in V16 runtime metadata, for comparing two runtimes
//! (ours and finney's) independently of type ids and Rust type paths.

use codec::Decode;
use frame_metadata::v16::{PalletMetadata, RuntimeMetadataV16, StorageEntryModifier, StorageEntryType, StorageHasher};
use frame_metadata::{RuntimeMetadata, RuntimeMetadataPrefixed};
use scale_info::form::PortableForm;
use scale_info::{PortableRegistry, TypeDef, TypeDefPrimitive};
use std::collections::BTreeMap;

pub fn decode_v16(bytes: &[u8]) -> Result<RuntimeMetadataV16, String> {
    let prefixed = RuntimeMetadataPrefixed::decode(&mut &bytes[..]).map_err(|e| format!("decode: {e}"))?;
    match prefixed.1 {
        RuntimeMetadata::V16(m) => Ok(m),
        other => Err(format!("expected V16 metadata, got version {}", other.version())),
    }
}

pub fn pallet<'a>(m: &'a RuntimeMetadataV16, name: &str) -> Option<&'a PalletMetadata<PortableForm>> {
    m.pallets.iter().find(|p| p.name == name)
}

/// Renders a type structurally: primitives by name, sequences/arrays/tuples/compacts by their
/// element shapes, composites by their field names and shapes, enums by variant name, index and
/// fields. Type paths are ignored, except that the runtime's outer enums (`RuntimeCall`,
/// `RuntimeEvent`, ..., which list every pallet) are named rather than expanded.
pub fn shape(reg: &PortableRegistry, id: u32) -> String {
    shape_inner(reg, id, &mut Vec::new())
}

fn shape_inner(reg: &PortableRegistry, id: u32, stack: &mut Vec<u32>) -> String {
    let Some(ty) = reg.resolve(id) else { return format!("<unknown type {id}>") };
    // The runtime's own outer enums differ by construction (finney has more pallets): compare them
    // by name only.
    if let Some(last) = ty.path.segments.last() {
        if matches!(
            last.as_str(),
            "RuntimeCall" | "OriginCaller" | "RuntimeEvent" | "RuntimeHoldReason" | "RuntimeFreezeReason"
        ) {
            return format!("<{last}>");
        }
    }
    if stack.contains(&id) || stack.len() > 12 {
        return format!("<recursive {}>", ty.path.segments.join("::"));
    }
    stack.push(id);
    let out = match &ty.type_def {
        TypeDef::Primitive(p) => primitive(p).to_string(),
        TypeDef::Compact(c) => format!("Compact<{}>", shape_inner(reg, c.type_param.id, stack)),
        TypeDef::Sequence(s) => format!("Vec<{}>", shape_inner(reg, s.type_param.id, stack)),
        TypeDef::Array(a) => format!("[{}; {}]", shape_inner(reg, a.type_param.id, stack), a.len),
        TypeDef::Tuple(t) => {
            let parts: Vec<String> = t.fields.iter().map(|f| shape_inner(reg, f.id, stack)).collect();
            format!("({})", parts.join(", "))
        }
        TypeDef::BitSequence(_) => "BitSequence".to_string(),
        TypeDef::Composite(c) => fields(reg, &c.fields, stack),
        TypeDef::Variant(v) => {
            let parts: Vec<String> = v
                .variants
                .iter()
                .map(|var| format!("{}#{}{}", var.name, var.index, fields(reg, &var.fields, stack)))
                .collect();
            format!("enum{{{}}}", parts.join(" | "))
        }
    };
    stack.pop();
    out
}

fn fields(reg: &PortableRegistry, fields: &[scale_info::Field<PortableForm>], stack: &mut Vec<u32>) -> String {
    if fields.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = fields
        .iter()
        .map(|f| match &f.name {
            Some(n) => format!("{n}: {}", shape_inner(reg, f.ty.id, stack)),
            None => shape_inner(reg, f.ty.id, stack),
        })
        .collect();
    if fields[0].name.is_some() {
        format!("{{{}}}", parts.join(", "))
    } else {
        format!("({})", parts.join(", "))
    }
}

fn primitive(p: &TypeDefPrimitive) -> &'static str {
    match p {
        TypeDefPrimitive::Bool => "bool",
        TypeDefPrimitive::Char => "char",
        TypeDefPrimitive::Str => "str",
        TypeDefPrimitive::U8 => "u8",
        TypeDefPrimitive::U16 => "u16",
        TypeDefPrimitive::U32 => "u32",
        TypeDefPrimitive::U64 => "u64",
        TypeDefPrimitive::U128 => "u128",
        TypeDefPrimitive::U256 => "u256",
        TypeDefPrimitive::I8 => "i8",
        TypeDefPrimitive::I16 => "i16",
        TypeDefPrimitive::I32 => "i32",
        TypeDefPrimitive::I64 => "i64",
        TypeDefPrimitive::I128 => "i128",
        TypeDefPrimitive::I256 => "i256",
    }
}

/// call name -> (call index, "arg: shape" list) for one pallet.
pub fn calls(m: &RuntimeMetadataV16, pallet_name: &str) -> BTreeMap<String, (u8, Vec<String>)> {
    let mut out = BTreeMap::new();
    let Some(p) = pallet(m, pallet_name) else { return out };
    let Some(c) = &p.calls else { return out };
    let Some(ty) = m.types.resolve(c.ty.id) else { return out };
    if let TypeDef::Variant(v) = &ty.type_def {
        for var in &v.variants {
            let args = var
                .fields
                .iter()
                .map(|f| format!("{}: {}", f.name.as_deref().unwrap_or("_"), shape(&m.types, f.ty.id)))
                .collect();
            out.insert(var.name.clone(), (var.index, args));
        }
    }
    out
}

/// storage name -> "modifier hashers key => value" for one pallet.
pub fn storage(m: &RuntimeMetadataV16, pallet_name: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(p) = pallet(m, pallet_name) else { return out };
    let Some(s) = &p.storage else { return out };
    for e in &s.entries {
        let modifier = match e.modifier {
            StorageEntryModifier::Optional => "Option",
            StorageEntryModifier::Default => "Default",
        };
        let desc = match &e.ty {
            StorageEntryType::Plain(v) => format!("{modifier} plain => {}", shape(&m.types, v.id)),
            StorageEntryType::Map { hashers, key, value } => {
                let h: Vec<&str> = hashers.iter().map(hasher).collect();
                format!("{modifier} [{}] {} => {}", h.join(", "), shape(&m.types, key.id), shape(&m.types, value.id))
            }
        };
        out.insert(e.name.clone(), desc);
    }
    out
}

fn hasher(h: &StorageHasher) -> &'static str {
    match h {
        StorageHasher::Blake2_128 => "Blake2_128",
        StorageHasher::Blake2_256 => "Blake2_256",
        StorageHasher::Blake2_128Concat => "Blake2_128Concat",
        StorageHasher::Twox128 => "Twox128",
        StorageHasher::Twox256 => "Twox256",
        StorageHasher::Twox64Concat => "Twox64Concat",
        StorageHasher::Identity => "Identity",
    }
}
