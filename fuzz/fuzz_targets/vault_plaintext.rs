//! A vault's decrypted JSON, indexed whole and in part, and read as a document.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| phx_hook::fuzzing::vault_plaintext(data));
