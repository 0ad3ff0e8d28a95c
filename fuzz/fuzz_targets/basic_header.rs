//! `Authorization` header values through the client_secret_basic decoder.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::basic_header(data));
