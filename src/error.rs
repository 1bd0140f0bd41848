//! The crate-level error: every module's error, collected for the CLI edge, with the
//! advice line (`hint:`) that goes with it. Exit codes are in [`crate::cli::Exit`].

use crate::input::InputError;
use crate::manifest::ManifestError;
use crate::pve::GuestConfigError;
use crate::vault::VaultError;

/// Anything that stops a command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Config or another input file.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A manifest (possibly several problems).
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The vault or host key.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A guest's Proxmox config.
    #[error(transparent)]
    Guest(#[from] GuestConfigError),
    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Input(e) => e.hint(),
            Error::Vault(e) => e.hint(),
            _ => None,
        }
    }
}
