//! What the download engine needs from the network, as one narrow trait: [`Transport`] in
//! production. The engine's own tests put a fake behind it to check the engine's decisions
//! (what is skipped, what one failure leaves alone, which content is fetched once and
//! copied, how many downloads run at once) where a real server adds nothing; the transport
//! itself is tested against real servers.

use std::future::Future;

use bytes::Bytes;
use reqwest::Method;
use tarn_core::trust::StrongDigest;
use tarn_core::ArtifactName;
use tarn_store::{Cache, Inserted};

use crate::progress::Progress;
use crate::transport::{Failed, SmallResponse, Stats, TransferError, Transport};

/// The requests a download run makes, each already retried as the transport retries.
pub(crate) trait Downlink: Sync {
    /// Where progress events go.
    fn progress(&self) -> &Progress;
    /// Transfers allowed at once.
    fn jobs(&self) -> usize;
    /// The counters of bytes received and retries.
    fn stats(&self) -> &Stats;
    /// An anonymous `POST` of a small body (Reservoir's bulk URL request).
    fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> impl Future<Output = Result<SmallResponse, Failed>> + Send;
    /// Downloads `url` into `cache` as `name`, published only if it hashes to the name (and
    /// matches `signed`, when given); the bytes received and whether it was new.
    fn download_artifact(
        &self,
        url: &str,
        cache: &Cache,
        name: &ArtifactName,
        signed: Option<StrongDigest>,
    ) -> impl Future<Output = Result<(u64, Inserted), Failed>> + Send;
    /// Takes `n` bytes from the run's disk bound.
    fn reserve_disk(&self, n: u64) -> Result<(), TransferError>;
}

impl Downlink for Transport {
    fn progress(&self) -> &Progress {
        Transport::progress(self)
    }

    fn jobs(&self) -> usize {
        self.options().jobs
    }

    fn stats(&self) -> &Stats {
        Transport::stats(self)
    }

    async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<SmallResponse, Failed> {
        self.request(Method::POST, url, headers, Some(body), false)
            .await
    }

    async fn download_artifact(
        &self,
        url: &str,
        cache: &Cache,
        name: &ArtifactName,
        signed: Option<StrongDigest>,
    ) -> Result<(u64, Inserted), Failed> {
        self.download_artifact_checked(url, &[], cache, name, signed)
            .await
    }

    fn reserve_disk(&self, n: u64) -> Result<(), TransferError> {
        Transport::reserve_disk(self, n)
    }
}
