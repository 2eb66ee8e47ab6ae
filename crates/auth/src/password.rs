//! Password hashing: argon2id, stored as a PHC string.
//!
//! The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) carries its
//! own algorithm, version, parameters and salt, so verification uses the
//! parameters a hash was made with, not the current ones. Raising the cost
//! later changes only new hashes; old ones keep verifying.
//!
//! Stored hashes are trusted input (they come from the node's own store): their
//! parameters are honoured as written, including their memory cost.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::CryptoRng;

use crate::{Error, PolicyViolation};

/// Memory cost in KiB, iterations and lanes: OWASP's Password Storage Cheat
/// Sheet first argon2id option (19 MiB, 2 passes, 1 lane). It costs a server
/// tens of milliseconds per login while making each guess of an offline attack
/// pay for 19 MiB of memory traffic, which is what blunts GPU cracking. One
/// lane because login is already parallel across requests.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
/// 256-bit output: the PHC and argon2 crates' default, ample for a verifier.
const OUTPUT_LEN: usize = 32;
/// 128-bit salt: the PHC string format's recommendation; unique per hash
/// with overwhelming probability.
const SALT_LEN: usize = 16;

/// Evaluated at compile time: out-of-range parameters fail the build, never a request.
const PARAMS: Params = match Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN)) {
    Ok(params) => params,
    Err(_) => panic!("argon2 parameters out of range"),
};

/// Minimum length in characters: NIST SP 800-63B (5.1.1.2) asks for at least
/// 8 and no composition rules. Counted in characters, as users count them.
const MIN_CHARS: usize = 8;
/// Maximum length in bytes: generous for pass phrases in any script (at least
/// 256 characters), while bounding the input a registration makes us hash.
const MAX_BYTES: usize = 1024;

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS)
}

/// Working memory for one hash, in 1 KiB blocks: 33 MiB, above glibc's
/// largest dynamic mmap threshold (32 MiB). An allocation that size is always
/// its own mapping, returned to the OS when dropped and — unlike a 19 MiB one
/// — it never raises the allocator's threshold, which otherwise makes every
/// later hash's memory stay resident (a few dozen log-ins held hundreds of
/// MiB). Only the blocks a hash uses are ever touched, so they alone become
/// resident, and only while the hash runs.
const SCRATCH_BLOCKS: usize = 33 * 1024;

fn hash_with_scratch(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let mut scratch = Vec::with_capacity(SCRATCH_BLOCKS.max(params.block_count()));
    scratch.resize(params.block_count(), Block::new());
    argon2.hash_password_into_with_memory(password, salt, out, &mut scratch[..])
}

/// Hashes `password` with argon2id under a fresh 16-byte salt from `rng`.
///
/// Returns the PHC string to store. Parameters: m=19456 KiB, t=2, p=1, the
/// OWASP recommendation (see `M_COST_KIB` for why).
///
/// # Errors
///
/// [`Error::Hashing`] if argon2 fails (out of memory, input beyond its limits).
pub fn hash_password(password: &str, rng: &mut (impl CryptoRng + ?Sized)) -> Result<String, Error> {
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    let mut out = [0u8; OUTPUT_LEN];
    hash_with_scratch(&argon2(), &PARAMS, password.as_bytes(), &salt, &mut out)
        .map_err(|e| Error::Hashing(e.into()))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&PARAMS).map_err(Error::Hashing)?,
        salt: Some(Salt::new(&salt).map_err(|e| Error::Hashing(e.into()))?),
        hash: Some(Output::new(&out).map_err(|e| Error::Hashing(e.into()))?),
    };
    Ok(hash.to_string())
}

/// Checks `password` against the stored PHC string `phc`, in constant time
/// with respect to the hash comparison.
///
/// Returns `Ok(false)` for a wrong password.
///
/// # Errors
///
/// [`Error::BadHash`] if `phc` does not parse, lacks its salt or hash, or names
/// something other than an argon2 variant with valid parameters.
pub fn verify_password(phc: &str, password: &str) -> Result<bool, Error> {
    let hash = PasswordHash::new(phc).map_err(|_| Error::BadHash)?;
    // Without these, a broken store would pass off as a wrong password.
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return Err(Error::BadHash);
    };
    let algorithm = Algorithm::try_from(hash.algorithm.as_str()).map_err(|_| Error::BadHash)?;
    let version = match hash.version {
        Some(v) => Version::try_from(v).map_err(|_| Error::BadHash)?,
        None => Version::default(),
    };
    let params = Params::try_from(&hash).map_err(|_| Error::BadHash)?;
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    hash_with_scratch(&argon2, &params, password.as_bytes(), salt, &mut out)
        .map_err(|_| Error::BadHash)?;
    let actual = Output::new(&out).map_err(|_| Error::BadHash)?;
    // `Output`'s equality is constant-time.
    Ok(actual == *expected)
}

/// The policy a new password must meet: at least 8 characters and at most
/// 1024 bytes. Nothing else: composition rules make passwords worse.
///
/// # Errors
///
/// [`Error::WeakPassword`] with the rule that failed.
pub fn check_password_policy(password: &str) -> Result<(), Error> {
    // Bytes first: cheap, and bounds the character count below.
    if password.len() > MAX_BYTES {
        return Err(Error::WeakPassword(PolicyViolation::TooLong {
            max_bytes: MAX_BYTES,
        }));
    }
    if password.chars().count() < MIN_CHARS {
        return Err(Error::WeakPassword(PolicyViolation::TooShort {
            min_chars: MIN_CHARS,
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::{ReplayRng, seeded};

    /// Produced by the argon2 reference implementation (libargon2 20171227,
    /// Debian's `libargon2-1`), through Python's ctypes:
    /// `argon2id_hash_encoded(2, 19456, 1, b"correct horse battery staple", 28,
    /// b"spaces-test-salt", 16, 32, buf, 256)`.
    const REFERENCE_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c3BhY2VzLXRlc3Qtc2FsdA$Vs9ugJeBhVffWyvr2EKQAriMW8AMDJt8oXCmjp97xIc";
    const REFERENCE_PASSWORD: &str = "correct horse battery staple";
    const REFERENCE_SALT: &[u8; 16] = b"spaces-test-salt";

    #[test]
    fn round_trip_and_wrong_password() {
        let phc = hash_password("hunter2hunter2", &mut seeded(1)).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(verify_password(&phc, "hunter2hunter2"), Ok(true));
        assert_eq!(verify_password(&phc, "hunter2hunter3"), Ok(false));
        assert_eq!(verify_password(&phc, ""), Ok(false));
    }

    #[test]
    fn salts_differ_between_hashes() {
        let mut rng = seeded(2);
        let first = hash_password("same password", &mut rng).unwrap();
        let second = hash_password("same password", &mut rng).unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn verifies_reference_hash() {
        assert_eq!(verify_password(REFERENCE_PHC, REFERENCE_PASSWORD), Ok(true));
        assert_eq!(
            verify_password(REFERENCE_PHC, "correct horse battery stapler"),
            Ok(false)
        );
    }

    #[test]
    fn output_matches_reference_for_same_salt() {
        let phc = hash_password(REFERENCE_PASSWORD, &mut ReplayRng(REFERENCE_SALT)).unwrap();
        assert_eq!(phc, REFERENCE_PHC);
    }

    #[test]
    fn unusable_stored_hashes_are_bad_hash() {
        let cases = [
            "",
            "not a hash",
            "$argon2id$v=19$m=19456,t=2,p=1",
            "$argon2id$v=19$m=19456,t=2,p=1$c3BhY2VzLXRlc3Qtc2FsdA",
            "$argon2id$v=19$m=19456,t=2,p=1$c3BhY2VzLXRlc3Qtc2FsdA$!!!",
            "$scrypt$ln=16,r=8,p=1$c3BhY2VzLXRlc3Qtc2FsdA$Vs9ugJeBhVffWyvr2EKQAriMW8AMDJt8oXCmjp97xIc",
            "$argon2id$v=99$m=19456,t=2,p=1$c3BhY2VzLXRlc3Qtc2FsdA$Vs9ugJeBhVffWyvr2EKQAriMW8AMDJt8oXCmjp97xIc",
            "$argon2id$v=19$m=1,t=2,p=1$c3BhY2VzLXRlc3Qtc2FsdA$Vs9ugJeBhVffWyvr2EKQAriMW8AMDJt8oXCmjp97xIc",
        ];
        for phc in cases {
            assert_eq!(
                verify_password(phc, REFERENCE_PASSWORD),
                Err(Error::BadHash),
                "{phc:?}"
            );
        }
    }

    #[test]
    fn policy() {
        let too_short = Err(Error::WeakPassword(PolicyViolation::TooShort {
            min_chars: 8,
        }));
        let too_long = Err(Error::WeakPassword(PolicyViolation::TooLong {
            max_bytes: 1024,
        }));
        let cases: [(String, Result<(), Error>); 7] = [
            (String::new(), too_short.clone()),
            ("1234567".into(), too_short.clone()),
            ("12345678".into(), Ok(())),
            // 8 characters, 16 bytes: counted as characters.
            ("пароль12".into(), Ok(())),
            ("пароль1".into(), too_short),
            ("x".repeat(1024), Ok(())),
            ("x".repeat(1025), too_long),
        ];
        for (password, expected) in cases {
            assert_eq!(check_password_policy(&password), expected, "{password:?}");
        }
    }
}
