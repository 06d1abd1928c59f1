//! Fuzzing the daemon's decoder of client lines: whatever a client sends, decoding returns a
//! message or the error reply to send, and never panics. The corpus in `tests/corpus/` keeps
//! the inputs worth replaying (valid requests of every kind, and broken ones); proptest's
//! failures, if any, are kept in `proptest-regressions/`.

use buildd_daemon::protocol::{ErrorCode, ServerMessage, decode_request};
use proptest::prelude::*;

fn corpus(name: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

fn is_bad_request(result: &Result<impl std::fmt::Debug, Box<ServerMessage>>) -> bool {
    matches!(
        result.as_ref().map_err(|e| &**e),
        Err(ServerMessage::Error {
            code: ErrorCode::BadRequest,
            ..
        })
    )
}

#[test]
fn every_valid_request_of_the_corpus_decodes_and_round_trips() {
    for line in corpus("requests.jsonl") {
        let message = decode_request(&line).unwrap_or_else(|e| panic!("{line}: {e:?}"));
        let again = serde_json::to_string(&message).unwrap();
        assert_eq!(decode_request(&again).unwrap(), message, "{line}");
    }
}

#[test]
fn every_invalid_line_of_the_corpus_is_a_bad_request_with_its_id_when_readable() {
    for line in corpus("invalid.jsonl") {
        let result = decode_request(&line);
        assert!(is_bad_request(&result), "{line}: {result:?}");
        let id = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v.get("id")?.as_u64());
        if let Err(error) = result
            && let ServerMessage::Error { id: replied, .. } = *error
        {
            assert_eq!(replied, id, "{line}");
        }
    }
}

/// A line of the corpus with a mutation: cut short, a byte range replaced, or junk inserted.
fn mutated() -> impl Strategy<Value = String> {
    let lines = corpus("requests.jsonl");
    (
        0..lines.len(),
        any::<u8>(),
        0usize..400,
        0usize..400,
        ".{0,40}",
    )
        .prop_map(move |(index, kind, at, len, junk)| {
            let line = &lines[index];
            let at = at.min(line.len());
            let end = (at + len).min(line.len());
            let (at, end) = (floor_char(line, at), floor_char(line, end));
            match kind % 3 {
                0 => line[..at].to_owned(),
                1 => format!("{}{junk}{}", &line[..at], &line[end..]),
                _ => format!("{}{junk}{}", &line[..at], &line[at..]),
            }
        })
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn decoding_a_mutated_request_never_panics(line in mutated()) {
        match decode_request(&line) {
            Ok(message) => {
                // Whatever decodes is a request that encodes back to itself.
                let again = serde_json::to_string(&message).unwrap();
                prop_assert_eq!(decode_request(&again).unwrap(), message);
            }
            Err(error) => prop_assert!(is_bad_request(&Err::<(), _>(error))),
        }
    }

    #[test]
    fn decoding_arbitrary_text_never_panics(line in "\\PC{0,300}") {
        let result = decode_request(&line);
        prop_assert!(result.is_ok() || is_bad_request(&result));
    }
}
