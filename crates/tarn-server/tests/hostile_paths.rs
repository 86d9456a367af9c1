//! Request paths from a hostile client: an over-long scope, an upper-case hash (never a
//! second object), scopes with control characters (refused, never stored, so they cannot
//! reach `scrub`'s output, logs or the status page). Attacks on the socket itself (slow,
//! silent, oversized) are tested through the binary in `crates/tarn-cli/tests/`.

use tarn_test::{bytes_for, hash_hex};

use crate::harness::{key, Case, Req, Server};

const CI: &str = "ci:ci-secret";

fn server() -> Server {
    Server::start(&format!(
        "public_read = [\"*\"]\n{}",
        key("ci", &["main/*"], &[])
    ))
}

#[test]
fn an_over_long_path_is_a_400_and_an_upper_case_hash_is_not_a_second_object() {
    let srv = server();
    let long = "x".repeat(300);
    srv.check(vec![Case::new(
        "a 300-byte scope component",
        Req::get(&format!("/a0/{long}/0123456789abcdef.art")),
        400,
    )
    .code("KeyTooLongError")]);
    // The same artifact under an upper-case name and its own: one object, Lake's name.
    let body = bytes_for(4, 100);
    let h = hash_hex(&body);
    for name in [h.to_ascii_uppercase(), h.clone()] {
        let r = srv.send(Req::put(&format!("/a0/main/x/{name}.art"), body.clone()).signed(CI));
        assert!(
            r.status == 200 || (400..500).contains(&r.status),
            "{} {}",
            r.status,
            r.text()
        );
    }
    assert_eq!(srv.stored(), vec![format!("a0/main/x/{h}.art")]);
}

#[test]
fn a_scope_with_control_characters_is_refused_and_never_stored() {
    // Before the fix a key holder could store objects under a scope holding a terminal
    // escape and a line break (`x<ESC>[2J<LF>forged`): names that `scrub` prints and that
    // reach logs and the status page.
    let srv = server();
    let body = bytes_for(4, 100);
    let h = hash_hex(&body);
    let mut cases = Vec::new();
    for scope in ["x%1B%5B2J%0Aforged", "x%0D", "x%C2%9B31m", "x%7F"] {
        let url = format!("/a0/main/{scope}/{h}.art");
        cases.push(
            Case::new(
                format!("PUT {scope}"),
                Req::put(&url, body.clone()).signed(CI),
                400,
            )
            .contains("control character"),
        );
        cases.push(Case::new(format!("GET {scope}"), Req::get(&url), 400));
    }
    srv.check(cases);
    assert!(srv.stored().is_empty());
}

#[test]
fn a_scope_component_named_like_an_object_is_a_400_not_a_500() {
    // Issue 18, item 6: `PUT …/<h>.art/<h>.art` after `PUT …/<h>.art` was a 500 from the
    // file system (a directory where the object is).
    let srv = Server::start(&key("ci", &["*"], &[]));
    let art = tarn_test::artifacts(1, 7).remove(0);
    let h = &art.hash;
    srv.check(vec![
        Case::new(
            "the artifact",
            Req::put(&format!("/a0/main/x/{h}.art"), art.content.clone()).signed("ci:ci-secret"),
            200,
        )
        .stores(&[format!("a0/main/x/{h}.art")]),
        Case::new(
            "an artifact below it",
            Req::put(&format!("/a0/main/x/{h}.art/{h}.art"), art.content.clone())
                .signed("ci:ci-secret"),
            400,
        )
        .code("InvalidArgument"),
        Case::new(
            "a revision below a revision",
            Req::put(
                &format!("/r0/main/{}.jsonl/{}.jsonl", "1".repeat(40), "1".repeat(40)),
                "\"2026-03-17\"\n",
            )
            .signed("ci:ci-secret"),
            400,
        ),
        Case::new(
            "a read below it",
            Req::get(&format!("/a0/main/x/{h}.art/{h}.art")),
            404,
        ),
    ]);
}

#[test]
fn a_component_that_is_not_utf8_is_a_400_and_never_names_the_replacement_character() {
    // Issue 18, item 6: `%FF` was decoded leniently to U+FFFD, so it named the object
    // stored under `%EF%BF%BD`.
    let srv = Server::start(&format!(
        "public_read = [\"*\"]\n{}",
        key("ci", &["*"], &[])
    ));
    let art = tarn_test::artifacts(1, 8).remove(0);
    let h = &art.hash;
    srv.check(vec![
        Case::new(
            "stored under U+FFFD",
            Req::put(&format!("/a0/main/%EF%BF%BD/{h}.art"), art.content.clone()).signed(CI),
            200,
        )
        .stores(&[format!("a0/main/\u{fffd}/{h}.art")]),
        Case::new(
            "read back under U+FFFD",
            Req::get(&format!("/a0/main/%EF%BF%BD/{h}.art")),
            200,
        ),
        Case::new(
            "read under %FF",
            Req::get(&format!("/a0/main/%FF/{h}.art")),
            400,
        )
        .code("InvalidURI"),
        Case::new(
            "upload under %FF",
            Req::put(&format!("/a0/main/x%FFy/{h}.art"), art.content.clone()).signed(CI),
            400,
        )
        .code("InvalidURI"),
    ]);
}
