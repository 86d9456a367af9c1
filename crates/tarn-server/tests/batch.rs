//! The batch existence API (`POST /a0/<scope>/?tarn-missing`, docs/server-api.md): both
//! body forms, the scope's read permission, bad hashes refused, requests and hashes counted.

use tarn_test::{bytes_for, hash_hex};

use crate::harness::{Case, Req, Server};

const CI: &str = "ci:ci-secret";

#[test]
fn batch_answers_which_hashes_a_scope_lacks() {
    let srv = Server::start(
        "public_read = [\"pub/*\"]\n[[key]]\nid = \"ci\"\nsecret = \"ci-secret\"\nwrite = [\"*\"]\n",
    );
    let b0 = bytes_for(3, 100);
    let (h0, h1) = (hash_hex(&b0), hash_hex(&bytes_for(4, 100)));
    let ask = |scope: &str, body: String| Req::post(&format!("/a0/{scope}/?tarn-missing"), body);
    srv.check(vec![
        Case::new(
            "upload pub",
            Req::put(&format!("/a0/pub/a/{h0}.art"), b0.clone()).signed(CI),
            200,
        ),
        Case::new(
            "upload priv",
            Req::put(&format!("/a0/priv/a/{h0}.art"), b0.clone()).signed(CI),
            200,
        ),
        Case::new(
            "array form, anonymous, public scope",
            ask("pub/a", format!("[\"{h0}\",\"{h1}\"]")),
            200,
        )
        .contains(format!("\"missing\":[\"{h1}\"]"))
        .contains("\"version\":1"),
        Case::new(
            "object form",
            ask("pub/a", format!("{{\"hashes\":[\"{h1}\"]}}")),
            200,
        )
        .contains(h1.clone()),
        Case::new("anonymous, private scope", ask("priv/a", "[]".into()), 403).code("AccessDenied"),
        Case::new(
            "signed, private scope",
            ask("priv/a", format!("[\"{h0}\"]")).signed(CI),
            200,
        )
        .contains("\"missing\":[]"),
        Case::new("not a hash", ask("pub/a", "[\"zz\"]".into()), 400),
    ]);
    assert_eq!(srv.metric("tarn_batch_requests_total", ""), 3);
    assert_eq!(srv.metric("tarn_batch_hashes_total", ""), 4);
}
