#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| naksha_chaos::fuzzing::chaos_spec(data));
