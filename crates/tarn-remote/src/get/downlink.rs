//! What the download engine needs from the network, as one narrow trait: [`Transport`] in
//! production. The engine's own tests put a fake behind it to check the engine's decisions
//! (what is skipped, what one failure leaves alone, which content is fetched once and
//! copied, how many downloads run at once) where a real server adds nothing; the transport
//! itself is tested against real servers.
//!
//! In production each artifact download runs as its own runtime task, so the bodies of
//! parallel downloads are hashed and written on every worker thread at once.

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
        spawn_download(self, cache, name, url, signed).await
    }

    fn reserve_disk(&self, n: u64) -> Result<(), TransferError> {
        Transport::reserve_disk(self, n)
    }
}

/// One artifact's download as its own runtime task, so the bodies of parallel downloads are
/// hashed (Lake's hash, and the SHA-256 of a signed revision) and written on every worker
/// thread at once, not all on the thread that awaits them. Dropping the returned future
/// aborts the task.
fn spawn_download(
    transport: &Transport,
    cache: &Cache,
    name: &ArtifactName,
    url: &str,
    signed: Option<StrongDigest>,
) -> impl std::future::Future<Output = Result<(u64, Inserted), Failed>> + use<> {
    let (transport, cache, name, url) = (
        transport.clone(),
        cache.clone(),
        name.clone(),
        url.to_string(),
    );
    let shown = url.clone();
    let task = AbortOnDrop(tokio::spawn(async move {
        transport
            .download_artifact_checked(&url, &[], &cache, &name, signed)
            .await
    }));
    async move {
        task.await.unwrap_or_else(|e| {
            Err(Failed {
                method: "GET".to_string(),
                url: shown,
                error: TransferError::Network {
                    message: format!("the download task failed: {e}"),
                    source: None,
                },
                attempts: 1,
            })
        })
    }
}

/// A spawned task that is aborted when its handle is dropped (a `get` that stops waiting
/// leaves no download running behind it).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
