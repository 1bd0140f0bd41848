//! One line from a guest agent, read as every reply phx-hook expects.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| phx_hook::fuzzing::agent_reply(data));
