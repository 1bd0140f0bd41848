//! A host key or recipients file: armor, several blocks, binary packets.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| phx_hook::fuzzing::key_file(data));
