//! The `phx-hook` binary: parse, dispatch, exit. Everything else is in the library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    phx_hook::cli::run(std::env::args_os())
}
