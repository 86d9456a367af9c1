//! What the status page remembers besides storage: recent revision uploads (with the key
//! that uploaded them), recent refused uploads, and the last GC and scrub results.
//!
//! Uploads, GC and scrub are kept in `<data>/.tarn-status/` (tarn's own format, version 1,
//! see `docs/server-api.md`), each file replaced atomically, so they survive a restart and
//! a `tarn serve gc` run by another process shows up on the running server's page.
//! Refusals are kept in memory only: writing a file per refusal would let any client make
//! the server write to disk.

use crate::gc::RunRecord;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Directory below the data directory.
pub(crate) const DIR: &str = ".tarn-status";
/// Revision uploads remembered (the uploader of older revisions is unknown).
const MAX_UPLOADS: usize = 2000;
/// Refusals remembered.
const MAX_REJECTIONS: usize = 100;
/// Largest status file read back (bytes); a bigger one is ignored with a warning.
const MAX_FILE: u64 = 8 << 20;
/// Version of the files.
const VERSION: u32 = 1;

/// One accepted revision upload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct UploadRecord {
    /// When (Unix seconds).
    pub at_unix: u64,
    /// The object key (`r0/<scope…>[/pt/…][/tc/…]/<rev>.jsonl`).
    pub key: String,
    /// The scope.
    pub scope: String,
    /// The revision (file name without `.jsonl`).
    pub rev: String,
    /// The key id that signed it.
    pub key_id: Option<String>,
    /// Size of the revision file.
    pub bytes: u64,
    /// Distinct artifacts it references.
    pub artifacts: u64,
    /// The key id (`SHA256:…`) of the revision signature stored with it (docs/trust.md), if
    /// one was there and covers this revision file.
    #[serde(default)]
    pub signed_by: Option<String>,
    /// Whether that signature was checked against the scope's trusted keys (`[[signed]]`).
    #[serde(default)]
    pub signature_verified: bool,
}

/// One refused upload.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Rejection {
    /// When (Unix seconds).
    pub at_unix: u64,
    /// The scope of the object.
    pub scope: String,
    /// The object key.
    pub key: String,
    /// HTTP status.
    pub status: u16,
    /// The S3 error code (`BadDigest`, `AccessDenied`, …).
    pub code: String,
    /// The key id the request named, when it is a configured key.
    pub key_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct UploadsFile {
    version: u32,
    uploads: Vec<UploadRecord>,
}

#[derive(Serialize, Deserialize)]
struct RunFile<T> {
    version: u32,
    #[serde(flatten)]
    run: RunRecord<T>,
}

/// The journal of one server (or maintenance command).
pub(crate) struct Journal {
    dir: Option<PathBuf>,
    uploads: Mutex<VecDeque<UploadRecord>>,
    rejections: Mutex<VecDeque<Rejection>>,
    /// Serializes writes of `uploads.json` (the newest state wins).
    write: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads a status file: `None` when absent, unreadable, too big, not a regular file or not
/// version 1 (each but the first with a warning naming the file). Read through the one
/// bounded, non-blocking reader, so a FIFO in its place cannot hang start-up.
fn read_file<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let limit = tarn_store::ReadLimit {
        bytes: MAX_FILE,
        what: "a status file",
        env: None,
    };
    let buf = match tarn_store::read_local_file(path, tarn_store::Links::Follow, &limit) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("{}: {e}, ignored", path.display());
            return None;
        }
    };
    #[derive(Deserialize)]
    struct Versioned {
        version: u32,
    }
    match serde_json::from_slice::<Versioned>(&buf) {
        Ok(v) if v.version == VERSION => {}
        Ok(v) => {
            tracing::warn!(
                "{}: version {} is not understood, ignored",
                path.display(),
                v.version
            );
            return None;
        }
        Err(e) => {
            tracing::warn!("{}: {e}, ignored", path.display());
            return None;
        }
    }
    match serde_json::from_slice(&buf) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!("{}: {e}, ignored", path.display());
            None
        }
    }
}

/// Writes a status file atomically (temp file in the same directory, then rename).
fn write_file<T: Serialize>(dir: &Path, name: &str, value: &T) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    tarn_store::write_atomic(&dir.join(name), &bytes).map_err(std::io::Error::other)
}

impl Journal {
    /// The journal kept in `dir` (`None`: in memory only), with the uploads remembered
    /// there.
    pub(crate) fn open(dir: Option<PathBuf>) -> Journal {
        let uploads = dir
            .as_deref()
            .and_then(|d| read_file::<UploadsFile>(&d.join("uploads.json")))
            .map(|f| f.uploads)
            .unwrap_or_default();
        let mut uploads: VecDeque<UploadRecord> = uploads.into();
        uploads.truncate(MAX_UPLOADS);
        Journal {
            dir,
            uploads: Mutex::new(uploads),
            rejections: Mutex::new(VecDeque::new()),
            write: tokio::sync::Mutex::new(()),
        }
    }

    /// Records an accepted revision upload (newest first) and saves the list.
    pub(crate) async fn upload(&self, rec: UploadRecord) {
        {
            let mut u = lock(&self.uploads);
            u.retain(|r| r.key != rec.key || r.at_unix != rec.at_unix);
            u.push_front(rec);
            u.truncate(MAX_UPLOADS);
        }
        let Some(dir) = self.dir.clone() else {
            return;
        };
        let _w = self.write.lock().await;
        let file = UploadsFile {
            version: VERSION,
            uploads: lock(&self.uploads).iter().cloned().collect(),
        };
        let r = tokio::task::spawn_blocking(move || write_file(&dir, "uploads.json", &file)).await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("saving the upload journal: {e}"),
            Err(e) => tracing::warn!("saving the upload journal: {e}"),
        }
    }

    /// Records a refused upload (in memory).
    pub(crate) fn reject(&self, rec: Rejection) {
        let mut r = lock(&self.rejections);
        r.push_front(rec);
        r.truncate(MAX_REJECTIONS);
    }

    /// Recent uploads, newest first.
    pub(crate) fn uploads(&self) -> Vec<UploadRecord> {
        lock(&self.uploads).iter().cloned().collect()
    }

    /// Recent refusals, newest first.
    pub(crate) fn rejections(&self) -> Vec<Rejection> {
        lock(&self.rejections).iter().cloned().collect()
    }

    /// Saves the result of a GC run (dry runs are not recorded); `T` is GC's report.
    pub(crate) fn gc_done<T: Serialize>(&self, run: RunRecord<T>) {
        self.save_run("gc.json", run);
    }

    /// Saves the result of a scrub; `T` is its summary.
    pub(crate) fn scrub_done<T: Serialize>(&self, run: RunRecord<T>) {
        self.save_run("scrub.json", run);
    }

    fn save_run<T: Serialize>(&self, name: &str, run: RunRecord<T>) {
        let Some(dir) = &self.dir else { return };
        let file = RunFile {
            version: VERSION,
            run,
        };
        if let Err(e) = write_file(dir, name, &file) {
            tracing::warn!("saving {}: {e}", dir.join(name).display());
        }
    }

    /// The last GC run recorded (by any process using this data directory), its report
    /// read as `T`.
    pub(crate) fn last_gc<T: for<'de> Deserialize<'de>>(&self) -> Option<RunRecord<T>> {
        self.load_run("gc.json")
    }

    /// The last scrub recorded, its summary read as `T`.
    pub(crate) fn last_scrub<T: for<'de> Deserialize<'de>>(&self) -> Option<RunRecord<T>> {
        self.load_run("scrub.json")
    }

    fn load_run<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Option<RunRecord<T>> {
        let dir = self.dir.as_deref()?;
        read_file::<RunFile<T>>(&dir.join(name)).map(|f| f.run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, at: u64) -> UploadRecord {
        UploadRecord {
            at_unix: at,
            key: key.into(),
            scope: "s".into(),
            rev: "r".into(),
            key_id: Some("ci".into()),
            bytes: 10,
            artifacts: 2,
            signed_by: None,
            signature_verified: false,
        }
    }

    #[tokio::test]
    async fn uploads_and_runs_survive_a_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(DIR);
        let j = Journal::open(Some(dir.clone()));
        j.upload(rec("r0/s/a.jsonl", 1)).await;
        j.upload(rec("r0/s/b.jsonl", 2)).await;
        j.gc_done(RunRecord {
            finished_unix: 5,
            duration_ms: 3,
            trigger: "command".into(),
            error: None,
            report: Some(serde_json::json!({"revisions": 1})),
        });
        let j = Journal::open(Some(dir.clone()));
        let u = j.uploads();
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].key, "r0/s/b.jsonl");
        assert_eq!(j.last_gc::<serde_json::Value>().unwrap().finished_unix, 5);
        assert!(j.last_scrub::<serde_json::Value>().is_none());
        // No temp file is left next to them.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_bad_or_foreign_file_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("uploads.json"), b"{not json").unwrap();
        std::fs::write(
            tmp.path().join("gc.json"),
            br#"{"version":2,"finished_unix":1}"#,
        )
        .unwrap();
        let j = Journal::open(Some(tmp.path().to_path_buf()));
        assert!(j.uploads().is_empty());
        assert!(j.last_gc::<serde_json::Value>().is_none());
    }

    #[test]
    fn a_fifo_or_device_in_a_status_file_s_place_is_ignored_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let st = std::process::Command::new("mkfifo")
            .arg(tmp.path().join("uploads.json"))
            .status()
            .unwrap();
        assert!(st.success());
        #[cfg(unix)]
        std::os::unix::fs::symlink("/dev/zero", tmp.path().join("gc.json")).unwrap();
        let dir = tmp.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let j = Journal::open(Some(dir));
            let _ = tx.send((
                j.uploads().len(),
                j.last_gc::<serde_json::Value>().is_none(),
            ));
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("opening the journal blocked on a FIFO");
        assert_eq!(got, (0, true));
    }
}
