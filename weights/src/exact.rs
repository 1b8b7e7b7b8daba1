//! Bit-exact `f64` in JSON.
//!
//! serde_json writes the shortest decimal that round-trips, but its default number parser may land
//! one ulp off (exactness is its `float_roundtrip` feature, which would change the build of every
//! crate of the workspace that uses serde_json). A reloaded Gauntlet must resume with *identical*
//! scores, so its `f64`s are written as JSON strings holding Rust's shortest round-trip form
//! (`"0.1"`, `"1e-7"`, `"-99.0"`) and read back with Rust's correctly rounded parser. Plain JSON
//! numbers are accepted on input too (a hand-written file), with serde_json's precision.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An `f64` that serializes exactly (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Default)]
pub struct ExactF64(pub f64);

impl Serialize for ExactF64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for ExactF64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize(d).map(ExactF64)
    }
}

/// `#[serde(serialize_with = "crate::exact::serialize")]`.
pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:?}"))
}

/// `#[serde(deserialize_with = "crate::exact::deserialize")]`.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(F64Visitor)
}

/// The same for an `Option<f64>` (`null` for `None`):
/// `#[serde(with = "crate::exact::option")]`.
pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::ExactF64;

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => super::serialize(x, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(Option::<ExactF64>::deserialize(d)?.map(|x| x.0))
    }
}

struct F64Visitor;

impl Visitor<'_> for F64Visitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number, or a string holding a decimal number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        v.trim().parse::<f64>().map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn every_f64_round_trips_bit_for_bit() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let mut values: Vec<f64> =
            (0..20_000).map(|_| f64::from_bits(rng.gen::<u64>())).filter(|v| v.is_finite()).collect();
        values.extend((0..20_000).map(|_| rng.gen::<f64>() * 50.0 - 25.0));
        values.extend([0.0, -0.0, 0.1, 1e-300, 5e-324, f64::MAX, -99.0, 25.0 / 3.0]);
        let json = serde_json::to_string(&values.iter().map(|&v| ExactF64(v)).collect::<Vec<_>>()).unwrap();
        let back: Vec<ExactF64> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), values.len());
        for (a, b) in values.iter().zip(&back) {
            assert_eq!(a.to_bits(), b.0.to_bits(), "{a:?}");
        }
    }

    #[test]
    fn options() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct T {
            #[serde(with = "option")]
            a: Option<f64>,
        }
        for a in [None, Some(0.1), Some(f64::INFINITY), Some(-99.0)] {
            let back: T = serde_json::from_str(&serde_json::to_string(&T { a }).unwrap()).unwrap();
            assert_eq!(back, T { a });
        }
    }

    #[test]
    fn plain_numbers_and_bad_strings() {
        let v: ExactF64 = serde_json::from_str("2.5").unwrap();
        assert_eq!(v.0, 2.5);
        let v: ExactF64 = serde_json::from_str("-3").unwrap();
        assert_eq!(v.0, -3.0);
        assert!(serde_json::from_str::<ExactF64>(r#""2.5x""#).is_err());
        assert!(serde_json::from_str::<ExactF64>("true").is_err());
    }
}
