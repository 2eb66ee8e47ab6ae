//! The media fuzz target's checks (`fuzz/src/media_checks.rs`) on stable:
//! deterministic mutations of valid images (bit flips, overwrites,
//! truncations, forged canvas sizes) and random names.

#[path = "../../../fuzz/src/media_checks.rs"]
mod media_checks;

use media_checks::{check_media, check_name};

/// A small deterministic generator (xorshift): the same cases every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        if data.is_empty() {
            break;
        }
        let at = rng.below(data.len());
        match rng.below(4) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = rng.next() as u8,
            2 => data.truncate(at),
            _ => data.insert(at, rng.next() as u8),
        }
    }
    data
}

#[test]
fn mutated_images_never_panic_or_escape_the_bounds() {
    let seeds: Vec<(u8, Vec<u8>)> = vec![
        (0, spaces_blobs::fixtures::jpeg_with_exif(40, 30)),
        (1, spaces_blobs::fixtures::png_with_text(20, 20)),
        (1, spaces_blobs::fixtures::png_bomb(5000, 5000)),
        (1, spaces_blobs::fixtures::png_bomb(600, 600)),
    ];
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    for (mode, seed) in &seeds {
        check_media(&[&[*mode][..], seed].concat());
    }
    for _ in 0..600 {
        let (mode, seed) = &seeds[rng.below(seeds.len())];
        let mode = if rng.below(8) == 0 {
            rng.next() as u8
        } else {
            *mode
        };
        let file = mutate(&mut rng, seed);
        check_media(&[&[mode][..], &file].concat());
    }
}

#[test]
fn random_names_sanitize_safely() {
    let alphabet: Vec<char> = "ab./\\\"; \u{202E}\u{200B}\u{FEFF}\r\n\0é日…:*?"
        .chars()
        .collect();
    let mut rng = Rng(42);
    for _ in 0..5000 {
        let len = rng.below(300);
        let name: String = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        check_name(&name);
    }
}
