//! The key/length/value list that ends `F` and `X` frames.

use crate::DecodeError;

/// Field keys, as listed in `docs/protocol.md`.
#[allow(missing_docs)]
pub mod key {
    pub const EXIT_STATUS: u8 = 1;
    pub const EXIT_CODE: u8 = 2;
    pub const SIGNAL: u8 = 3;
    pub const SIGNAL_NAME: u8 = 4;
    pub const WALL_TIME_US: u8 = 5;
    pub const USER_TIME_US: u8 = 6;
    pub const SYSTEM_TIME_US: u8 = 7;
    pub const PEAK_MEMORY: u8 = 8;
    pub const PEAK_PROCESSES: u8 = 9;
    pub const OOM_KILLS: u8 = 10;
    pub const PIDS_LIMIT_HITS: u8 = 11;
    pub const CONTAINMENT: u8 = 12;
    pub const ERRNO: u8 = 32;
    pub const ERRNO_NAME: u8 = 33;
    pub const STAGE: u8 = 34;
    pub const MESSAGE: u8 = 35;
}

/// One field's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// An integer, 8 bytes on the wire.
    Int(u64),
    /// UTF-8 text.
    Text(String),
}

/// An ordered list of `(key, value)` fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(pub Vec<(u8, Field)>);

/// Keys whose values are text; every other known key is an integer.
fn is_text(key: u8) -> bool {
    matches!(
        key,
        key::SIGNAL_NAME | key::ERRNO_NAME | key::STAGE | key::MESSAGE
    )
}

impl Fields {
    /// Appends an integer field.
    pub fn int(mut self, key: u8, value: u64) -> Self {
        self.0.push((key, Field::Int(value)));
        self
    }

    /// Appends a text field, cut to what fits in a u16 length.
    pub fn text(mut self, key: u8, value: &str) -> Self {
        let mut end = value.len().min(u16::MAX as usize);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        self.0.push((key, Field::Text(value[..end].to_owned())));
        self
    }

    /// The first integer stored under `key`.
    pub fn get_int(&self, key: u8) -> Option<u64> {
        self.0.iter().find_map(|(k, v)| match v {
            Field::Int(n) if *k == key => Some(*n),
            _ => None,
        })
    }

    /// The first text stored under `key`.
    pub fn get_text(&self, key: u8) -> Option<&str> {
        self.0.iter().find_map(|(k, v)| match v {
            Field::Text(s) if *k == key => Some(s.as_str()),
            _ => None,
        })
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            out.push(*k);
            match v {
                Field::Int(n) => {
                    out.extend_from_slice(&8u16.to_be_bytes());
                    out.extend_from_slice(&n.to_be_bytes());
                }
                Field::Text(s) => {
                    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
        out
    }

    /// Decodes fields; unknown keys are skipped, as the protocol requires.
    pub(crate) fn decode(tag: u8, mut p: &[u8]) -> Result<Fields, DecodeError> {
        let mut fields = Vec::new();
        while !p.is_empty() {
            if p.len() < 3 {
                return Err(DecodeError::Truncated(tag));
            }
            let key = p[0];
            let len = u16::from_be_bytes([p[1], p[2]]) as usize;
            let value = p.get(3..3 + len).ok_or(DecodeError::Truncated(tag))?;
            p = &p[3 + len..];
            let known_int = matches!(key, 1..=12 | key::ERRNO);
            if is_text(key) {
                let s = String::from_utf8(value.to_vec()).map_err(|_| DecodeError::BadText(tag))?;
                fields.push((key, Field::Text(s)));
            } else if known_int {
                let b: [u8; 8] = value.try_into().map_err(|_| DecodeError::Truncated(tag))?;
                fields.push((key, Field::Int(u64::from_be_bytes(b))));
            }
        }
        Ok(Fields(fields))
    }
}
