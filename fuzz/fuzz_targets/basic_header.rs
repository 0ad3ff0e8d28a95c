//! `Authorization` header values through the client_secret_basic decoder.
#![no_main]

#[path = "../harness.rs"]
#[allow(dead_code)] // each target uses one entry point
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::basic_header(data));
