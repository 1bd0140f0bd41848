//! The vault as a document that can be edited: a tree whose string leaves are
//! [`Secret`]s (wiped on drop), serialised back as stable, sorted, indented JSON in a
//! wiped buffer. Authoring commands (`vault set`, `edit`, `rm`, `textconv`) use it; the
//! hook's hot path uses the flat index in `Vault` instead.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use zeroize::Zeroizing;

use super::Secret;
use crate::types::KeyPath;

/// A node of the document.
pub enum Node {
    /// A secret value.
    Str(Secret),
    /// An object of nodes.
    Obj(BTreeMap<String, Node>),
    /// A number, boolean, null or array (not secrets by the vault's rules, kept as is).
    Other(serde_json::Value),
}

/// The whole plaintext: metadata (`_phx`) and the secrets.
pub struct Doc {
    /// `_phx`, kept as JSON (version, diff key, future fields).
    pub meta: serde_json::Map<String, serde_json::Value>,
    /// Everything else.
    pub root: BTreeMap<String, Node>,
}

/// Why a document could not be read or changed (never a value).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocError {
    /// Not valid vault JSON.
    #[error("{0}")]
    Parse(String),
    /// The key path runs through a string.
    #[error("`{0}` holds a value, so it cannot contain `{1}`")]
    NotAnObject(String, String),
}

impl Doc {
    /// Parse a plaintext. Errors give line and column, never content.
    pub fn parse(bytes: &[u8]) -> Result<Doc, DocError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let r = RootSeed
            .deserialize(&mut de)
            .and_then(|d| de.end().map(|()| d));
        r.map_err(|e| {
            DocError::Parse(if e.is_data() {
                e.to_string()
            } else {
                format!(
                    "{} at line {} column {}",
                    if e.is_eof() {
                        "unexpected end"
                    } else {
                        "syntax error"
                    },
                    e.line(),
                    e.column()
                )
            })
        })
    }

    /// `_phx.version` (0 when absent).
    pub fn version(&self) -> u64 {
        self.meta
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    }

    /// Set `_phx.version`.
    pub fn set_version(&mut self, v: u64) {
        self.meta.insert("version".into(), v.into());
    }

    /// `_phx.diff_key`, the HMAC key of `textconv`.
    pub fn diff_key(&self) -> Option<&str> {
        self.meta
            .get("diff_key")
            .and_then(serde_json::Value::as_str)
    }

    /// The value at `key`.
    pub fn get(&self, key: &KeyPath) -> Option<&Secret> {
        let mut segs = key.segments().peekable();
        let mut map = &self.root;
        while let Some(s) = segs.next() {
            match (map.get(s), segs.peek()) {
                (Some(Node::Str(v)), None) => return Some(v),
                (Some(Node::Obj(m)), Some(_)) => map = m,
                _ => return None,
            }
        }
        None
    }

    /// Set the value at `key`, creating objects on the way.
    pub fn set(&mut self, key: &KeyPath, value: Secret) -> Result<(), DocError> {
        let segs: Vec<&str> = key.segments().collect();
        let mut map = &mut self.root;
        for (i, s) in segs.iter().enumerate() {
            if i == segs.len() - 1 {
                map.insert((*s).to_string(), Node::Str(value));
                return Ok(());
            }
            let node = map
                .entry((*s).to_string())
                .or_insert_with(|| Node::Obj(BTreeMap::new()));
            match node {
                Node::Obj(m) => map = m,
                _ => {
                    return Err(DocError::NotAnObject(
                        segs[..=i].join("/"),
                        segs[i + 1..].join("/"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Remove the value (or object) at `key`; false if there was none. Objects left
    /// empty are removed too.
    pub fn remove(&mut self, key: &KeyPath) -> bool {
        fn rm(map: &mut BTreeMap<String, Node>, segs: &[&str]) -> bool {
            match segs {
                [] => false,
                [last] => map.remove(*last).is_some(),
                [first, rest @ ..] => {
                    let Some(Node::Obj(m)) = map.get_mut(*first) else {
                        return false;
                    };
                    let gone = rm(m, rest);
                    if gone && m.is_empty() {
                        map.remove(*first);
                    }
                    gone
                }
            }
        }
        let segs: Vec<&str> = key.segments().collect();
        rm(&mut self.root, &segs)
    }

    /// Every leaf: (key path, node), sorted.
    pub fn leaves(&self) -> Vec<(String, &Node)> {
        fn walk<'a>(
            prefix: &str,
            map: &'a BTreeMap<String, Node>,
            out: &mut Vec<(String, &'a Node)>,
        ) {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}/{k}")
                };
                match v {
                    Node::Obj(m) if !m.is_empty() => walk(&path, m, out),
                    _ => out.push((path, v)),
                }
            }
        }
        let mut out = Vec::new();
        walk("", &self.root, &mut out);
        out
    }

    /// Stable JSON: `_phx` first, keys sorted, two-space indents, a final newline.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(4096));
        out.extend_from_slice(b"{\n");
        let mut first = true;
        if !self.meta.is_empty() {
            out.extend_from_slice(b"  \"_phx\": ");
            let meta = serde_json::to_string(&self.meta).unwrap_or_else(|_| "{}".into());
            out.extend_from_slice(meta.as_bytes());
            first = false;
        }
        for (k, v) in &self.root {
            if !first {
                out.extend_from_slice(b",\n");
            }
            first = false;
            write_entry(&mut out, 1, k, v);
        }
        out.extend_from_slice(b"\n}\n");
        out
    }
}

fn write_entry(out: &mut Zeroizing<Vec<u8>>, depth: usize, k: &str, v: &Node) {
    out.extend(std::iter::repeat_n(b' ', depth * 2));
    json_string(out, k.as_bytes());
    out.extend_from_slice(b": ");
    match v {
        Node::Str(s) => json_string(out, s.expose()),
        Node::Other(o) => out.extend_from_slice(o.to_string().as_bytes()),
        Node::Obj(m) if m.is_empty() => out.extend_from_slice(b"{}"),
        Node::Obj(m) => {
            out.extend_from_slice(b"{\n");
            for (i, (k2, v2)) in m.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b",\n");
                }
                write_entry(out, depth + 1, k2, v2);
            }
            out.push(b'\n');
            out.extend(std::iter::repeat_n(b' ', depth * 2));
            out.push(b'}');
        }
    }
}

/// A JSON string literal of UTF-8 `value`, into a wiped buffer.
pub(crate) fn json_string(out: &mut Zeroizing<Vec<u8>>, value: &[u8]) {
    out.push(b'"');
    for &b in value {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

struct RootSeed;

impl<'de> DeserializeSeed<'de> for RootSeed {
    type Value = Doc;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Doc, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RootSeed {
    type Value = Doc;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc, A::Error> {
        let mut doc = Doc {
            meta: serde_json::Map::new(),
            root: BTreeMap::new(),
        };
        while let Some(k) = map.next_key::<String>()? {
            if k == "_phx" {
                doc.meta = map
                    .next_value()
                    .map_err(|_| de::Error::custom("`_phx` must be an object"))?;
                continue;
            }
            check_key::<A::Error>(&k)?;
            let v = map.next_value_seed(NodeSeed)?;
            if doc.root.insert(k.clone(), v).is_some() {
                return Err(de::Error::custom(format!(
                    "key `{}` appears twice",
                    crate::text::name(&k)
                )));
            }
        }
        Ok(doc)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Doc, A::Error> {
        Err(de::Error::custom(
            "the top level is an array; it must be an object",
        ))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Doc, E> {
        Err(E::custom("the top level is a string; it must be an object"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Doc, E> {
        Err(E::custom("the top level is a number; it must be an object"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Doc, E> {
        Err(E::custom("the top level is a number; it must be an object"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Doc, E> {
        Err(E::custom("the top level is a number; it must be an object"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Doc, E> {
        Err(E::custom(
            "the top level is a boolean; it must be an object",
        ))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Doc, E> {
        Err(E::custom("the top level is null; it must be an object"))
    }
}

fn check_key<E: de::Error>(k: &str) -> Result<(), E> {
    if k.is_empty() || k.contains('/') {
        return Err(E::custom(format!(
            "key `{}` is empty or contains `/`",
            crate::text::name(k)
        )));
    }
    Ok(())
}

struct NodeSeed;

impl<'de> DeserializeSeed<'de> for NodeSeed {
    type Value = Node;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(Secret::copy_from(v.as_bytes())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        let v = Zeroizing::new(v.into_bytes());
        Ok(Node::Str(Secret::copy_from(&v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Other(v.into()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Other(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Other(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Other(serde_json::Number::from_f64(v).map_or(
            serde_json::Value::Null,
            serde_json::Value::Number,
        )))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Other(serde_json::Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = seq.next_element::<serde_json::Value>()? {
            v.push(x);
        }
        Ok(Node::Other(serde_json::Value::Array(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut m = BTreeMap::new();
        while let Some(k) = map.next_key::<String>()? {
            check_key::<A::Error>(&k)?;
            let v = map.next_value_seed(NodeSeed)?;
            if m.insert(k.clone(), v).is_some() {
                return Err(de::Error::custom(format!(
                    "key `{}` appears twice",
                    crate::text::name(&k)
                )));
            }
        }
        Ok(Node::Obj(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> KeyPath {
        s.parse().unwrap()
    }

    #[test]
    fn round_trip_and_edit() {
        let mut d = Doc::parse(
            br#"{"b":{"y":"2","x":"1"},"_phx":{"version":4,"diff_key":"ab"},"a":"q\"z","n":5}"#,
        )
        .unwrap();
        assert_eq!(d.version(), 4);
        assert_eq!(d.get(&k("b/x")).unwrap().expose(), b"1");
        d.set(&k("c/d/e"), Secret::copy_from(b"new")).unwrap();
        assert!(d.set(&k("a/sub"), Secret::copy_from(b"x")).is_err());
        assert!(d.remove(&k("b/y")));
        assert!(!d.remove(&k("b/nope")));
        d.set_version(5);
        let text = String::from_utf8(d.to_json().to_vec()).unwrap();
        assert_eq!(
            text,
            "{\n  \"_phx\": {\"version\":5,\"diff_key\":\"ab\"},\n  \"a\": \"q\\\"z\",\n  \"b\": {\n    \"x\": \"1\"\n  },\n  \"c\": {\n    \"d\": {\n      \"e\": \"new\"\n    }\n  },\n  \"n\": 5\n}\n"
        );
        let again = Doc::parse(text.as_bytes()).unwrap();
        assert_eq!(
            again
                .leaves()
                .iter()
                .map(|(p, _)| p.as_str())
                .collect::<Vec<_>>(),
            vec!["a", "b/x", "c/d/e", "n"]
        );
        assert!(d.remove(&k("c/d/e")));
        assert!(d.get(&k("c/d/e")).is_none());
        assert!(
            !String::from_utf8(d.to_json().to_vec())
                .unwrap()
                .contains("\"c\"")
        );
    }

    #[test]
    fn errors_name_places_not_values() {
        let Err(e) = Doc::parse(b"{\"a\": \"topsecret\",\n\"b\": }") else {
            panic!("accepted")
        };
        let e = e.to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("topsecret"));
    }
}
