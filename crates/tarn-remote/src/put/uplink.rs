//! What the upload engine needs from the network, as one narrow trait: [`Transport`] in
//! production. The engine's own tests put a fake behind it to check the engine's decisions
//! (what is skipped, what one failure stops, what goes last, how many uploads run at once)
//! where a real server adds nothing; the transport itself is tested against real servers.

use std::future::Future;

use bytes::Bytes;
use reqwest::Method;
use tarn_core::trust::StrongDigest;
use tarn_core::ARTIFACT_CONTENT_TYPE;

use super::UploadItem;
use crate::progress::Progress;
use crate::transport::{Failed, SmallResponse, Stats, Transport};

/// The requests an upload makes, each already retried as the transport retries.
pub(crate) trait Uplink: Sync {
    /// Where progress events go.
    fn progress(&self) -> &Progress;
    /// Transfers allowed at once.
    fn jobs(&self) -> usize;
    /// Retries per request.
    fn retries(&self) -> u32;
    /// The counters of bytes sent and retries.
    fn stats(&self) -> &Stats;
    /// A signed `HEAD`: whether the object at `url` exists.
    fn exists(&self, url: &str) -> impl Future<Output = Result<bool, Failed>> + Send;
    /// A signed batch existence request (`POST`, JSON body) with `retries` retries.
    fn post_batch(
        &self,
        url: &str,
        body: Bytes,
        retries: u32,
    ) -> impl Future<Output = Result<SmallResponse, Failed>> + Send;
    /// A signed `PUT` of a small body (the signature, the revision file) with `headers`
    /// besides its content type.
    fn put_bytes(
        &self,
        url: &str,
        content_type: &'static str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> impl Future<Output = Result<(), Failed>> + Send;
    /// Uploads one validated artifact to `url`; the bytes sent must have the validated
    /// Lake hash and SHA-256, or nothing is stored.
    fn put_item(
        &self,
        item: &UploadItem,
        url: &str,
    ) -> impl Future<Output = Result<(), Failed>> + Send;
}

impl Uplink for Transport {
    fn progress(&self) -> &Progress {
        Transport::progress(self)
    }

    fn jobs(&self) -> usize {
        self.options().jobs
    }

    fn retries(&self) -> u32 {
        self.options().retries
    }

    fn stats(&self) -> &Stats {
        Transport::stats(self)
    }

    async fn exists(&self, url: &str) -> Result<bool, Failed> {
        Transport::exists(self, url, true).await
    }

    async fn post_batch(
        &self,
        url: &str,
        body: Bytes,
        retries: u32,
    ) -> Result<SmallResponse, Failed> {
        self.request_with_retries(
            Method::POST,
            url,
            &[("content-type", "application/json")],
            Some(body),
            true,
            retries,
        )
        .await
    }

    async fn put_bytes(
        &self,
        url: &str,
        content_type: &'static str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(), Failed> {
        Transport::put_bytes(self, url, content_type, headers, body).await
    }

    async fn put_item(&self, item: &UploadItem, url: &str) -> Result<(), Failed> {
        let validated = item.sha256.map(|sha256| StrongDigest {
            sha256,
            size: item.size,
        });
        match &item.staged {
            Some(dir) => {
                self.put_staged_artifact(
                    url,
                    ARTIFACT_CONTENT_TYPE,
                    dir.clone(),
                    &item.name,
                    validated,
                )
                .await
            }
            None => self
                .put_artifact(
                    url,
                    ARTIFACT_CONTENT_TYPE,
                    &item.path,
                    item.name.hash,
                    validated,
                )
                .await
                .map(|_| ()),
        }
    }
}
