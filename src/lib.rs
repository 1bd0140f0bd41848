//! phx-hook keeps the secrets of a Proxmox VE host out of scripts and configs: one
//! OpenPGP-encrypted JSON vault, per-guest YAML manifests, and a hookscript that
//! delivers each guest's secrets when it starts.
//!
//! The library is the program; `main.rs` only calls [`cli::run`]. There are no semantic
//! version guarantees for the library interface: it is public so that the integration
//! tests and benchmarks can reach the parts they measure.
//!
//! Dependency direction (STYLE.md §5.2): `types` ← `input` ← `config`, `manifest`,
//! `vault` ← `plan` ← `cli`. Nothing below `cli` prints or knows clap.

#![deny(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod deliver;
pub mod early;
pub mod engine;
pub mod error;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod hardening;
pub mod hook;
pub mod input;
pub mod logging;
pub mod manifest;
pub mod plan;
pub mod pve;
pub mod register;
pub mod scan;
#[allow(unsafe_code)]
pub(crate) mod sys;
pub mod text;
pub mod types;
pub mod vault;
