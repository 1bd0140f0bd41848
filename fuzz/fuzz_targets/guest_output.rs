//! What the guest programs and the container writer print, as each transport parses it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| phx_hook::fuzzing::guest_output(data));
