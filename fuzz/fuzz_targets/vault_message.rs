//! A vault message, decrypted with the fuzz host key (fuzz/keys/host.key, made by gpg).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phx_hook::fuzzing::vault_message(include_bytes!("../keys/host.key"), data);
});
