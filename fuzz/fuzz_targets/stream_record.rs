#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| naksha_insight_stream::fuzzing::stream_record(data));
