//! `get --restore` for one package: restores the modules whose artifacts are already in the
//! cache while the rest still download (docs/restore.md, "Restoring while downloading").
//!
//! The get reports, through its progress events, when its mappings are known and each
//! artifact that is complete in the cache; a thread of its own keeps, per mapping entry, how
//! many of its artifacts are still missing, and restores the entries that are complete in
//! rounds (each round one [`tarn_store::restore_round`], every safety rule of a restore
//! unchanged), taking every entry that became complete while the previous round ran. When the
//! get ends, a last round takes the entries left (those whose artifacts failed report as
//! missing, as a restore after the get would).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use tarn_core::ArtifactName;
use tarn_store::{Cache, RestoreClaims, RestoreOptions, RestoreReport, RestoreTarget, Workspace};

use super::restore::target_for;

/// What the get tells the restoring thread.
pub(crate) enum Arrival {
    /// The mappings are known: the revision whose file the get saved, or `None` when a
    /// mappings file was given.
    Mappings(Option<String>),
    /// An artifact is complete in the cache.
    Cached(ArtifactName),
    /// The get is over; `true` when it succeeded.
    GetOver(bool),
}

/// What one package's restore needs to know besides the arrivals.
pub(crate) struct Alongside<'a> {
    /// The workspace.
    pub(crate) ws: &'a Workspace,
    /// The cache the get fills.
    pub(crate) cache: &'a Cache,
    /// The package fetched.
    pub(crate) package: &'a str,
    /// The mappings file given to the get, if any.
    pub(crate) mappings_file: Option<&'a Path>,
    /// `--force-restore`.
    pub(crate) force: bool,
}

/// The restore's report and its wall time in seconds.
pub(crate) type Restored = anyhow::Result<(RestoreReport, f64)>;

/// Restores the package's modules as their artifacts arrive. `None` when there is nothing to
/// do alongside the get (it failed or ended before its mappings were known, or the package
/// is not in the workspace): the caller then restores after the get, as before.
pub(crate) fn restore_as_fetched(
    job: &Alongside<'_>,
    arrivals: Receiver<Arrival>,
) -> Option<Restored> {
    let mut early: Vec<ArtifactName> = Vec::new();
    let rev = loop {
        match arrivals.recv() {
            Ok(Arrival::Mappings(rev)) => break rev,
            Ok(Arrival::Cached(name)) => early.push(name),
            Ok(Arrival::GetOver(_)) | Err(_) => return None,
        }
    };
    let start = Instant::now();
    let pkg = job.ws.package(job.package)?;
    let path = match (&rev, job.mappings_file) {
        (Some(rev), _) => job.cache.revision_path(job.package, rev),
        (None, Some(file)) => file.to_path_buf(),
        (None, None) => return None,
    };
    let target = match target_for(job.ws, pkg, &path) {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    let mut pending = Pending::of(&target);
    for name in early {
        pending.arrived(&name);
    }
    let mut opts = RestoreOptions {
        leantar: None,
        force: job.force,
        threads: 0,
    };
    let mut claims = RestoreClaims::default();
    let mut report = RestoreReport::default();
    let mut round = |entries: Vec<usize>, opts: &mut RestoreOptions, during_get: bool| {
        if opts.leantar.is_none() {
            // Found once, not once per round (a failure is reported by the round itself).
            opts.leantar = tarn_store::find_leantar(&target.dir).ok();
        }
        if during_get {
            tracing::info!(
                "{}: restoring {} modules while the download goes on",
                target.package,
                entries.len()
            );
        }
        let part = RestoreTarget {
            package: target.package.clone(),
            dir: target.dir.clone(),
            layout: target.layout.clone(),
            restore_all: target.restore_all,
            entries: entries.iter().map(|&i| target.entries[i].clone()).collect(),
        };
        let r = tarn_store::restore_round(job.cache, &[part], opts, &mut claims);
        report.absorb(r);
    };
    let get_ok = loop {
        // Wait only when there is nothing to restore yet.
        let mut over = None;
        if pending.ready.is_empty() {
            match arrivals.recv() {
                Ok(a) => over = pending.take(a),
                Err(_) => over = Some(false),
            }
        }
        while over.is_none() {
            match arrivals.try_recv() {
                Ok(a) => over = pending.take(a),
                Err(_) => break,
            }
        }
        let ready = std::mem::take(&mut pending.ready);
        if !ready.is_empty() {
            round(ready, &mut opts, over.is_none());
        }
        if let Some(ok) = over {
            break ok;
        }
    };
    if get_ok {
        let rest = pending.not_restored();
        if !rest.is_empty() {
            round(rest, &mut opts, false);
        }
    }
    Some(Ok((report, start.elapsed().as_secs_f64())))
}

/// Which mapping entries still wait for artifacts.
struct Pending {
    /// For each artifact not yet in the cache, the entries that need it.
    waiting: HashMap<ArtifactName, Vec<usize>>,
    /// For each entry, how many of its artifacts are not yet in the cache.
    missing: Vec<usize>,
    /// Entries complete and not yet handed to a round.
    ready: Vec<usize>,
    /// Entries handed to a round.
    handed: Vec<bool>,
}

impl Pending {
    fn of(target: &RestoreTarget) -> Pending {
        let mut waiting: HashMap<ArtifactName, Vec<usize>> = HashMap::new();
        let mut missing = Vec::with_capacity(target.entries.len());
        let mut ready = Vec::new();
        for (i, (_, outputs)) in target.entries.iter().enumerate() {
            let mut names = BTreeSet::new();
            // An entry whose outputs name no artifact is handed over at once (the restore
            // reports what is wrong with it).
            let _ = tarn_core::collect_artifacts(outputs, &mut names);
            missing.push(names.len());
            if names.is_empty() {
                ready.push(i);
            }
            for n in names {
                waiting.entry(n).or_default().push(i);
            }
        }
        let mut handed = vec![false; missing.len()];
        for &i in &ready {
            handed[i] = true;
        }
        Pending {
            waiting,
            handed,
            missing,
            ready,
        }
    }

    /// Counts one arrival; `Some(ok)` when the get is over.
    fn take(&mut self, a: Arrival) -> Option<bool> {
        match a {
            Arrival::Cached(name) => {
                self.arrived(&name);
                None
            }
            Arrival::Mappings(_) => None,
            Arrival::GetOver(ok) => Some(ok),
        }
    }

    fn arrived(&mut self, name: &ArtifactName) {
        for i in self.waiting.remove(name).unwrap_or_default() {
            self.missing[i] -= 1;
            if self.missing[i] == 0 {
                self.handed[i] = true;
                self.ready.push(i);
            }
        }
    }

    /// The entries never handed to a round (some artifact of theirs did not arrive).
    fn not_restored(&mut self) -> Vec<usize> {
        let rest: Vec<usize> = (0..self.handed.len())
            .filter(|&i| !self.handed[i])
            .collect();
        for &i in &rest {
            self.handed[i] = true;
        }
        rest
    }
}
