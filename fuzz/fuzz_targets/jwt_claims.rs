#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| naksha_core::fuzzing::jwt_claims(data));
