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
            c if is_hidden_or_control(c) => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{{{n:x}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Characters that do not show as themselves: control characters (C0, C1,
/// DEL), line and paragraph separators, and invisible format characters —
/// bidirectional marks, overrides and isolates, zero-width characters, the
/// soft hyphen, tags. A name holding one can look like another name, or
/// reorder the text around it, on a terminal or in a pasted command.
pub fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{034f}'
                | '\u{061c}'
                | '\u{0600}'..='\u{0605}'
                | '\u{06dd}'
                | '\u{070f}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{17b4}'
                | '\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{110bd}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0000}'..='\u{e0fff}'
        )
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
            Repr::Hex { hex } => decode_hex(&hex)
                .map(RawName)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// `"61ff"` → `[0x61, 0xff]`. Works on bytes, so any text (a hostile
/// snapshot's non-ASCII "hex") is an error, never a panic.
fn decode_hex(hex: &str) -> Result<Vec<u8>, &'static str> {
    fn nibble(b: u8) -> Result<u8, &'static str> {
        match b {
            b'0'..=b'9' => Ok(b - b'0'),
            b'a'..=b'f' => Ok(b - b'a' + 10),
            b'A'..=b'F' => Ok(b - b'A' + 10),
            _ => Err("a hex name holds a character that is not a hex digit"),
        }
    }
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err("odd-length hex name");
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Ok(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
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
    fn hex_names_with_non_ascii_are_an_error_not_a_panic() {
        for bad in [
            r#"{"hex":"0é0"}"#,
            r#"{"hex":"é"}"#,
            r#"{"hex":"zz"}"#,
            r#"{"hex":"abc"}"#,
        ] {
            assert!(serde_json::from_str::<RawName>(bad).is_err(), "{bad}");
        }
        let ok: RawName = serde_json::from_str(r#"{"hex":"41Ff"}"#).unwrap();
        assert_eq!(ok, RawName(vec![0x41, 0xff]));
    }

    #[test]
    fn terminal_escaping_neutralises_controls() {
        assert_eq!(escape_for_terminal("a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(escape_for_terminal("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape_for_terminal("tab\there\n"), "tab\\there\\n");
        assert_eq!(escape_for_terminal("\u{85}"), "\\x85");
        assert_eq!(
            escape_for_terminal("a\u{2028}b\u{200b}"),
            "a\\u{2028}b\\u{200b}"
        );
        assert_eq!(escape_for_terminal("plain-ünïcode"), "plain-ünïcode");
    }
}
