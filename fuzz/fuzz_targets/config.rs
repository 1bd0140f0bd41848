//! The host config (and its durations and sizes).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        phx_hook::fuzzing::config(text);
    }
});
