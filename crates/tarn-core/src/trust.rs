//! tarn's signed revisions (docs/trust.md): Ed25519 keys in OpenSSH's encodings
//! ([`PublicKey`], [`SecretKey`], trusted-key lists) and the versioned signature object
//! `<rev>.jsonl.sig` ([`Manifest`], [`SignatureFile`]) that binds a revision file and every
//! artifact it names to their SHA-256. Pure: no files, no clock, no randomness.

mod keys;
mod signature;

pub use keys::{parse_trusted_keys, KeyError, PublicKey, SecretKey, TrustedKey};
pub use signature::{
    signed_place, Expected, FieldError, Manifest, SignatureFile, StrongDigest, StrongHasher,
    TrustError, SIGNATURE_SHA256_HEADER, SIGNATURE_SUFFIX,
};

#[cfg(test)]
mod tests;
