//! The node's ed25519 key pair: signing and its public half. Where it is kept on disk is
//! the driver's business (`driver::key_file`).

use ed25519_dalek::{Signer, SigningKey};
use rand::TryRng as _;

use super::key::PublicKey;

/// The node's key pair. The public key is its identity in the federation: losing the
/// private key means becoming a new node, so it is never replaced silently.
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
    public: PublicKey,
}

/// The operating system's random number generator failed, so no key could be made.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

impl Identity {
    /// An identity from a fixed 32-byte secret: tests and simulations.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&seed);
        let public = PublicKey::from_bytes(signing.verifying_key().to_bytes());
        Self { signing, public }
    }

    /// A new identity from 32 bytes of operating-system randomness.
    pub fn generate() -> Result<Self, RandomError> {
        let mut seed = [0u8; 32];
        rand::rngs::SysRng
            .try_fill_bytes(&mut seed)
            .map_err(|err| RandomError(err.to_string()))?;
        let identity = Self::from_seed(seed);
        seed.fill(0);
        Ok(identity)
    }

    /// The 32-byte secret, to be written to the key file.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Signs `message` with the node's private key.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

impl std::fmt::Debug for Identity {
    // Never print the secret half.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public_key", &self.public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    #[test]
    fn debug_output_hides_the_secret() {
        let identity = Identity::from_seed([42; 32]);
        let text = format!("{identity:?}");
        assert!(text.contains(&identity.public_key().to_base64()));
        assert!(!text.contains(&STANDARD.encode([42u8; 32])));
    }
}
