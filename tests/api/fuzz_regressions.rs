//! Replays every input under `fuzz/regressions/` through the fuzz harness, so that
//! a defect the fuzzer once found stays fixed in a normal `cargo test`.

use std::path::Path;

#[path = "../../fuzz/harness.rs"]
mod harness;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let input = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&input));
        assert!(outcome.is_ok(), "{} fails again", path.display());
        replayed += 1;
    }
    assert!(replayed > 0, "no regression inputs in {}", dir.display());
}

#[test]
fn request_parser_regressions_stay_fixed() {
    replay("request", harness::request);
}

#[test]
fn basic_header_regressions_stay_fixed() {
    replay("basic_header", harness::basic_header);
}

// Between on-demand cargo-fuzz runs, every `cargo test` also throws a bounded number
// of random inputs at the same harness (no coverage guidance, but the same checks:
// no panic, every refusal a 4xx RFC 6749 error, no secret in a Debug output).
proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 2000, ..Default::default() })]

    #[test]
    fn random_requests_never_break_the_parsers(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        harness::request(&input);
    }

    #[test]
    fn random_form_and_json_shaped_bodies_never_break_the_parsers(
        selector in 0u8..6,
        body in proptest::collection::vec(
            proptest::sample::select(b"grant_typepaswordusernmefhk_=&%+{}\":,[]0123456789ABCDEF \\".to_vec()),
            0..300,
        ),
    ) {
        // Layout: content type selector, an empty header, then the body.
        let mut input = vec![selector, 0];
        input.extend(body);
        harness::request(&input);
    }

    #[test]
    fn random_basic_headers_never_break_the_decoder(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
        harness::basic_header(&input);
    }
}
