//! A manifest, and the same text as a template.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        phx_hook::fuzzing::manifest(text);
    }
});
