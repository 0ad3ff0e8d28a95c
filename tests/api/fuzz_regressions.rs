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
