//! One integration-test binary (STYLE.md §5.5): the real `phx-hook` binary against
//! keys and vaults made by the real `gpg`.

#![allow(unreachable_pub, missing_docs)]

mod authoring;
mod cli;
mod cluster;
mod early;
mod envfile;
mod guests;
mod hook;
mod hostile_agent;
mod hostile_guest;
mod hostile_vault;
mod inputs;
mod journal;
mod lifecycle;
mod lxc;
mod qga;
mod ram;
mod reconcile;
mod scan;
mod sim;
mod util;
mod vault;
mod vm;
