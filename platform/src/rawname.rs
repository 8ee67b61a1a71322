//! Names from the system are arbitrary bytes: file names in /dev/shm, comm,
//! command lines. `RawName` keeps the bytes exactly (cleanup needs them) and
//! serialises as a JSON string when they are UTF-8, else as
//! `{"hex": "…"}`, so JSON stays valid and round-trips.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RawName(pub Vec<u8>);

impl RawName {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// UTF-8 text with invalid bytes written as `\xNN`: readable, unambiguous
    /// enough for humans, always valid in JSON. Not for terminals: use
    /// [`escape_for_terminal`] there.
    pub fn to_lossy(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        for chunk in self.0.utf8_chunks() {
            out.push_str(chunk.valid());
            for b in chunk.invalid() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
        out
    }

    pub fn is_utf8(&self) -> bool {
        std::str::from_utf8(&self.0).is_ok()
    }

    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        self.0.starts_with(prefix)
    }
}

/// Escape a string for a terminal: control characters (C0, C1, DEL) and
/// bidirectional overrides become visible escapes, so a hostile name cannot
/// move the cursor, recolour the screen or reorder text.
pub fn escape_for_terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{{{n:x}}}"));
                }
            }
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

impl fmt::Debug for RawName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_lossy())
    }
}

impl fmt::Display for RawName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_lossy())
    }
}

impl From<&str> for RawName {
    fn from(s: &str) -> Self {
        RawName(s.as_bytes().to_vec())
    }
}

impl From<String> for RawName {
    fn from(s: String) -> Self {
        RawName(s.into_bytes())
    }
}

impl From<&[u8]> for RawName {
    fn from(b: &[u8]) -> Self {
        RawName(b.to_vec())
    }
}

impl From<Vec<u8>> for RawName {
    fn from(b: Vec<u8>) -> Self {
        RawName(b)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Text(String),
    Hex { hex: String },
}

impl Serialize for RawName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => Repr::Hex {
                hex: self.0.iter().map(|b| format!("{b:02x}")).collect(),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RawName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Text(t) => Ok(RawName(t.into_bytes())),
            Repr::Hex { hex } => {
                if hex.len() % 2 != 0 {
                    return Err(serde::de::Error::custom("odd-length hex name"));
                }
                (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
                    .collect::<Result<Vec<u8>, _>>()
                    .map(RawName)
                    .map_err(serde::de::Error::custom)
            }
        }
    }
}

/// The JSON Schema of the serialised form: a string, or `{"hex": "…"}`
/// for names that are not UTF-8.
impl schemars::JsonSchema for RawName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RawName".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Bytes from the system: a string when they are UTF-8, else their hex digits",
            "oneOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "properties": {"hex": {"type": "string", "pattern": "^([0-9a-f]{2})*$"}},
                    "required": ["hex"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_names_serialise_as_strings() {
        let n = RawName::from("mp-ab12cd34");
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"mp-ab12cd34\"");
    }

    #[test]
    fn non_utf8_names_round_trip_through_hex() {
        let n = RawName(vec![b'a', 0xff, 0x00, b'\n']);
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, r#"{"hex":"61ff000a"}"#);
        let back: RawName = serde_json::from_str(&json).unwrap();
        assert_eq!(back, n);
        assert_eq!(n.to_lossy(), "a\\xff\u{0}\n");
    }

    #[test]
    fn terminal_escaping_neutralises_controls() {
        assert_eq!(escape_for_terminal("a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(escape_for_terminal("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape_for_terminal("tab\there\n"), "tab\\there\\n");
        assert_eq!(escape_for_terminal("\u{85}"), "\\x85");
        assert_eq!(escape_for_terminal("plain-ünïcode"), "plain-ünïcode");
    }
}
