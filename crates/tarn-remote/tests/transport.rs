//! The transport and engines used directly (no CLI) against the fault-injecting test server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tarn_core::sigv4::Credentials;
use tarn_core::ArtifactName;
use tarn_remote::{Event, Progress, Signer, TransferError, Transport, TransportOptions};
use tarn_store::Cache;
use tarn_test::*;

fn opts() -> TransportOptions {
    TransportOptions {
        jobs: 4,
        retries: 3,
        stall_timeout: Duration::from_millis(500),
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        ..TransportOptions::default()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn serve(arts: &[Art], plan: Plan) -> (tempfile::TempDir, Server) {
    let remote = tempfile::tempdir().unwrap();
    write_remote_artifacts(remote.path(), "a", arts);
    let server = Server::start(Backend::Dir(remote.path().to_path_buf()), plan);
    (remote, server)
}

#[test]
fn chunked_downloads_are_hashed_after_the_fact_and_verified() {
    let arts = artifacts(3, 31);
    let (_remote, server) = serve(&arts, Arc::new(|_: &Request, _| Fault::Chunked));
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(cache_dir.path());
    let t = Transport::new(opts(), Progress::none()).unwrap();
    rt().block_on(async {
        for a in &arts {
            let name = ArtifactName::parse_strict(&a.file_name).unwrap();
            let url = format!("{}/a/{}.art", server.url(), a.hash);
            let (bytes, _) = t.download_artifact(&url, &[], &cache, &name).await.unwrap();
            assert_eq!(bytes, a.content.len() as u64);
        }
    });
    assert!(check_cache(cache_dir.path(), &arts).is_empty());
}

#[test]
fn a_stall_is_cut_at_the_timeout_and_retried() {
    let arts = artifacts(1, 32);
    let (_remote, server) = serve(
        &arts,
        Arc::new(|_: &Request, attempt| {
            if attempt == 1 {
                Fault::Stall(Duration::from_secs(30))
            } else {
                Fault::None
            }
        }),
    );
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(cache_dir.path());
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev2 = events.clone();
    let t = Transport::new(opts(), Progress::new(move |e| ev2.lock().unwrap().push(e))).unwrap();
    let name = ArtifactName::parse_strict(&arts[0].file_name).unwrap();
    let url = format!("{}/a/{}.art", server.url(), arts[0].hash);
    let start = Instant::now();
    rt().block_on(t.download_artifact(&url, &[], &cache, &name))
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let retries: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Retry { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(retries.len(), 1);
    assert!(retries[0].contains("stalled"), "{retries:?}");
}

#[test]
fn failures_are_final_after_the_retries_and_4xx_is_not_retried() {
    let arts = artifacts(2, 33);
    let bad = format!("/a/{}.art", arts[0].hash);
    let b2 = bad.clone();
    let (_remote, server) = serve(
        &arts,
        Arc::new(move |req: &Request, _| {
            if req.target == b2 {
                Fault::Truncate
            } else {
                Fault::Status(403)
            }
        }),
    );
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(cache_dir.path());
    let t = Transport::new(opts(), Progress::none()).unwrap();
    let rt = rt();
    let name = ArtifactName::parse_strict(&arts[0].file_name).unwrap();
    let e = rt
        .block_on(t.download_artifact(&format!("{}{bad}", server.url()), &[], &cache, &name))
        .unwrap_err();
    assert_eq!(e.attempts, 4);
    assert!(matches!(e.error, TransferError::Truncated { .. }), "{e}");
    let name = ArtifactName::parse_strict(&arts[1].file_name).unwrap();
    let url = format!("{}/a/{}.art", server.url(), arts[1].hash);
    let e = rt
        .block_on(t.download_artifact(&url, &[], &cache, &name))
        .unwrap_err();
    assert_eq!((e.attempts, e.error.status()), (1, Some(403)));
    assert!(check_cache(cache_dir.path(), &arts).len() == 2);
    // No temp files left behind.
    let left = std::fs::read_dir(cache_dir.path().join("artifacts"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0);
}

#[test]
fn uploads_are_signed_with_the_real_payload_hash() {
    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let s2 = seen.clone();
    let remote = tempfile::tempdir().unwrap();
    let server = Server::start(
        Backend::Dir(remote.path().to_path_buf()),
        Arc::new(move |req: &Request, _| {
            s2.lock().unwrap().push(req.clone());
            Fault::None
        }),
    );
    let file = remote.path().join("src.bin");
    let content = bytes_for(5, 300_000);
    std::fs::write(&file, &content).unwrap();
    let mut o = opts();
    o.signer = Some(Signer::new(
        Credentials::parse("AKID:secret").unwrap(),
        "auto",
    ));
    let t = Transport::new(o, Progress::none()).unwrap();
    let url = format!("{}/bucket/a0/x.art", server.url());
    rt().block_on(t.put_file(&url, "application/vnd.reservoir.artifact", &file))
        .unwrap();
    assert_eq!(
        std::fs::read(remote.path().join("bucket/a0/x.art")).unwrap(),
        content
    );
    let req = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        req.header("x-amz-content-sha256"),
        Some(tarn_core::sigv4::sha256_hex(&content).as_str())
    );
    assert_eq!(
        req.header("content-type"),
        Some("application/vnd.reservoir.artifact")
    );
    let auth = req.header("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/")
            && auth.contains("/auto/s3/aws4_request"),
        "{auth}"
    );
    assert_eq!(req.header("content-length"), Some("300000"));
}

#[test]
fn an_upload_to_a_hung_server_stalls_out_instead_of_hanging() {
    let server = Server::start(Backend::Blackhole, no_faults());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    // Larger than the socket buffers, so the body cannot all be written.
    std::fs::write(&file, bytes_for(9, 32 << 20)).unwrap();
    let mut o = opts();
    o.retries = 1;
    o.signer = Some(Signer::new(Credentials::parse("a:b").unwrap(), "auto"));
    let t = Transport::new(o, Progress::none()).unwrap();
    let start = Instant::now();
    let e = rt()
        .block_on(t.put_file(&format!("{}/b/k.art", server.url()), "x/y", &file))
        .unwrap_err();
    assert!(matches!(e.error, TransferError::Stalled(_)), "{e}");
    assert_eq!(e.attempts, 2);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // Small requests time out waiting for the response head as well.
    let e = rt()
        .block_on(t.get_optional(&format!("{}/r/x.jsonl", server.url()), &[]))
        .unwrap_err();
    assert!(matches!(e.error, TransferError::Stalled(_)), "{e}");
}

/// A server that reads one request's head, then waits for `go` before reading the body to
/// its end and answering 200 (further connections are answered at once).
fn paused_server() -> (
    String,
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Sender<()>,
) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (head_tx, head_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { return };
            let mut seen = Vec::new();
            let mut buf = [0u8; 1];
            while !seen.ends_with(b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(1) => seen.push(buf[0]),
                    _ => break,
                }
            }
            if i == 0 {
                let _ = head_tx.send(());
                let _ = go_rx.recv();
            }
            let mut sink = vec![0u8; 64 * 1024];
            while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        }
    });
    (url, head_rx, go_tx)
}

#[test]
fn a_file_that_changes_while_it_is_uploaded_is_a_local_error_found_by_type() {
    // Truncated in place, or rewritten in place with other bytes of the same length.
    for truncate in [true, false] {
        let (url, head, go) = paused_server();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.olean");
        // Larger than the socket buffers, so most of it is read after the change.
        let content = bytes_for(11, 32 << 20);
        std::fs::write(&file, &content).unwrap();
        let hash = tarn_core::Hash::of_bytes(&content);
        // No stall while the test rewrites the file (a loaded machine is slow at it).
        let mut o = opts();
        o.stall_timeout = Duration::from_secs(120);
        let t = Transport::new(o, Progress::none()).unwrap();
        let rt = rt();
        let put = {
            let (t, file, url) = (t.clone(), file.clone(), url.clone());
            rt.spawn(async move {
                t.put_artifact(&format!("{url}/a.art"), "x/y", &file, hash, None)
                    .await
            })
        };
        head.recv_timeout(Duration::from_secs(30)).unwrap();
        let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        if truncate {
            f.set_len(1 << 20).unwrap();
        } else {
            // Overwrite in place from the start (the same length, other bytes).
            std::io::Write::write_all(&mut f, &bytes_for(12, 32 << 20)).unwrap();
        }
        go.send(()).unwrap();
        let e = rt.block_on(put).unwrap().unwrap_err();
        assert!(e.error.is_file_changed(), "{e:?}");
        assert!(!e.error.retryable(), "{e}");
        assert_eq!(e.attempts, 1, "{e}");
        assert!(e.to_string().contains("a.olean: the file changed"), "{e}");
    }
}

/// Callers tell the kinds of failure apart by type: a URL that does not parse carries the
/// parser's error, a refused connection the HTTP client's.
#[test]
fn a_bad_url_and_a_refused_connection_carry_their_source_errors() {
    let t = Transport::new(opts(), Progress::none()).unwrap();
    let rt = rt();
    let get = |url: String| {
        rt.block_on(t.request_with_retries(reqwest::Method::GET, &url, &[], None, false, 0))
            .unwrap_err()
    };
    let e = get("no-scheme/a/x.art".into());
    assert!(
        matches!(
            e.error,
            TransferError::InvalidUrl(url::ParseError::RelativeUrlWithoutBase)
        ),
        "{e:?}"
    );
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = get(format!("http://127.0.0.1:{port}/a/x.art"));
    match &e.error {
        TransferError::Network {
            source: Some(source),
            message,
        } => {
            assert!(source.is_connect(), "{e:?}");
            assert!(message.contains("127.0.0.1"), "{message}");
        }
        other => panic!("not a network error with its source: {other:?}"),
    }
}

/// `put-staged` without a signing key validates with Lake's hash alone: no SHA-256 of an
/// artifact is taken before it is known to be sent (the upload takes one then, for the
/// request's signature). With a key, validation takes each artifact's SHA-256 in the same
/// read, which the signature records.
#[test]
fn unsigned_staging_validation_takes_no_sha256() {
    use tarn_core::trust::StrongDigest;
    let arts = artifacts(3, 72);
    let staging = tempfile::tempdir().unwrap();
    write_staging(staging.path(), &arts, 72);
    let (_, unsigned) = tarn_remote::put::validate_staging(staging.path(), false).unwrap();
    assert_eq!(unsigned.len(), 3);
    assert!(unsigned.iter().all(|i| i.sha256.is_none()), "{unsigned:?}");
    let (_, signed) = tarn_remote::put::validate_staging(staging.path(), true).unwrap();
    for item in &signed {
        let art = arts
            .iter()
            .find(|a| a.file_name == item.name.file_name())
            .unwrap();
        assert_eq!(item.sha256, Some(StrongDigest::of(&art.content).sha256));
        assert_eq!(item.size, art.content.len() as u64);
    }
}

/// Signing covers the bytes validated, with no second read: after `put-staged`'s validation
/// an artifact is rewritten in place with a same-size MurmurHash64A collision; every artifact
/// is already on the service, so nothing is sent, and the signature must still record the
/// SHA-256 of the content that was validated, not of whatever the file holds later (a
/// re-read would sign the forged bytes, whose Lake hash is the same).
#[test]
fn a_signature_records_the_validated_bytes_without_reading_artifacts_again() {
    use tarn_core::trust::{SecretKey, SignatureFile, StrongDigest};
    let arts = artifacts(3, 71);
    let remote = tempfile::tempdir().unwrap();
    write_remote_artifacts(remote.path(), "a/org/pkg", &arts);
    let server = Server::start(Backend::Dir(remote.path().to_path_buf()), no_faults());
    let staging = tempfile::tempdir().unwrap();
    write_staging(staging.path(), &arts, 71);
    let (mappings, items) = tarn_remote::put::validate_staging(staging.path(), true).unwrap();

    let victim = &arts[1];
    let target = tarn_core::Hash::from_hex(&victim.hash).unwrap();
    let forged = forge_collision_sized(target, b"planted after validation", victim.content.len());
    assert_eq!(forged.len(), victim.content.len());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(staging.path().join(&victim.file_name))
        .unwrap();
    std::io::Write::write_all(&mut f, &forged).unwrap();
    drop(f);

    let service = tarn_core::Service::s3(
        "t",
        &format!("{}/a", server.url()),
        &format!("{}/r", server.url()),
    );
    let scope = tarn_core::Scope::verbatim("org/pkg").unwrap();
    let rev = "3".repeat(40);
    let revision_url = service.revision_url(&scope, &rev, None, None);
    let key = std::sync::Arc::new(SecretKey::from_seed([7; 32], "test"));
    let sign = tarn_remote::put::SignRequest {
        manifest: tarn_core::trust::Manifest {
            key_id: key.public().key_id(),
            scope: "org/pkg".into(),
            revision: rev.clone(),
            platform: None,
            toolchain: None,
            timestamp: 0,
            revision_file: StrongDigest::of(b""),
            artifacts: Default::default(),
        },
        key: key.clone(),
        url: format!("{revision_url}.sig"),
    };
    let t = Transport::new(opts(), Progress::none()).unwrap();
    let report = rt()
        .block_on(tarn_remote::put::upload(
            &t,
            &service,
            &scope,
            &items,
            mappings,
            &revision_url,
            false,
            Some(sign),
        ))
        .unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!((report.uploaded, report.already_present), (0, 3));
    assert!(report.revision_uploaded);
    let sig = std::fs::read(remote.path().join(format!("r/org/pkg/{rev}.jsonl.sig"))).unwrap();
    let signed = SignatureFile::parse(&sig).unwrap();
    for a in &arts {
        let hash = tarn_core::Hash::from_hex(&a.hash).unwrap();
        assert_eq!(
            signed.manifest.artifacts.get(&hash),
            Some(&StrongDigest::of(&a.content)),
            "{}: the signature must record the validated content",
            a.file_name
        );
    }
}
