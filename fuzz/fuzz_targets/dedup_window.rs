#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| naksha_insight_stream::fuzzing::dedup_window(data));
