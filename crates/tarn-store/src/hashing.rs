//! Hashing files with Lake's content hash, as fast as the hardware allows.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use tarn_core::Hash;

/// Files at least this large are memory-mapped instead of read.
const MMAP_THRESHOLD: u64 = 256 * 1024;

/// Lake's binary content hash (`computeBinFileHash`) of the file at `path`.
///
/// Large files are memory-mapped; small ones are read in one call. The length comes from
/// the file's metadata, and a file that changes length while it is read is an error.
pub fn hash_file(path: &Path) -> io::Result<Hash> {
    let file = File::open(path)?;
    hash_open_file(&file)
}

/// [`hash_file`] for an already open file.
pub fn hash_open_file(mut file: &File) -> io::Result<Hash> {
    let len = file.metadata()?.len();
    if len >= MMAP_THRESHOLD {
        // SAFETY: the map is read-only and dropped before returning. Cached artifacts are
        // immutable; a file truncated by another process while mapped could fault, which
        // is why untrusted inputs are copied into a private temp file before hashing.
        let map = unsafe { memmap2::MmapOptions::new().len(len as usize).map(file)? };
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        return Ok(Hash::of_bytes(&map));
    }
    let mut buf = Vec::with_capacity(len as usize + 1);
    file.read_to_end(&mut buf)?;
    if buf.len() as u64 != len {
        return Err(io::Error::other("file changed size while it was hashed"));
    }
    Ok(Hash::of_bytes(&buf))
}

/// Lake's text hash (`computeTextFileHash`): UTF-8 required, CR LF normalised.
pub fn hash_text_file(path: &Path) -> io::Result<Hash> {
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8 text"))?;
    Ok(Hash::of_text(&text))
}
