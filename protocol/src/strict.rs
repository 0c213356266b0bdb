//! One meaning per frame: an object in a frame names each key once.
//!
//! serde keeps the last of two equal keys (or, through `serde_json::Value`,
//! silently merges them), so `{"type":"ping",...,"type":"user_reset"}` would
//! mean whatever the reader happened to keep. Every frame passes this check
//! before it is decoded.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// Fails on the first object that repeats a key, at any depth, naming the key.
pub(crate) fn unique_keys(body: &[u8]) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    Unique.deserialize(&mut de)?;
    de.end()
}

struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Unique)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(Unique)?;
            if let Some(key) = seen.replace(key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        assert!(unique_keys(br#"{"a":1,"b":[{"c":{"d":null}}],"e":"x"}"#).is_ok());
        for body in [
            &br#"{"a":1,"a":1}"#[..],
            br#"{"v":1,"r":{"type":"ping","type":"user_reset"}}"#,
            br#"[{"x":[{"k":1,"k":2}]}]"#,
            br#"{"a\u0062":1,"ab":2}"#,
        ] {
            let err = unique_keys(body).unwrap_err().to_string();
            assert!(err.contains("duplicate key"), "{err}");
        }
        assert!(unique_keys(b"{} {}").is_err());
    }
}
