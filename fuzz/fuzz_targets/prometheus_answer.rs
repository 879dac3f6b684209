#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| naksha_agent::fuzzing::prometheus_answer(data));
