//! Token and revocation request bodies (form, JSON, a form under a JSON label) with
//! an Authorization header, through the parsers the endpoints use.
#![no_main]

#[path = "../harness.rs"]
#[allow(dead_code)] // each target uses one entry point
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::request(data));
