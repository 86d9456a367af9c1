//! Hashing files with Lake's content hash, as fast as the hardware allows.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use tarn_core::trust::{StrongDigest, StrongHasher};
use tarn_core::Hash;
use tarn_core::StreamingHasher;

use crate::local_file::{open_local_file, Links};

/// Files at least this large are memory-mapped instead of read.
const MMAP_THRESHOLD: u64 = 8 * 1024 * 1024;
/// Smaller files are read through one reused buffer per thread, in pieces that stay in cache.
const READ_CHUNK: usize = 256 * 1024;

thread_local! {
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Lake's binary content hash (`computeBinFileHash`) of the file at `path`.
///
/// Large files are memory-mapped; small ones are read in one call. The length comes from
/// the file's metadata, and a file that changes length while it is read is an error. The
/// file is opened without blocking and must be a regular file ([`open_local_file`]): a FIFO
/// or device given by the user is refused, never waited on.
pub fn hash_file(path: &Path) -> io::Result<Hash> {
    let (file, _) = open_local_file(path, Links::Follow)?;
    hash_open_file(&file)
}

/// [`hash_file`] for an already open file.
pub(crate) fn hash_open_file(file: &File) -> io::Result<Hash> {
    hash_open_file_sized(file).map(|(hash, _)| hash)
}

/// [`hash_open_file`] and the length the file had when it was hashed.
fn hash_open_file_sized(mut file: &File) -> io::Result<(Hash, u64)> {
    let len = file.metadata()?.len();
    if len >= MMAP_THRESHOLD {
        // SAFETY: the map is read-only and dropped before returning. Cached artifacts are
        // immutable; a file truncated by another process while mapped could fault, which
        // is why untrusted inputs are copied into a private temp file before hashing.
        let map = unsafe { memmap2::MmapOptions::new().len(len as usize).map(file)? };
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        return Ok((Hash::of_bytes(&map), len));
    }
    READ_BUFFER.with(|cell| {
        let mut buf = cell.borrow_mut();
        if buf.len() < READ_CHUNK {
            buf.resize(READ_CHUNK, 0);
        }
        let mut hasher = StreamingHasher::new(len);
        loop {
            let n = match file.read(&mut buf[..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            if hasher.bytes_seen() > len {
                break;
            }
        }
        let seen = hasher.bytes_seen();
        let hash = hasher.finish().ok_or_else(|| {
            crate::error::FileChanged::Size {
                expected: len,
                seen,
            }
            .into_io()
        })?;
        Ok((hash, len))
    })
}

/// The SHA-256 and length of the file at `path` (opened as [`hash_file`] opens it), for
/// checking an artifact against a signed manifest (docs/trust.md).
pub fn strong_digest_file(path: &Path) -> io::Result<StrongDigest> {
    hash_file_strong(path).map(|(_, digest)| digest)
}

/// Lake's hash and the SHA-256 of the file at `path` (opened as [`hash_file`] opens it),
/// both taken in one read of each byte: what an upload validates and then signs.
pub(crate) fn hash_file_strong(path: &Path) -> io::Result<(Hash, StrongDigest)> {
    let (mut file, meta) = open_local_file(path, Links::Follow)?;
    let len = meta.len();
    let mut lake = StreamingHasher::new(len);
    let mut strong = StrongHasher::new();
    READ_BUFFER.with(|cell| {
        let mut buf = cell.borrow_mut();
        if buf.len() < READ_CHUNK {
            buf.resize(READ_CHUNK, 0);
        }
        loop {
            let n = match file.read(&mut buf[..]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            lake.update(&buf[..n]);
            strong.update(&buf[..n]);
            if strong.bytes_seen() > len {
                break;
            }
        }
        Ok(())
    })?;
    let seen = strong.bytes_seen();
    match lake.finish() {
        Some(hash) if seen == len => Ok((hash, strong.finish())),
        _ => Err(crate::error::FileChanged::Size {
            expected: len,
            seen,
        }
        .into_io()),
    }
}

/// Lake's hash and the length of each file of `files` (each opened as [`hash_file`] opens
/// it) and, for those marked `true`, the SHA-256 taken in the same read; on every core,
/// results in the order of `files`. What an upload validates: the SHA-256 only where it
/// is needed (a signed upload, or a file that will be sent; docs/trust.md).
pub fn hash_files(files: &[(PathBuf, bool)]) -> Vec<io::Result<(Hash, u64, Option<StrongDigest>)>> {
    crate::parallel::par_map(files, crate::parallel::default_threads(), |(p, strong)| {
        if *strong {
            return hash_file_strong(p).map(|(hash, d)| (hash, d.size, Some(d)));
        }
        let (file, _) = open_local_file(p, Links::Follow)?;
        hash_open_file_sized(&file).map(|(hash, size)| (hash, size, None))
    })
}

/// Lake's hash and the SHA-256 of each file, both from one read of it (opened as
/// [`hash_file`] opens it), for many files on every core; results in the order of `paths`.
pub fn hash_files_strong(paths: &[PathBuf]) -> Vec<io::Result<(Hash, StrongDigest)>> {
    crate::parallel::par_map(paths, crate::parallel::default_threads(), |p| {
        hash_file_strong(p)
    })
}

/// Lake's text hash (`computeTextFileHash`): UTF-8 required, CR LF normalised.
/// Opened like [`hash_file`]; read no further than the length the file had when opened (a
/// file that grows meanwhile is an error, as for [`hash_file`]).
pub fn hash_text_file(path: &Path) -> io::Result<Hash> {
    let (file, meta) = open_local_file(path, Links::Follow)?;
    let len = meta.len();
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(len + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != len {
        return Err(crate::error::FileChanged::Size {
            expected: len,
            seen: bytes.len() as u64,
        }
        .into_io());
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8 text"))?;
    Ok(Hash::of_text(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_read_path_gives_lakes_hash() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = vec![0; MMAP_THRESHOLD as usize + 3];
        tarn_fixture::SplitMix64(0x9E37_79B9_7F4A_7C15).fill(&mut data);
        for len in [
            0,
            1,
            7,
            READ_CHUNK - 1,
            READ_CHUNK,
            READ_CHUNK + 7,
            3 * READ_CHUNK + 5,
            MMAP_THRESHOLD as usize - 1,
            MMAP_THRESHOLD as usize + 3,
        ] {
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &data[..len]).unwrap();
            assert_eq!(
                hash_file(&path).unwrap(),
                Hash::of_bytes(&data[..len]),
                "length {len}"
            );
        }
    }
}
