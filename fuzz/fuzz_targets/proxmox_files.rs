//! A Proxmox guest config and a storage.cfg.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        phx_hook::fuzzing::proxmox_files(text);
    }
});
