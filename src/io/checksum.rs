//! 64-bit checksums: detect corrupted or truncated files and identify problem files.
//! (Not cryptographic: they guard against accidents, not adversaries.)

/// FNV-1a over bytes: used for short keys (problem hashes, cache names).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// File checksum: the FNV-1a recurrence over little-endian 64-bit words (8× faster than bytewise
/// on large data files), then the trailing bytes, then the length; 16 hex digits.
pub fn hex(bytes: &[u8]) -> String {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut words = bytes.chunks_exact(8);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))).wrapping_mul(PRIME);
        h ^= h >> 29;
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
    }
    h = (h ^ bytes.len() as u64).wrapping_mul(PRIME);
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_values_and_sensitivity() {
        assert_eq!(format!("{:016x}", super::fnv1a64(b"a")), "af63dc4c8601ec8c");
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let base = super::hex(&data);
        for k in [0, 7, 8, 500, 999] {
            let mut flipped = data.clone();
            flipped[k] ^= 0x10;
            assert_ne!(super::hex(&flipped), base, "flip at {k}");
        }
        assert_ne!(super::hex(&data[..999]), base, "truncation");
    }
}
