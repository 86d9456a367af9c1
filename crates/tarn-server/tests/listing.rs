//! S3 listing (ListBuckets, HeadBucket, ListObjectsV2): only for admin keys, and only the
//! scopes the key administers; `GET /` without a signature is the status page instead.

use tarn_test::{bytes_for, hash_hex};

use crate::harness::{key, Case, Req, Server};

const CI: &str = "ci:ci-secret";
const TEAM: &str = "team:team-secret";

#[test]
fn listing_needs_an_admin_key_and_shows_only_its_scopes() {
    let srv = Server::start(
        &[
            key("ci", &["*"], &["*"]),
            key("team", &["team/*"], &["team/*"]),
            key("writer", &["*"], &[]),
        ]
        .join("\n"),
    );
    let (a, b) = (bytes_for(1, 50), bytes_for(2, 50));
    let (ha, hb) = (hash_hex(&a), hash_hex(&b));
    srv.check(vec![
        Case::new(
            "upload main",
            Req::put(&format!("/a0/main/x/{ha}.art"), a).signed(CI),
            200,
        ),
        Case::new(
            "upload team",
            Req::put(&format!("/a0/team/y/{hb}.art"), b).signed(CI),
            200,
        ),
        Case::new("ListBuckets", Req::get("/").signed(CI), 200)
            .contains("<Name>a0</Name>")
            .contains("<Name>r0</Name>"),
        Case::new(
            "ListBuckets with a key that is not admin",
            Req::get("/").signed("writer:writer-secret"),
            403,
        )
        .code("AccessDenied"),
        Case::new(
            "ListObjectsV2, all scopes",
            Req::get("/a0?list-type=2").signed(CI),
            200,
        )
        .contains(format!("<Key>main/x/{ha}.art</Key>"))
        .contains(format!("<Key>team/y/{hb}.art</Key>")),
        Case::new(
            "ListObjectsV2, a team admin",
            Req::get("/a0?list-type=2").signed(TEAM),
            200,
        )
        .contains(format!("<Key>team/y/{hb}.art</Key>"))
        .lacks("main/x"),
        Case::new(
            "with a delimiter",
            Req::get("/a0?list-type=2&delimiter=/").signed(CI),
            200,
        )
        .contains("<Prefix>main/</Prefix>")
        .lacks("<Key>"),
        Case::new("anonymous listing", Req::get("/a0?list-type=2"), 403),
        Case::new("HeadBucket", Req::head("/a0").signed(CI), 200),
        Case::new(
            "a bucket that does not exist",
            Req::get("/nope?list-type=2").signed(CI),
            404,
        )
        .code("NoSuchBucket"),
        Case::new(
            "PUT on a bucket",
            Req::put("/a0", Vec::new()).signed(CI),
            405,
        ),
        Case::new(
            "anonymous DELETE",
            Req::delete(&format!("/a0/main/x/{ha}.art")),
            403,
        ),
        Case::new(
            "DELETE outside the key's admin scopes",
            Req::delete(&format!("/a0/main/x/{ha}.art")).signed(TEAM),
            403,
        ),
        Case::new(
            "DELETE by an admin",
            Req::delete(&format!("/a0/main/x/{ha}.art")).signed(CI),
            204,
        )
        .removes(),
        Case::new(
            "gone",
            Req::get(&format!("/a0/main/x/{ha}.art")).signed(CI),
            404,
        )
        .code("NoSuchKey"),
    ]);
}

#[test]
fn get_root_without_a_signature_is_the_status_page() {
    let srv = Server::start("");
    let r = srv.send(Req::get("/"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type").unwrap().starts_with("text/html"),
        "{:?}",
        r.headers
    );
}
