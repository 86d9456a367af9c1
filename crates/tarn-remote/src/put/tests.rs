//! The upload engine's decisions, table-driven, through a fake [`Uplink`]: what is skipped,
//! what one failure stops, what goes last and how many uploads run at once. A real server
//! adds nothing here; the transport and the whole flow are tested against real servers
//! (`tests/transport.rs`, the `tarn` binary's suite).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tarn_core::trust::{Manifest, SecretKey, StrongDigest};
use tarn_core::{batch, ArtifactName, Hash, Scope, Service};

use super::uplink::Uplink;
use super::{upload_through, PutReport, SignRequest, UploadItem};
use crate::fake_link::{block_on, status_failure, InFlight};
use crate::progress::Progress;
use crate::transport::{Failed, SmallResponse, Stats};

/// What the fake service answers. Requests are named by label: `batch`, `HEAD x`, `PUT x`
/// (an artifact labelled `x`), `PUT sig`, `PUT rev`.
#[derive(Default)]
struct Answers {
    /// The batch API's list of missing artifacts; `None`: not offered (404).
    batch_missing: Option<&'static [&'static str]>,
    /// Artifacts a `HEAD` finds (the rest are absent).
    present: &'static [&'static str],
    /// Requests that fail, with their status.
    failing: &'static [(&'static str, u16)],
}

/// The fake transport: answers from [`Answers`], records every request, counts uploads in
/// flight.
struct Fake {
    answers: Answers,
    labels: BTreeMap<String, String>,
    jobs: usize,
    progress: Progress,
    stats: Stats,
    log: Mutex<Vec<String>>,
    in_flight: InFlight,
}

impl Fake {
    fn label(&self, url: &str) -> String {
        self.labels
            .get(url)
            .cloned()
            .unwrap_or_else(|| panic!("a request to an unknown URL {url}"))
    }

    /// Records `method label` and answers it: `Err` with its status if it is failing.
    fn answer(&self, method: &str, url: &str) -> Result<String, Failed> {
        let label = self.label(url);
        let request = format!("{method} {label}");
        self.log.lock().unwrap().push(request.clone());
        match self.answers.failing.iter().find(|(r, _)| *r == request) {
            Some((_, status)) => Err(status_failure(method, url, *status)),
            None => Ok(label),
        }
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Uplink for Fake {
    fn progress(&self) -> &Progress {
        &self.progress
    }

    fn jobs(&self) -> usize {
        self.jobs
    }

    fn retries(&self) -> u32 {
        2
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }

    async fn exists(&self, url: &str) -> Result<bool, Failed> {
        let label = self.answer("HEAD", url)?;
        Ok(self.answers.present.contains(&label.as_str()))
    }

    async fn post_batch(
        &self,
        url: &str,
        _body: Bytes,
        _retries: u32,
    ) -> Result<SmallResponse, Failed> {
        self.answer("POST", url)?;
        let Some(missing) = self.answers.batch_missing else {
            return Ok(SmallResponse {
                status: 404,
                body: Bytes::new(),
            });
        };
        let hashes: Vec<Hash> = missing.iter().map(|l| hash_of(l)).collect();
        Ok(SmallResponse {
            status: 200,
            body: Bytes::from(batch::encode_reply(&hashes)),
        })
    }

    async fn put_bytes(
        &self,
        url: &str,
        _content_type: &'static str,
        _headers: &[(&str, &str)],
        _body: Bytes,
    ) -> Result<(), Failed> {
        self.answer("PUT", url).map(|_| ())
    }

    async fn put_item(&self, _item: &UploadItem, url: &str) -> Result<(), Failed> {
        self.in_flight.transfer().await;
        self.answer("PUT", url).map(|_| ())
    }
}

/// Artifact `x`'s hash: its label's first byte, so labels must differ in it.
fn hash_of(label: &str) -> Hash {
    Hash(u64::from(label.as_bytes()[0]))
}

const REV: &str = "3333333333333333333333333333333333333333";

/// One case: the artifacts to upload (a label twice is one hash twice), the service's
/// answers, the flags, and what must happen.
struct Case {
    name: &'static str,
    items: &'static [&'static str],
    answers: Answers,
    force: bool,
    signed: bool,
    /// Artifacts uploaded (in any order, each once).
    uploaded: &'static [&'static str],
    /// The requests after the artifact uploads, in order.
    last: &'static [&'static str],
    /// `uploaded`, `already_present`, failed artifacts, `presence_check`; `None`: the
    /// upload is refused as a whole.
    report: Option<(u64, u64, &'static [&'static str], &'static str)>,
}

fn run_case(case: &Case, jobs: usize) -> (Fake, Result<PutReport, Failed>) {
    let service = Service::s3("t", "http://fake/a", "http://fake/r");
    let scope = Scope::verbatim("org/pkg").unwrap();
    let revision_url = service.revision_url(&scope, REV, None, None);
    let mut labels = BTreeMap::new();
    labels.insert(revision_url.clone(), "rev".to_string());
    labels.insert(format!("{revision_url}.sig"), "sig".to_string());
    labels.insert(
        format!("http://fake/a{}/?{}", scope.url_path(), batch::QUERY),
        "batch".to_string(),
    );
    let items: Vec<UploadItem> = case
        .items
        .iter()
        .map(|l| {
            labels.insert(service.artifact_url(&scope, hash_of(l)), l.to_string());
            UploadItem {
                name: ArtifactName::new(hash_of(l), l.to_string()),
                path: PathBuf::from(format!("/nonexistent/{l}")),
                size: 10,
                sha256: Some([0; 32]),
                staged: None,
            }
        })
        .collect();
    let sign = case.signed.then(|| {
        let key = Arc::new(SecretKey::from_seed([7; 32], "test"));
        SignRequest {
            manifest: Manifest {
                key_id: key.public().key_id(),
                scope: "org/pkg".into(),
                revision: REV.into(),
                platform: None,
                toolchain: None,
                timestamp: 0,
                revision_file: StrongDigest::of(b""),
                artifacts: BTreeMap::new(),
            },
            key,
            url: format!("{revision_url}.sig"),
        }
    });
    let fake = Fake {
        answers: Answers {
            batch_missing: case.answers.batch_missing,
            present: case.answers.present,
            failing: case.answers.failing,
        },
        labels,
        jobs,
        progress: Progress::none(),
        stats: Stats::default(),
        log: Mutex::new(Vec::new()),
        in_flight: InFlight::default(),
    };
    let got = block_on(upload_through(
        &fake,
        &service,
        &scope,
        &items,
        b"mappings".to_vec(),
        &revision_url,
        case.force,
        sign,
        super::Presence::Unchecked,
    ));
    (fake, got)
}

#[test]
fn the_upload_engine_decides_what_to_send_and_what_one_failure_stops() {
    let cases = [
        Case {
            name: "the batch API names the missing artifacts: only those are sent",
            items: &["a", "b", "c"],
            answers: Answers {
                batch_missing: Some(&["b"]),
                ..Answers::default()
            },
            force: false,
            signed: false,
            uploaded: &["b"],
            last: &["PUT rev"],
            report: Some((1, 2, &[], "batch")),
        },
        Case {
            name: "no batch API: one HEAD per artifact, the present ones skipped",
            items: &["a", "b", "c"],
            answers: Answers {
                present: &["a"],
                ..Answers::default()
            },
            force: false,
            signed: false,
            uploaded: &["b", "c"],
            last: &["PUT rev"],
            report: Some((2, 1, &[], "head")),
        },
        Case {
            name: "one failed artifact: the others are still sent, the revision file is not",
            items: &["a", "b", "c"],
            answers: Answers {
                failing: &[("PUT b", 500)],
                ..Answers::default()
            },
            force: true,
            signed: false,
            uploaded: &["a", "b", "c"],
            last: &[],
            report: Some((2, 0, &["b"], "none")),
        },
        Case {
            name: "a refused key (HEAD and the first upload 403): nothing else is sent",
            items: &["a", "b", "c"],
            answers: Answers {
                failing: &[
                    ("HEAD a", 403),
                    ("HEAD b", 403),
                    ("HEAD c", 403),
                    ("PUT a", 403),
                    ("PUT b", 403),
                    ("PUT c", 403),
                ],
                ..Answers::default()
            },
            force: false,
            signed: false,
            uploaded: &["a|b|c"],
            last: &[],
            report: None,
        },
        Case {
            name: "a key that may write but not read (HEAD 403): everything is sent",
            items: &["a", "b", "c"],
            answers: Answers {
                failing: &[("HEAD a", 403), ("HEAD b", 403), ("HEAD c", 403)],
                ..Answers::default()
            },
            force: false,
            signed: false,
            uploaded: &["a", "b", "c"],
            last: &["PUT rev"],
            report: Some((3, 0, &[], "head")),
        },
        Case {
            name: "a HEAD that fails otherwise: that artifact is sent anyway",
            items: &["a", "b"],
            answers: Answers {
                present: &["a", "b"],
                failing: &[("HEAD b", 500)],
                ..Answers::default()
            },
            force: false,
            signed: false,
            uploaded: &["b"],
            last: &["PUT rev"],
            report: Some((1, 1, &[], "head")),
        },
        Case {
            name: "two local names of one hash are one object, sent once",
            items: &["a", "a", "b"],
            answers: Answers::default(),
            force: true,
            signed: false,
            uploaded: &["a", "b"],
            last: &["PUT rev"],
            report: Some((2, 0, &[], "none")),
        },
        Case {
            name: "signed: the signature goes after the artifacts and before the revision file",
            items: &["a", "b"],
            answers: Answers {
                batch_missing: Some(&["a"]),
                ..Answers::default()
            },
            force: false,
            signed: true,
            uploaded: &["a"],
            last: &["PUT sig", "PUT rev"],
            report: Some((1, 1, &[], "batch")),
        },
        Case {
            name: "a failed signature holds the revision file back",
            items: &["a"],
            answers: Answers {
                failing: &[("PUT sig", 503)],
                ..Answers::default()
            },
            force: true,
            signed: true,
            uploaded: &["a"],
            last: &["PUT sig"],
            report: Some((1, 0, &["(signature)"], "none")),
        },
        Case {
            name: "a failed artifact: no signature and no revision file",
            items: &["a", "b"],
            answers: Answers {
                failing: &[("PUT a", 400)],
                ..Answers::default()
            },
            force: true,
            signed: true,
            uploaded: &["a", "b"],
            last: &[],
            report: Some((1, 0, &["a"], "none")),
        },
        Case {
            name: "a failed revision file is reported as such",
            items: &["a"],
            answers: Answers {
                failing: &[("PUT rev", 500)],
                ..Answers::default()
            },
            force: true,
            signed: false,
            uploaded: &["a"],
            last: &["PUT rev"],
            report: Some((1, 0, &["(revision file)"], "none")),
        },
    ];
    for case in &cases {
        let (fake, got) = run_case(case, 4);
        let requests = fake.requests();
        let sent: BTreeSet<&str> = requests
            .iter()
            .filter_map(|r| r.strip_prefix("PUT "))
            .filter(|l| !["sig", "rev"].contains(l))
            .collect();
        let mut wanted: BTreeSet<&str> = case.uploaded.iter().copied().collect();
        if case.uploaded == ["a|b|c"] {
            // Refused: exactly one of them was tried, whichever came first.
            assert_eq!(sent.len(), 1, "{}: {requests:?}", case.name);
            wanted = sent.clone();
        }
        assert_eq!(sent, wanted, "{}: {requests:?}", case.name);
        let sent_times = requests
            .iter()
            .filter(|r| r.starts_with("PUT ") && !["PUT sig", "PUT rev"].contains(&r.as_str()))
            .count();
        assert_eq!(
            sent_times,
            sent.len(),
            "{}: each once: {requests:?}",
            case.name
        );
        let tail: Vec<&str> = requests
            .iter()
            .map(String::as_str)
            .skip_while(|r| !["PUT sig", "PUT rev"].contains(r))
            .collect();
        assert_eq!(tail, case.last, "{}: {requests:?}", case.name);
        if case.force {
            assert!(
                !requests
                    .iter()
                    .any(|r| r.starts_with("HEAD") || r == "POST batch"),
                "{}: --force checks nothing: {requests:?}",
                case.name
            );
        }
        match (case.report, got) {
            (None, Err(e)) => assert!(e.is_auth_failure(), "{}: {e}", case.name),
            (None, Ok(r)) => panic!("{}: want a refusal, got {r:?}", case.name),
            (Some(_), Err(e)) => panic!("{}: {e}", case.name),
            (Some((uploaded, present, failed, check)), Ok(r)) => {
                // An artifact is reported by its file name, `<hash>.<label>`.
                let failed_names: Vec<&str> = r
                    .failed
                    .iter()
                    .map(|f| {
                        f.artifact
                            .split_once('.')
                            .map_or(f.artifact.as_str(), |(_, l)| l)
                    })
                    .collect();
                assert_eq!(
                    (
                        r.uploaded,
                        r.already_present,
                        failed_names.as_slice(),
                        r.presence_check
                    ),
                    (uploaded, present, failed, check),
                    "{}",
                    case.name
                );
                assert_eq!(
                    r.revision_uploaded,
                    case.last.last() == Some(&"PUT rev") && failed.is_empty(),
                    "{}",
                    case.name
                );
                assert_eq!(
                    r.signed_by.is_some(),
                    case.signed
                        && case.last.contains(&"PUT sig")
                        && !failed.contains(&"(signature)"),
                    "{}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn uploads_in_flight_are_bounded_by_twice_the_jobs() {
    let labels: Vec<&'static str> = (b'a'..=b'z')
        .map(|c| &*Box::leak(char::from(c).to_string().into_boxed_str()))
        .collect();
    let items: &'static [&'static str] = Box::leak(labels.into_boxed_slice());
    for jobs in [1, 3] {
        let case = Case {
            name: "bounded",
            items,
            answers: Answers::default(),
            force: true,
            signed: false,
            uploaded: &[],
            last: &[],
            report: None,
        };
        let (fake, got) = run_case(&case, jobs);
        let report = got.unwrap();
        assert_eq!(report.uploaded, 26);
        assert_eq!(
            fake.in_flight.most(),
            jobs * 2,
            "jobs {jobs}: at most twice the jobs in flight, and that many used"
        );
    }
}

/// `put` from the cache takes the SHA-256 of the artifacts only when the upload is signed:
/// unsigned, validation takes Lake's hash alone (the transport then takes the SHA-256 the
/// request signature needs only of the artifacts it sends); signed, each item carries the
/// SHA-256 of its own content, taken in the same read.
#[test]
fn put_from_the_cache_takes_the_sha256_only_when_signing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tarn_store::Cache::new(dir.path());
    let scratch = tempfile::tempdir().unwrap();
    let mut lines = format!("\"{}\"\n", tarn_core::SCHEMA_G3);
    let mut want = BTreeMap::new();
    for (i, label) in ["one", "two", "three"].iter().enumerate() {
        let content = format!("the artifact {label}").into_bytes();
        let name = ArtifactName::new(Hash::of_bytes(&content), "olean");
        let source = scratch.path().join(name.file_name());
        std::fs::write(&source, &content).unwrap();
        cache.import_artifact(&source, &name).unwrap();
        want.insert(
            name.hash,
            (content.len() as u64, StrongDigest::of(&content).sha256),
        );
        lines.push_str(&format!(
            "[\"{:016x}\",{{\"o\":[\"{}\"]}}]\n",
            i + 1,
            name.file_name()
        ));
    }
    let mappings = tarn_core::MappingFile::parse(lines.as_bytes())
        .unwrap()
        .file;
    // Unsigned, after a presence check: the SHA-256 of exactly the artifacts to send.
    let send: Vec<Hash> = want.keys().copied().take(1).collect();
    let presence = super::Presence::Missing(send.iter().copied().collect());
    let picked = super::validate_cache(&cache, &mappings, |n| presence.will_send(n.hash)).unwrap();
    assert_eq!(picked.len(), 3);
    for item in &picked {
        let sends = send.contains(&item.name.hash);
        assert_eq!(item.sha256.is_some(), sends, "{}", item.name.file_name());
        if sends {
            assert_eq!(item.sha256, Some(want[&item.name.hash].1));
        }
    }
    let unsigned = super::validate_cache(&cache, &mappings, |_| false).unwrap();
    assert_eq!(unsigned.len(), 3);
    for item in &unsigned {
        assert_eq!(item.size, want[&item.name.hash].0);
        assert_eq!(
            item.sha256,
            None,
            "{}: SHA-256 taken unsigned",
            item.name.file_name()
        );
    }
    let signed = super::validate_cache(&cache, &mappings, |_| true).unwrap();
    assert_eq!(signed.len(), 3);
    for item in &signed {
        assert_eq!(item.size, want[&item.name.hash].0);
        assert_eq!(item.sha256, Some(want[&item.name.hash].1));
    }
}

/// A presence check made before validating is the upload's own: the batch API's answer
/// (which artifacts to send, so validation takes their SHA-256 in its one read) is not
/// asked for again; a service without the batch API is asked with `HEAD`, once.
#[test]
fn a_presence_check_before_validating_is_not_repeated() {
    let service = Service::s3("t", "http://fake/a", "http://fake/r");
    let scope = Scope::verbatim("org/pkg").unwrap();
    let revision_url = service.revision_url(&scope, REV, None, None);
    let fake = |batch_missing| {
        let mut labels = BTreeMap::new();
        labels.insert(revision_url.clone(), "rev".to_string());
        labels.insert(
            format!("http://fake/a{}/?{}", scope.url_path(), batch::QUERY),
            "batch".to_string(),
        );
        for l in ["a", "b"] {
            labels.insert(service.artifact_url(&scope, hash_of(l)), l.to_string());
        }
        Fake {
            answers: Answers {
                batch_missing,
                present: &["a"],
                failing: &[],
            },
            labels,
            jobs: 4,
            progress: Progress::none(),
            stats: Stats::default(),
            log: Mutex::new(Vec::new()),
            in_flight: InFlight::default(),
        }
    };
    let items: Vec<UploadItem> = ["a", "b"]
        .iter()
        .map(|l| UploadItem {
            name: ArtifactName::new(hash_of(l), "olean"),
            path: PathBuf::from(format!("/nonexistent/{l}")),
            size: 10,
            sha256: None,
            staged: None,
        })
        .collect();
    let hashes: Vec<Hash> = items.iter().map(|i| i.name.hash).collect();
    let upload = |fake: &Fake, presence| {
        block_on(upload_through(
            fake,
            &service,
            &scope,
            &items,
            b"mappings".to_vec(),
            &revision_url,
            false,
            None,
            presence,
        ))
        .unwrap()
    };
    // The batch API answers: only b is sent, and the upload asks nothing more.
    let with_batch = fake(Some(&["b"]));
    let presence = block_on(super::Presence::check(
        &with_batch,
        &service,
        &scope,
        &hashes,
    ));
    assert!(presence.will_send(hash_of("b")) && !presence.will_send(hash_of("a")));
    let report = upload(&with_batch, presence);
    assert_eq!((report.uploaded, report.already_present), (1, 1));
    assert_eq!(report.presence_check, "batch");
    assert_eq!(with_batch.requests(), ["POST batch", "PUT b", "PUT rev"]);
    // No batch API: nothing is known to be sent; the upload checks with HEAD, without
    // asking the batch API a second time.
    let without = fake(None);
    let presence = block_on(super::Presence::check(&without, &service, &scope, &hashes));
    assert!(!presence.will_send(hash_of("a")) && !presence.will_send(hash_of("b")));
    let report = upload(&without, presence);
    assert_eq!(report.presence_check, "head");
    let requests = without.requests();
    assert_eq!(requests.iter().filter(|r| *r == "POST batch").count(), 1);
    assert_eq!(
        requests.iter().filter(|r| r.starts_with("HEAD")).count(),
        2,
        "{requests:?}"
    );
}
