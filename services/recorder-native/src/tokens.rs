//! Deterministic keyed tokens, byte for byte those of `golive_cli.recorder.desensitise.Tokeniser`
//! (HMAC-SHA256 with the capture key). tests/replay/test_native.py checks the two agree.

use hmac::{Hmac, Mac};
use rustc_hash::FxHashMap;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Distinct string tokens remembered: customers and emails repeat across a window's events.
const CACHE_LIMIT: usize = 65_536;

pub struct Tokens {
    mac: HmacSha256,
    strings: FxHashMap<Vec<u8>, Vec<u8>>,
}

impl Tokens {
    pub fn new(key: &[u8]) -> Self {
        let mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
        Tokens {
            mac,
            strings: FxHashMap::default(),
        }
    }

    pub fn digest(&self, value: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(value);
        mac.finalize().into_bytes().into()
    }

    /// Appends the token of a string (given as its UTF-8 bytes, already checked) to `out` as
    /// Avro writes it: a length, then the token.
    pub fn string_framed(&mut self, raw: &[u8], text: &str, out: &mut Vec<u8>) {
        if let Some(found) = self.strings.get(raw) {
            out.extend_from_slice(found);
            return;
        }
        let mut framed = Vec::new();
        put_framed(&mut framed, self.token(text).as_bytes());
        out.extend_from_slice(&framed);
        if self.strings.len() >= CACHE_LIMIT {
            self.strings.clear();
        }
        self.strings.insert(raw.to_vec(), framed);
    }

    /// `Tokeniser.token`: a card token keeps its last four digits, an email stays an email.
    pub fn token(&self, value: &str) -> String {
        let hexed = hex(&self.digest(value.as_bytes()));
        if let Some(last4) = card_last4(value) {
            return format!("tok_{}_{}", &hexed[..24], last4);
        }
        if is_email(value) {
            return format!("u{}@example.com", &hexed[..20]);
        }
        format!("p{}", &hexed[..16])
    }

    /// `Tokeniser.scalar` for an int (31 bits) or a long (63 bits): of the decimal text.
    pub fn integer(&self, value: i128, bits: u32) -> i128 {
        let digest = self.digest(value.to_string().as_bytes());
        let head = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        i128::from(head % (1u64 << bits))
    }

    /// `Tokeniser.scalar` for a UUID: a version 4 UUID from the digest of its 16 bytes.
    pub fn uuid(&self, value: &[u8; 16]) -> [u8; 16] {
        let digest = self.digest(value);
        let mut out: [u8; 16] = digest[..16].try_into().expect("16 bytes");
        out[6] = (out[6] & 0x0f) | 0x40;
        out[8] = (out[8] & 0x3f) | 0x80;
        out
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Avro's zig-zag varint.
pub fn write_long(value: i128, out: &mut Vec<u8>) {
    // Python's (v << 1) ^ (v >> 63) on the values capture writes (lengths and tokens, < 2**63).
    let mut n = ((value << 1) ^ (value >> 63)) as u128;
    while n & !0x7f != 0 {
        out.push(((n & 0x7f) as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends `token` as Avro writes bytes and strings: its length, then itself.
pub fn put_framed(out: &mut Vec<u8>, token: &[u8]) {
    write_long(token.len() as i128, out);
    out.extend_from_slice(token);
}

/// What Python's `$` matches before: the end, or a newline that ends the string.
fn before_final_newline(value: &str) -> &str {
    value.strip_suffix('\n').unwrap_or(value)
}

/// `^tok_[A-Za-z0-9]+_([0-9]{4})$`: the last four digits of a card token.
fn card_last4(value: &str) -> Option<&str> {
    let body = before_final_newline(value).strip_prefix("tok_")?;
    let (id, last4) = body.rsplit_once('_')?;
    let ok = !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
        && last4.len() == 4
        && last4.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(last4)
}

/// Python's `\s` in a str pattern: `str.isspace()`, which also counts the information
/// separators U+001C to U+001F that Unicode's White_Space does not.
fn python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `^[^@\s]+@[^@\s]+\.[^@\s]+$`: one `@`, no space, a dot inside the domain.
fn is_email(value: &str) -> bool {
    let body = before_final_newline(value);
    if body.chars().any(python_space) {
        return false;
    }
    let Some((local, domain)) = body.split_once('@') else {
        return false;
    };
    if local.is_empty() || domain.contains('@') || domain.len() < 3 {
        return false;
    }
    // A dot with at least one character before it and one after it, within the domain.
    domain.as_bytes()[1..domain.len() - 1].contains(&b'.')
}

/// Python's `uuid.UUID(text)` on the forms it accepts: `urn:` and `uuid:` dropped, braces
/// stripped, hyphens anywhere, 32 hex digits. (Python also lets int() read signs, spaces and
/// underscores there; no UUID writer does that, and such a record is left out as undecodable.)
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    if let Some(found) = parse_canonical_uuid(text.as_bytes()) {
        return Some(found);
    }
    let stripped = text.replace("urn:", "").replace("uuid:", "");
    let digits = stripped
        .trim_matches(|c| c == '{' || c == '}')
        .replace('-', "");
    if digits.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in digits.as_bytes().chunks_exact(2).enumerate() {
        out[i] = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Some(out)
}

/// The form every writer uses, `8-4-4-4-12` hex digits, read straight from the bytes. A table,
/// not branches: the digits of random UUIDs defeat branch prediction.
pub fn parse_canonical_uuid(raw: &[u8]) -> Option<[u8; 16]> {
    const DIGITS: [usize; 32] = [
        0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 19, 20, 21, 22, 24, 25, 26, 27, 28,
        29, 30, 31, 32, 33, 34, 35,
    ];
    let raw: &[u8; 36] = raw.try_into().ok()?;
    if raw[8] != b'-' || raw[13] != b'-' || raw[18] != b'-' || raw[23] != b'-' {
        return None;
    }
    let mut out = [0u8; 16];
    let mut invalid = 0u8;
    for (i, byte) in out.iter_mut().enumerate() {
        let (high, low) = (
            HEX[usize::from(raw[DIGITS[2 * i]])],
            HEX[usize::from(raw[DIGITS[2 * i + 1]])],
        );
        invalid |= high | low;
        *byte = (high << 4) | (low & 0x0f);
    }
    (invalid & 0xf0 == 0).then_some(out)
}

/// Each byte's value as a hex digit; 0xff if it is none.
static HEX: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

fn hex_value(digit: u8) -> Option<u8> {
    let value = HEX[usize::from(digit)];
    (value != 0xff).then_some(value)
}

pub fn format_uuid(bytes: &[u8; 16]) -> String {
    let h = hex(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_as_python_matches_them() {
        assert!(is_email("a@b.c"));
        assert!(is_email("a@b.c\n"));
        assert!(!is_email("a@b.c\n\n"));
        assert!(!is_email("a@.bc"));
        assert!(!is_email("a@bc."));
        assert!(is_email("a@b..c"));
        assert!(!is_email("a@b@c.d"));
        assert!(!is_email("a\u{1c}@b.c"));
        assert!(!is_email("@b.c"));
    }

    #[test]
    fn card_tokens_as_python_matches_them() {
        assert_eq!(card_last4("tok_abc_1234"), Some("1234"));
        assert_eq!(card_last4("tok_abc_1234\n"), Some("1234"));
        assert_eq!(card_last4("tok__1234"), None);
        assert_eq!(card_last4("tok_a_b_1234"), None);
        assert_eq!(card_last4("tok_abc_123"), None);
    }

    #[test]
    fn uuids_in_the_forms_python_reads() {
        let want = parse_uuid("12345678-1234-5678-1234-567812345678").unwrap();
        assert_eq!(parse_uuid("{12345678123456781234567812345678}"), Some(want));
        assert_eq!(
            parse_uuid("urn:uuid:12345678-1234-5678-1234-567812345678"),
            Some(want)
        );
        assert_eq!(parse_uuid("12345678-1234-5678-1234-56781234567"), None);
        assert_eq!(format_uuid(&want), "12345678-1234-5678-1234-567812345678");
    }
}
