//! The download engine's decisions, table-driven, through a fake [`Downlink`]: what is
//! skipped, what one failure leaves alone, which content is fetched once and copied, what
//! the disk bound stops, where Reservoir's URLs come from and how many downloads run at
//! once. A real server adds nothing here; the transport and the whole flow are tested
//! against real servers (`tests/transport.rs`, the `tarn` binary's suite). The cache is a
//! real one in a temporary directory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use tarn_core::trust::StrongDigest;
use tarn_core::{reservoir, ArtifactName, Hash, Scope, Service};
use tarn_store::{Cache, Inserted};

use super::downlink::Downlink;
use super::{download_artifacts, DownloadError, GetReport};
use crate::disk_budget::DiskBound;
use crate::fake_link::{block_on, status_failure, InFlight};
use crate::progress::Progress;
use crate::transport::{Failed, SmallResponse, Stats, TransferError};

/// Artifact `x`'s content; its name is `<hash of this>.<ext>`.
fn content(label: &str) -> Vec<u8> {
    format!("the artifact {label}").into_bytes()
}

/// `x.ext` → the artifact name with `x`'s content hash and extension `ext`.
fn name(label_ext: &str) -> ArtifactName {
    let (label, ext) = label_ext.split_once('.').expect("label.ext");
    ArtifactName::new(Hash::of_bytes(&content(label)), ext)
}

/// The fake service: `GET x` (by content label) answers the content unless it is failing;
/// records every request and counts downloads in flight.
struct Fake {
    labels: BTreeMap<String, String>,
    failing: &'static [(&'static str, u16)],
    /// Bytes the disk bound still allows (`None`: unbounded).
    disk_left: Mutex<Option<u64>>,
    /// What the Reservoir bulk request answers: `Some(status)` fails it.
    bulk_status: Option<u16>,
    jobs: usize,
    progress: Progress,
    stats: Stats,
    scratch: tempfile::TempDir,
    log: Mutex<Vec<String>>,
    in_flight: InFlight,
}

impl Fake {
    fn requests(&self) -> Vec<String> {
        let mut r = self.log.lock().unwrap().clone();
        r.sort();
        r
    }
}

impl Downlink for Fake {
    fn progress(&self) -> &Progress {
        &self.progress
    }

    fn jobs(&self) -> usize {
        self.jobs
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }

    async fn post(
        &self,
        url: &str,
        _headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<SmallResponse, Failed> {
        self.log.lock().unwrap().push("POST bulk".into());
        if let Some(status) = self.bulk_status {
            return Ok(SmallResponse {
                status,
                body: Bytes::from_static(b"{\"message\":\"down\"}"),
            });
        }
        let asked =
            reservoir::parse_bulk_request(&body).map_err(|_| status_failure("POST", url, 400))?;
        let urls: Vec<String> = asked
            .iter()
            .map(|h| format!("http://cdn.fake/{h}"))
            .collect();
        Ok(SmallResponse {
            status: 200,
            body: Bytes::from(reservoir::encode_bulk_reply(&urls)),
        })
    }

    async fn download_artifact(
        &self,
        url: &str,
        cache: &Cache,
        name: &ArtifactName,
        _signed: Option<StrongDigest>,
    ) -> Result<(u64, Inserted), Failed> {
        self.in_flight.transfer().await;
        let label = self
            .labels
            .get(url)
            .unwrap_or_else(|| panic!("a request to an unknown URL {url}"));
        let request = format!("GET {label}");
        self.log.lock().unwrap().push(request.clone());
        if let Some((_, status)) = self.failing.iter().find(|(r, _)| *r == request) {
            return Err(status_failure("GET", url, *status));
        }
        let bytes = content(label);
        let source = self.scratch.path().join(name.file_name());
        std::fs::write(&source, &bytes).unwrap();
        let inserted = cache.import_artifact(&source, name).unwrap();
        Ok((bytes.len() as u64, inserted))
    }

    fn reserve_disk(&self, n: u64) -> Result<(), TransferError> {
        let mut left = self.disk_left.lock().unwrap();
        match left.as_mut() {
            Some(l) if *l < n => Err(TransferError::DiskBound(DiskBound {
                bytes: 0,
                source: "test".into(),
            })),
            Some(l) => {
                *l -= n;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// One case: the artifacts (`label.ext`; one label under two extensions is one content),
/// those already in the cache, the service's answers, and what must happen.
struct Case {
    name: &'static str,
    names: &'static [&'static str],
    cached: &'static [&'static str],
    force: bool,
    reservoir: bool,
    bulk_status: Option<u16>,
    failing: &'static [(&'static str, u16)],
    disk_left: Option<u64>,
    /// Requests made, sorted.
    requests: &'static [&'static str],
    /// `downloaded`, `copied`, `already_present`, the failed artifacts (`label.ext`) with a
    /// piece of each error; `None`: the run cannot start.
    report: Option<Expected>,
}

/// `downloaded`, `copied`, `already_present`, and each failed artifact with a piece of its
/// error.
type Expected = (u64, u64, u64, &'static [(&'static str, &'static str)]);

impl Case {
    const fn new(name: &'static str, names: &'static [&'static str]) -> Case {
        Case {
            name,
            names,
            cached: &[],
            force: false,
            reservoir: false,
            bulk_status: None,
            failing: &[],
            disk_left: None,
            requests: &[],
            report: None,
        }
    }
}

fn run_case(case: &Case, jobs: usize) -> (Fake, Result<GetReport, DownloadError>) {
    let service = if case.reservoir {
        Service::reservoir("r", "http://api.fake/api")
    } else {
        Service::s3("t", "http://fake/a", "http://fake/r")
    };
    let scope = Scope::verbatim("org/pkg").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let scratch = tempfile::tempdir().unwrap();
    for c in case.cached {
        let n = name(c);
        let source = scratch.path().join(n.file_name());
        std::fs::write(&source, content(c.split_once('.').unwrap().0)).unwrap();
        cache.import_artifact(&source, &n).unwrap();
    }
    let names: Vec<ArtifactName> = case.names.iter().map(|n| name(n)).collect();
    let mut labels = BTreeMap::new();
    for n in case.names {
        let label = n.split_once('.').unwrap().0.to_string();
        let hash = name(n).hash;
        let url = if case.reservoir {
            format!("http://cdn.fake/{hash}")
        } else {
            service.artifact_url(&scope, hash)
        };
        labels.insert(url, label);
    }
    let fake = Fake {
        labels,
        failing: case.failing,
        disk_left: Mutex::new(case.disk_left),
        bulk_status: case.bulk_status,
        jobs,
        progress: Progress::none(),
        stats: Stats::default(),
        scratch,
        log: Mutex::new(Vec::new()),
        in_flight: InFlight::default(),
    };
    let got = block_on(download_artifacts(
        &fake, &service, &scope, &cache, &names, case.force, None,
    ));
    if let Ok(report) = &got {
        for n in case.names {
            let failed = report
                .failed
                .iter()
                .any(|f| f.artifact == name(n).file_name());
            assert_eq!(
                cache.has_artifact(&name(n)),
                !failed,
                "{}: {n} is in the cache exactly when it did not fail",
                case.name
            );
        }
    }
    (fake, got)
}

const CASES: &[Case] = &[
    Case {
        requests: &["GET b"],
        cached: &["a.olean"],
        report: Some((1, 0, 1, &[])),
        ..Case::new("what the cache has is skipped", &["a.olean", "b.olean"])
    },
    Case {
        requests: &["GET a", "GET b"],
        cached: &["a.olean"],
        force: true,
        report: Some((2, 0, 0, &[])),
        ..Case::new("force downloads it again", &["a.olean", "b.olean"])
    },
    Case {
        requests: &["GET a", "GET b", "GET c"],
        failing: &[("GET b", 500)],
        report: Some((2, 0, 0, &[("b.olean", "HTTP 500")])),
        ..Case::new(
            "one failure leaves the others alone",
            &["a.olean", "b.olean", "c.olean"],
        )
    },
    Case {
        requests: &["GET a", "GET b"],
        report: Some((2, 1, 0, &[])),
        ..Case::new(
            "one content under two names is fetched once and copied",
            &["a.olean", "a.ilean", "b.olean"],
        )
    },
    Case {
        requests: &["GET a"],
        failing: &[("GET a", 404)],
        report: Some((
            0,
            0,
            0,
            &[("a.ilean", "same content as"), ("a.olean", "HTTP 404")],
        )),
        ..Case::new(
            "a failed content fails its copies too, naming the first",
            &["a.olean", "a.ilean"],
        )
    },
    Case {
        requests: &["GET a"],
        disk_left: Some(0),
        report: Some((1, 0, 0, &[("a.ilean", "may write at most")])),
        ..Case::new(
            "a copy past the disk bound fails alone",
            &["a.olean", "a.ilean"],
        )
    },
    Case {
        requests: &["GET a", "GET b", "POST bulk"],
        reservoir: true,
        report: Some((2, 0, 0, &[])),
        ..Case::new(
            "Reservoir: the URLs come from one bulk request",
            &["a.olean", "b.olean"],
        )
    },
    Case {
        requests: &["POST bulk"],
        reservoir: true,
        bulk_status: Some(503),
        ..Case::new(
            "Reservoir: a failed bulk request stops the run before any download",
            &["a.olean", "b.olean"],
        )
    },
];

#[test]
fn the_download_engine_decides_what_to_fetch_and_what_one_failure_leaves_alone() {
    for case in CASES {
        let (fake, got) = run_case(case, 4);
        assert_eq!(fake.requests(), case.requests, "{}", case.name);
        match (case.report, got) {
            (None, Err(DownloadError::Urls(_))) => {}
            (None, other) => panic!("{}: want no start, got {other:?}", case.name),
            (Some(_), Err(e)) => panic!("{}: {e}", case.name),
            (Some((downloaded, copied, present, failed)), Ok(r)) => {
                assert_eq!(
                    (r.downloaded, r.copied, r.already_present),
                    (downloaded, copied, present),
                    "{}: {:?}",
                    case.name,
                    r.failed
                );
                let want: Vec<String> = failed.iter().map(|(n, _)| name(n).file_name()).collect();
                let got: Vec<String> = r.failed.iter().map(|f| f.artifact.clone()).collect();
                assert_eq!(got, want, "{}", case.name);
                for ((_, piece), f) in failed.iter().zip(&r.failed) {
                    assert!(f.error.contains(piece), "{}: {}", case.name, f.error);
                }
            }
        }
    }
}

#[test]
fn downloads_in_flight_are_bounded_by_twice_the_jobs() {
    const NAMES: &[&str] = &[
        "a.o", "b.o", "c.o", "d.o", "e.o", "f.o", "g.o", "h.o", "i.o", "j.o", "k.o", "l.o", "m.o",
        "n.o", "o.o", "p.o",
    ];
    for jobs in [1, 3] {
        let case = Case::new("bounded", NAMES);
        let (fake, got) = run_case(&case, jobs);
        assert_eq!(got.unwrap().downloaded, NAMES.len() as u64);
        assert_eq!(
            fake.in_flight.most(),
            jobs * 2,
            "jobs {jobs}: at most twice the jobs in flight, and that many used"
        );
    }
}
