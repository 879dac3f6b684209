#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| naksha_policy::fuzzing::audit_lines(data));
