//! Lowercase RFC 4648 base32 without padding: the text form of every 32-byte
//! identifier (node ids, event ids, room ids). Lowercase because ids end up in
//! URLs and user ids, which are compared case-sensitively; no padding because
//! every id has a fixed length (32 bytes ↔ 52 characters).

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Encodes `bytes` as lowercase unpadded base32.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u16 = 0;
    let mut n_bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u16::from(byte);
        n_bits += 8;
        while n_bits >= 5 {
            n_bits -= 5;
            out.push(ALPHABET[usize::from((buffer >> n_bits) & 31)] as char);
        }
    }
    if n_bits > 0 {
        out.push(ALPHABET[usize::from((buffer << (5 - n_bits)) & 31)] as char);
    }
    out
}

/// Decodes lowercase unpadded base32 into exactly `N` bytes. Rejects other
/// lengths, foreign characters and non-zero trailing bits, so every id has
/// exactly one text form.
pub fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != (N * 8).div_ceil(5) {
        return None;
    }
    let mut out = [0u8; N];
    let mut buffer: u16 = 0;
    let mut n_bits = 0u32;
    let mut i = 0;
    for c in text.bytes() {
        let value = match c {
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u16::from(value);
        n_bits += 5;
        if n_bits >= 8 {
            n_bits -= 8;
            *out.get_mut(i)? = (buffer >> n_bits) as u8;
            i += 1;
        }
    }
    // Leftover bits must be zero padding, or two texts would name one id.
    if i != N || buffer & ((1 << n_bits) - 1) != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors_lowercased() {
        // RFC 4648 §10, without padding and in lowercase.
        let cases = [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(encode(plain.as_bytes()), encoded, "{plain}");
        }
    }

    #[test]
    fn round_trip_and_canonical() {
        let bytes: [u8; 32] = core::array::from_fn(|i| (i * 37 + 11) as u8);
        let text = encode(&bytes);
        assert_eq!(text.len(), 52);
        assert_eq!(decode::<32>(&text), Some(bytes));
        // Uppercase, wrong length, bad alphabet and dirty trailing bits are refused.
        assert_eq!(decode::<32>(&text.to_uppercase()), None);
        assert_eq!(decode::<32>(&text[..51]), None);
        assert_eq!(decode::<32>(&format!("{}1", &text[..51])), None);
        // 256 bits fill 51 characters and one bit of the 52nd; its four low
        // bits are padding and must be zero.
        let alphabet = ALPHABET;
        let last = alphabet
            .iter()
            .position(|&c| c == text.as_bytes()[51])
            .unwrap();
        let mut dirty = text[..51].to_string();
        dirty.push(alphabet[last ^ 1] as char);
        assert_eq!(decode::<32>(&dirty), None);
    }
}
