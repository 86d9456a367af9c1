//! Upload bodies: spooled to a temp file while they are hashed (Lake's content hash and,
//! when the signature needs it, SHA-256), size-limited, `aws-chunked` bodies decoded; and
//! revision files checked as Lake mapping files.

use std::io::{self, BufRead, BufReader, Read, Write};

use axum::body::Body;
use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use tarn_core::StreamingHasher;
use tarn_core::{Hash, MappingFile};
use tarn_store::TempFile;
use tokio::io::AsyncWriteExt;

use crate::body_pace::BodyPace;
use crate::error::S3Error;
use crate::storage::Spool;

/// What to compute while spooling.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpoolOptions {
    /// Refuse (413) bodies larger than this.
    pub limit: u64,
    /// The announced length (Content-Length), if any.
    pub expected_len: Option<u64>,
    /// Compute the SHA-256 of the wire bytes.
    pub sha256: bool,
    /// Compute Lake's content hash.
    pub lake_hash: bool,
    /// The body is `aws-chunked` and must be decoded first.
    pub aws_chunked: bool,
}

/// A spooled body.
pub(crate) struct Spooled {
    /// The decoded content on disk.
    pub spool: Spool,
    /// SHA-256 (hex) of the bytes received on the wire.
    pub wire_sha256: Option<String>,
    /// Lake's hash of the decoded content.
    pub lake_hash: Option<Hash>,
}

/// 413 `EntityTooLarge`.
pub(crate) fn too_large(limit: u64) -> S3Error {
    S3Error::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "EntityTooLarge",
        format!("Your proposed upload exceeds the maximum allowed size ({limit} bytes)."),
    )
}

fn io500(e: impl std::fmt::Display) -> S3Error {
    S3Error::internal(e)
}

/// Streams `body` into a temp file in `dir`, at the pace `pace` demands (`408` otherwise;
/// the temp file is removed on every error).
pub(crate) async fn spool_body(
    dir: &std::path::Path,
    body: Body,
    opts: SpoolOptions,
    mut pace: BodyPace,
    bytes_in: &std::sync::atomic::AtomicU64,
) -> Result<Spooled, S3Error> {
    let wire_limit = if opts.aws_chunked {
        opts.limit + opts.limit / 8 + (64 << 10)
    } else {
        opts.limit
    };
    if opts.expected_len.is_some_and(|n| n > wire_limit) {
        return Err(too_large(opts.limit));
    }
    let dir2 = dir.to_path_buf();
    let mut temp = tokio::task::spawn_blocking(move || TempFile::new_in(&dir2))
        .await
        .map_err(io500)?
        .map_err(io500)?;
    let std_file = temp.file_mut().try_clone().map_err(io500)?;
    let mut out =
        tokio::io::BufWriter::with_capacity(256 << 10, tokio::fs::File::from_std(std_file));
    let mut sha = opts.sha256.then(Sha256::new);
    let mut lake = match (opts.lake_hash && !opts.aws_chunked, opts.expected_len) {
        (true, Some(n)) => Some(StreamingHasher::new(n)),
        _ => None,
    };
    let mut len = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = pace.next(&mut stream).await? {
        let chunk = chunk.map_err(|e| {
            S3Error::bad(
                "IncompleteBody",
                format!("the request body was cut off: {e}"),
            )
        })?;
        len += chunk.len() as u64;
        bytes_in.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if len > wire_limit {
            return Err(too_large(opts.limit));
        }
        if let Some(s) = sha.as_mut() {
            s.update(&chunk);
        }
        if let Some(h) = lake.as_mut() {
            h.update(&chunk);
        }
        out.write_all(&chunk).await.map_err(io500)?;
    }
    out.flush().await.map_err(io500)?;
    drop(out);
    if opts.expected_len.is_some_and(|n| n != len) {
        return Err(S3Error::bad(
            "IncompleteBody",
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        ));
    }
    let wire_sha256 = sha.map(|s| hex::encode(s.finalize()));
    if opts.aws_chunked {
        let limit = opts.limit;
        let want = opts.lake_hash;
        let dir2 = dir.to_path_buf();
        let (spool, lake_hash) =
            tokio::task::spawn_blocking(move || decode_aws_chunked_file(temp, &dir2, limit, want))
                .await
                .map_err(io500)??;
        return Ok(Spooled {
            spool,
            wire_sha256,
            lake_hash,
        });
    }
    let lake_hash = match lake {
        Some(h) => h.finish(),
        None if opts.lake_hash => {
            let p = temp.path().to_path_buf();
            Some(
                tokio::task::spawn_blocking(move || tarn_store::hash_file(&p))
                    .await
                    .map_err(io500)?
                    .map_err(io500)?,
            )
        }
        None => None,
    };
    Ok(Spooled {
        spool: Spool { temp, len },
        wire_sha256,
        lake_hash,
    })
}

/// Decodes an `aws-chunked` body (`<hex-size>[;chunk-signature=…]\r\n<data>\r\n…0…\r\n`
/// followed by optional trailers) from `raw` into a new temp file.
fn decode_aws_chunked_file(
    raw: TempFile,
    dir: &std::path::Path,
    limit: u64,
    lake_hash: bool,
) -> Result<(Spool, Option<Hash>), S3Error> {
    let bad = |m: &str| S3Error::bad("InvalidChunkedEncoding", m.to_string());
    let mut r = BufReader::new(std::fs::File::open(raw.path()).map_err(io500)?);
    let mut out = TempFile::new_in(dir).map_err(io500)?;
    let mut w = io::BufWriter::new(out.file_mut().try_clone().map_err(io500)?);
    let mut total = 0u64;
    let mut line = String::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(io500)? == 0 {
            return Err(bad("aws-chunked body ends before the final chunk"));
        }
        let size_part = line.trim_end().split(';').next().unwrap_or("");
        let size = u64::from_str_radix(size_part.trim(), 16)
            .map_err(|_| bad("invalid aws-chunked chunk header"))?;
        if size == 0 {
            break; // trailers (e.g. x-amz-checksum-crc32) follow; not needed.
        }
        total += size;
        if total > limit {
            return Err(too_large(limit));
        }
        let mut left = size;
        while left > 0 {
            let n = (left as usize).min(buf.len());
            r.read_exact(&mut buf[..n])
                .map_err(|_| bad("aws-chunked chunk is shorter than announced"))?;
            w.write_all(&buf[..n]).map_err(io500)?;
            left -= n as u64;
        }
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)
            .map_err(|_| bad("aws-chunked chunk is not followed by CRLF"))?;
        if &crlf != b"\r\n" {
            return Err(bad("aws-chunked chunk is not followed by CRLF"));
        }
    }
    w.flush().map_err(io500)?;
    drop(w);
    drop(raw);
    let h = if lake_hash {
        Some(tarn_store::hash_file(out.path()).map_err(io500)?)
    } else {
        None
    };
    Ok((
        Spool {
            temp: out,
            len: total,
        },
        h,
    ))
}

/// Checks a revision file: it must be UTF-8, start with a schema line, and every further
/// line must be a valid entry (Lake only warns and skips bad lines; the server refuses
/// them). Returns the content hashes of every artifact it references.
pub(crate) fn check_mappings(bytes: &[u8]) -> Result<Vec<Hash>, String> {
    // Line by line, stopping at the first bad one: memory stays the bytes plus the hash set,
    // whatever the file holds (a parse of the whole file into JSON values, or one warning
    // per bad line, would grow many times larger than the upload).
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let (header, rest) = text.split_once('\n').unwrap_or((text, ""));
    let head = MappingFile::parse(header.as_bytes()).map_err(|e| e.to_string())?;
    if !head.file.schema.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("line 1: the schema version is not a date string".into());
    }
    let mut all = std::collections::BTreeSet::new();
    let lines: Vec<&str> = rest.split('\n').collect();
    let count = lines.len() - usize::from(lines.last() == Some(&""));
    for (i, raw) in lines[..count].iter().enumerate() {
        let line = i + 2;
        let raw = raw.trim_end_matches('\r');
        let value: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| format!("line {line}: invalid JSON ({e})"))?;
        let serde_json::Value::Array(items) = value else {
            return Err(format!(
                "line {line}: expected a JSON array [inputHash, outputs]"
            ));
        };
        if items.len() < 2 || Hash::from_json(&items[0]).is_none() {
            return Err(format!(
                "line {line}: expected [inputHash, outputs] with a 16-digit hex input hash"
            ));
        }
        tarn_core::collect_artifacts(&items[1], &mut all)
            .map_err(|e| format!("line {line}: {e}"))?;
    }
    let mut hashes: Vec<Hash> = all.into_iter().map(|a| a.hash).collect();
    hashes.sort();
    hashes.dedup();
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_are_checked() {
        let ok = b"\"2026-03-17\"\n[\"0000000000000001\",{\"o\":[\"0123456789abcdef.olean\"],\"i\":\"00000000000000aa.ilean\",\"c\":\"00000000000000bb.c\"}]\n";
        let hs = check_mappings(ok).unwrap();
        assert_eq!(hs.len(), 3);
        assert!(check_mappings(b"").is_err());
        assert!(check_mappings(b"\"2026-03-17\"\nnot json\n").is_err());
        assert!(check_mappings(b"hello world\n").is_err());
        assert_eq!(check_mappings(b"\"2026-03-17\"\n").unwrap().len(), 0);
    }

    #[test]
    fn decodes_aws_chunked() {
        let dir = std::env::temp_dir().join(format!("tarn-chunk-test-{}", std::process::id()));
        let mut raw = TempFile::new_in(&dir).unwrap();
        raw.file_mut()
            .write_all(b"5;chunk-signature=abc\r\nhello\r\n1\r\n!\r\n0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n")
            .unwrap();
        let (spool, h) = decode_aws_chunked_file(raw, &dir, 100, true).unwrap();
        assert_eq!(spool.len, 6);
        assert_eq!(h, Some(Hash::of_bytes(b"hello!")));
        assert_eq!(std::fs::read(spool.temp.path()).unwrap(), b"hello!");
        drop(spool);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
