//! A stable-toolchain fuzz harness (issue 9): every parser of outside input in tarn-core gets
//! mutated versions of valid examples (bit flips, insertions, deletions, splices, interesting
//! tokens, truncation) and random bytes. A parser may refuse any input; it must never panic,
//! hang, or accept something that breaks its own invariants. The count per target is fixed
//! (`TARN_FUZZ_ITERS`, default 20,000) so CI time stays bounded; `scripts/reliability.sh`
//! runs it longer. Each target prints `fuzz-execs <target> <n> crashes <k>`.
//!
//! Deeper coverage-guided runs use the cargo-fuzz targets in `fuzz/` (nightly toolchain).

use std::panic::{catch_unwind, AssertUnwindSafe};

use tarn_core::sigv4::{self, ParsedAuthorization, RequestParts};
use tarn_core::ArtifactName;
use tarn_core::CacheOutput;
use tarn_core::Hash;
use tarn_core::MappingFile;
use tarn_core::{batch, byte_range, object_key, request_target, reservoir, s3_listing};
use tarn_core::{PackageConfig, SystemConfig};
use tarn_fixture::SplitMix64 as Rng;

/// SplitMix64: small, fast, deterministic.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b":",
    b"\n",
    b"\r\n",
    b"%",
    b"%zz",
    b"%00",
    b"\0",
    b"..",
    b"/",
    b"=",
    b"&",
    b"null",
    b"true",
    b"1e999",
    b"-1",
    b"18446744073709551616",
    b"0123456789abcdef",
    b"0123456789ABCDEF",
    b".olean",
    b"\xff\xfe",
    b"\xe2\x80\xae",
    b"\"2026-03-17\"",
    b"AWS4-HMAC-SHA256",
    b"Credential=",
    b"SignedHeaders=",
    b"Signature=",
    b"package",
    b"where",
    b"--",
    b"/-",
    b"-/",
    b"{{{{{{{{",
    b"[[[[[[[[",
];

fn mutate(rng: &mut Rng, seeds: &[&[u8]]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].to_vec();
    let rounds = 1 + rng.below(6);
    for _ in 0..rounds {
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(v.len() + 1);
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(i..i, t.iter().copied());
            }
            2 if !v.is_empty() => {
                let a = rng.below(v.len());
                let b = (a + rng.below(16)).min(v.len());
                v.drain(a..b);
            }
            3 if !v.is_empty() => {
                let a = rng.below(v.len());
                let b = (a + rng.below(64)).min(v.len());
                let chunk = v[a..b].to_vec();
                let i = rng.below(v.len() + 1);
                v.splice(i..i, chunk);
            }
            4 => v.truncate(rng.below(v.len() + 1)),
            5 => {
                let other = seeds[rng.below(seeds.len())];
                let i = rng.below(v.len() + 1);
                let j = rng.below(other.len() + 1);
                v.truncate(i);
                v.extend_from_slice(&other[j..]);
            }
            6 => {
                let n = rng.below(32);
                for _ in 0..n {
                    v.push(rng.next_u64() as u8);
                }
            }
            _ => {
                let i = rng.below(v.len() + 1);
                let b = rng.next_u64() as u8;
                v.insert(i, b);
            }
        }
    }
    v
}

fn iterations() -> u64 {
    std::env::var("TARN_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// Runs `target` on `iterations()` inputs; panics listing the inputs that crashed it.
fn fuzz(name: &str, seeds: &[&[u8]], target: impl Fn(&[u8])) {
    let n = iterations();
    let mut rng = Rng(tarn_core::Hash::of_bytes(name.as_bytes()).0);
    let mut crashes = Vec::new();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for i in 0..n {
        let input = if i % 16 == 15 {
            (0..rng.below(256)).map(|_| rng.next_u64() as u8).collect()
        } else {
            mutate(&mut rng, seeds)
        };
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            crashes.push(input);
        }
    }
    std::panic::set_hook(hook);
    println!("fuzz-execs {name} {n} crashes {}", crashes.len());
    assert!(
        crashes.is_empty(),
        "{name}: {} crashing input(s), first: {:?}",
        crashes.len(),
        String::from_utf8_lossy(&crashes[0])
    );
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn mapping_file_lines() {
    let seeds: &[&[u8]] = &[
        b"\"2026-03-17\"\n[\"0000000000000001\",{\"o\":[\"0123456789abcdef.olean\"],\"i\":\"00000000000000aa.ilean\",\"c\":\"00000000000000bb.c\"}]\n",
        b"\"2025-09-10\"\n[\"0000000000000002\",12345]\n[\"0000000000000003\",null]\n",
        b"\"2026-03-17\"\n[\"00000000000000ff\",[\"0123456789abcdef.olean.server\",true,{\"x\":[1,2]}]]\r\n",
    ];
    fuzz("mapping-file", seeds, |b| {
        if let Ok(p) = MappingFile::parse(b) {
            if let Ok(arts) = p.file.artifacts() {
                for a in arts {
                    assert_eq!(ArtifactName::parse(&a.file_name()).unwrap(), a);
                }
            }
            let again = MappingFile::parse(&p.file.to_bytes()).unwrap();
            assert_eq!(again.file.entries.len(), p.file.entries.len());
        }
    });
}

#[test]
fn outputs_json() {
    let seeds: &[&[u8]] = &[
        b"{\"service\":\"dev\",\"scope\":\"a/b\",\"data\":{\"o\":[\"0123456789abcdef.olean\"]}}",
        b"{\"data\":null}",
        b"[\"0123456789abcdef.olean\"]",
    ];
    fuzz("outputs-json", seeds, |b| {
        let _ = CacheOutput::parse(b);
    });
}

#[test]
fn config_toml() {
    let seeds: &[&[u8]] = &[
        b"[[cache.service]]\nname = \"dev\"\nkind = \"s3\"\nartifactEndpoint = \"http://h/a0\"\nrevisionEndpoint = \"http://h/r0\"\n",
        b"[cache]\ndefaultService = \"x\"\n[[cache.service]]\nname = \"x\"\nkind = \"reservoir\"\napiEndpoint = \"https://r/api\"\n",
        b"name = \"pkg\"\nplatformIndependent = true\n[[require]]\nname = \"dep\"\n",
    ];
    fuzz("config-toml", seeds, |b| {
        let t = text(b);
        let _ = SystemConfig::parse(&t);
        let _ = PackageConfig::parse_toml(&t);
    });
}

#[test]
fn lakefile_lean() {
    let seeds: &[&[u8]] = &[
        b"import Lake\nopen Lake DSL\n\npackage foo where\n  platformIndependent := true\n  version := v!\"1.2.3\"\n\n@[default_target]\nlean_lib Foo\n",
        "package \u{ab}weird name\u{bb} where\n  -- comment\n  /- block -/\n  leanOptions := #[\u{27e8}`x, true\u{27e9}]\n".as_bytes(),
        b"package bar\n",
    ];
    fuzz("lakefile-lean", seeds, |b| {
        let _ = tarn_core::parse_lakefile_lean(&text(b), "lakefile.lean");
    });
}

#[test]
fn lake_manifest() {
    let seeds: &[&[u8]] = &[
        b"{\"version\":\"1.1.0\",\"packagesDir\":\".lake/packages\",\"packages\":[{\"type\":\"git\",\"scope\":\"leanprover-community\",\"name\":\"batteries\",\"rev\":\"0123456789abcdef0123456789abcdef01234567\",\"inherited\":false,\"url\":\"https://github.com/x/y\",\"inputRev\":\"main\",\"manifestFile\":\"lake-manifest.json\",\"configFile\":\"lakefile.toml\"}],\"name\":\"pkg\",\"lakeDir\":\".lake\"}",
        b"{\"version\":7,\"packages\":[{\"path\":{\"type\":\"path\",\"dir\":\"../x\"},\"name\":\"x\"}]}",
    ];
    fuzz("lake-manifest", seeds, |b| {
        let _ = tarn_core::Manifest::parse(b, "lake-manifest.json");
    });
}

#[test]
fn sigv4_authorization_and_canonical_request() {
    let seeds: &[&[u8]] = &[
        b"AWS4-HMAC-SHA256 Credential=ci/20261125/auto/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=6dd63fe9888cc933ce5b2dffc83b6fd3287740e8945dbe1edeadfe37dcf4d1a4",
        b"AWS4-HMAC-SHA256 Credential=K/20150830/us-east-1/s3/aws4_request,SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date,Signature=00",
    ];
    fuzz("sigv4-authorization", seeds, |b| {
        let t = text(b);
        if let Ok(p) = ParsedAuthorization::parse(&t) {
            let headers: Vec<(&str, &str)> =
                p.signed_headers.iter().map(|h| (h.as_str(), "v")).collect();
            let parts = RequestParts {
                method: "PUT",
                path: "/a0/x/0123456789abcdef.art",
                query: "",
                headers: &headers,
                payload_hash: sigv4::UNSIGNED_PAYLOAD,
            };
            let _ = sigv4::canonical_request(&parts);
        }
    });
    let seeds: &[&[u8]] = &[
        b"/a0/team%20one/pkg%21/0123456789abcdef.art",
        b"list-type=2&prefix=a0%2F&delimiter=%2F&max-keys=1000&continuation-token=abc",
        b"tarn-missing&x=%E2%82%AC+y",
    ];
    fuzz("sigv4-canonical-request", seeds, |b| {
        let t = text(b);
        let _ = sigv4::canonical_uri(&t);
        let canonical = sigv4::canonical_query(&t);
        if let Some(curl) = sigv4::canonical_query_curl_788(&t) {
            // Same pairs, only some `=` dropped.
            assert_eq!(curl.split('&').count(), canonical.split('&').count());
            assert!(curl.len() <= canonical.len());
        }
        let _ = sigv4::percent_decode(&t);
        let (path, query) = t.split_once('?').unwrap_or((&t, ""));
        let parts = RequestParts {
            method: "GET",
            path,
            query,
            headers: &[("host", "h"), ("x-amz-date", "20261125T101424Z")],
            payload_hash: sigv4::EMPTY_SHA256,
        };
        let _ = sigv4::canonical_request(&parts);
        let _ = sigv4::AmzDate(t.clone()).to_unix();
        let _ = sigv4::Credentials::parse(&t);
    });
}

#[test]
fn s3_paths_object_keys_and_scopes() {
    let seeds: &[&[u8]] = &[
        b"a0/team one/pkg!/0123456789abcdef.art",
        b"r0/x/pt/linux/tc/leanprover--lean4---v4.9.0/0123456789abcdef0123456789abcdef01234567.jsonl",
        b"leanprover/lean4:v4.9.0-rc1",
    ];
    fuzz("object-keys-and-scopes", seeds, |b| {
        let t = text(b);
        let _ = object_key::parse_artifact_file(&t);
        let _ = object_key::is_revision_file(&t);
        let _ = object_key::scope_of_key(&t, "r0");
        let comps: Vec<&str> = t.split('/').collect();
        let _ = object_key::revision_scope(&comps);
        let _ = tarn_core::Scope::repo(&t);
        let _ = tarn_core::check_platform(&t);
        let _ = tarn_core::check_toolchain(&t);
        let _ = tarn_core::default_toolchain(None, Some(&t));
        let _ = tarn_core::uri_encode(&t);
        let _ = ArtifactName::parse(&t);
        let _ = ArtifactName::parse_strict(&t);
        let _ = Hash::from_hex(&t);
        let _ = tarn_core::parse_size(&t);
    });
}

#[test]
fn reservoir_and_batch_bodies() {
    let seeds: &[&[u8]] = &[
        b"{\"data\":[\"https://r/a0/x/0123456789abcdef.art\",\"https://r/a0/x/fedcba9876543210.art\"]}",
        b"[\"0123456789abcdef\",81985529216486895]",
        b"{\"version\":1,\"missing\":[\"fedcba9876543210\"]}",
        b"{\"error\":{\"status\":404,\"message\":\"no\"}}",
    ];
    let asked: std::collections::HashSet<Hash> = [
        Hash::from_hex("0123456789abcdef").unwrap(),
        Hash::from_hex("fedcba9876543210").unwrap(),
    ]
    .into_iter()
    .collect();
    fuzz("reservoir-and-batch", seeds, |b| {
        let _ = reservoir::parse_bulk_request(b);
        let _ = reservoir::parse_bulk_reply(b, 2);
        let _ = batch::parse_request(b);
        if let Some(m) = batch::parse_reply(b, &asked) {
            assert!(m.is_subset(&asked));
        }
    });
}

#[test]
fn http_range_headers() {
    let seeds: &[&[u8]] = &[
        b"bytes=0-99",
        b"bytes=-500",
        b"bytes=9500-",
        b"bytes=0-0,-1",
        b"bytes=18446744073709551615-18446744073709551615",
    ];
    let n = std::cell::Cell::new(0u64);
    fuzz("http-range", seeds, |b| {
        n.set(
            n.get()
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407),
        );
        let n = n.get();
        // Lengths around the edges (0, 1, small) and anywhere in u64.
        for len in [0, 1, 10, 100, n % 20_000, n] {
            if let byte_range::Resolved::Range { first, last } = byte_range::resolve(&text(b), len)
            {
                assert!(first <= last && last < len);
            }
        }
    });
}

#[test]
fn request_targets_and_listing_queries() {
    let seeds: &[&[u8]] = &[
        b"/a0/team%20one/pkg%21/0123456789abcdef.art?tarn-missing",
        b"/r0?list-type=2&prefix=mathlib4%2F&delimiter=%2F&max-keys=1000&continuation-token=abc&encoding-type=url",
        b"/a0?marker=x&max-keys=18446744073709551616&location",
        b"/api/v1/repositories/o/r/artifacts?rev=0123&platform=x86_64-linux&toolchain=v4",
        b"//a0/..%2F..%2Fetc/.tarn-spool/%00/",
    ];
    fuzz("request-target", seeds, |b| {
        let t = text(b);
        let (path, query) = match t.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (t.as_str(), None),
        };
        let parts = request_target::split_path(path);
        assert!(parts.comps.iter().all(|c| !c.is_empty()));
        if request_target::check_components(&parts.comps).is_ok() {
            assert!(parts
                .comps
                .iter()
                .all(|c| request_target::valid_component(c)));
        }
        for name in ["prefix", "rev", "tarn-missing"] {
            if request_target::param(query, name).is_some() {
                assert!(request_target::has_param(query, name));
            }
        }
        let q = s3_listing::ListQuery::parse(query);
        assert!(q.max_keys <= s3_listing::MAX_KEYS);
    });
}

#[test]
fn s3_listing_xml() {
    let seeds: &[&[u8]] = &[
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><IsTruncated>true</IsTruncated><Contents><Key>a0/x/0123456789abcdef.art</Key><LastModified>2026-11-25T10:01:10.000Z</LastModified><ETag>&quot;5&quot;</ETag><Size>5</Size></Contents><NextContinuationToken>tok&amp;1</NextContinuationToken></ListBucketResult>",
        b"<ListBucketResult><Contents><Key><![CDATA[a<b]]></Key><Size>-1</Size></Contents><!-- c --><?pi x?></ListBucketResult>",
        b"<Error><Code>AccessDenied</Code><Message>no &#x41;&#65;</Message></Error>",
    ];
    fuzz("s3-listing-xml", seeds, |b| {
        if let Ok(page) = s3_listing::parse_page(&text(b)) {
            for e in &page.entries {
                let _ = s3_listing::parse_iso_time(&e.last_modified);
            }
        }
        let _ = s3_listing::parse_iso_time(&text(b));
    });
}
