//! RNGs for tests: a replay of fixed bytes, so outputs can be compared with
//! vectors computed elsewhere, and a seeded CSPRNG for "many draws" tests.

use core::convert::Infallible;

use rand::{SeedableRng, TryCryptoRng, TryRng, rngs::StdRng};

/// Hands out the given bytes in order, then zeros. Not random at all: it
/// claims `TryCryptoRng` only so that tests can pin the "random" inputs.
pub(crate) struct ReplayRng<'a>(pub(crate) &'a [u8]);

impl TryRng for ReplayRng<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let n = dst.len().min(self.0.len());
        let (now, later) = self.0.split_at(n);
        dst[..n].copy_from_slice(now);
        dst[n..].fill(0);
        self.0 = later;
        Ok(())
    }
}

impl TryCryptoRng for ReplayRng<'_> {}

/// A real CSPRNG with a fixed seed.
pub(crate) fn seeded(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Bytes 0, 1, …, 31 as "random" input, for known-answer vectors.
pub(crate) const COUNTING: [u8; 32] = {
    let mut bytes = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        bytes[i] = i as u8;
        i += 1;
    }
    bytes
};
