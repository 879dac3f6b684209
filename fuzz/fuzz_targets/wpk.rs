#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| naksha_contracts::fuzzing::wpk_document(data));
