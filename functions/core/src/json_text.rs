//! What JSON text needs: whether a string can be written between quotes as it is.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes of `w` must be escaped in a JSON string: below 0x20, `"` or `\`.
#[inline]
fn word_needs_escape(w: u64) -> bool {
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = w ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (control | quote | backslash) & HIGH != 0
}

/// Whether any byte of `b` must be escaped in a JSON string (a control character, `"` or `\`),
/// looked at eight bytes at a time.
#[inline]
pub fn needs_escape(b: &[u8]) -> bool {
    let mut words = b.chunks_exact(8);
    for chunk in &mut words {
        if word_needs_escape(u64::from_le_bytes(chunk.try_into().unwrap_or_default())) {
            return true;
        }
    }
    words.remainder().iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one_at_a_time(b: &[u8]) -> bool {
        b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\')
    }

    #[test]
    fn each_kind_of_byte_at_each_position_of_a_word() {
        for bad in [0u8, 0x1f, b'"', b'\\', b'\n'] {
            for len in 1..20 {
                for at in 0..len {
                    let mut b = vec![b'a'; len];
                    b[at] = bad;
                    assert!(needs_escape(&b), "{bad:#x} at {at} of {len}");
                }
            }
        }
        for fine in [b' ', b'~', 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']'] {
            assert!(!needs_escape(&[fine; 17]), "{fine:#x}");
        }
    }

    proptest! {
        #[test]
        fn eight_at_a_time_is_one_at_a_time(b in proptest::collection::vec(any::<u8>(), 0..64), t in "[\u{0}-\u{7f}]{0,40}") {
            prop_assert_eq!(needs_escape(&b), one_at_a_time(&b));
            prop_assert_eq!(needs_escape(t.as_bytes()), one_at_a_time(t.as_bytes()));
        }
    }
}
