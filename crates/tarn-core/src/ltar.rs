//! The `.ltar` container that leantar writes for Lake (≈ Lean v4.30+): read far enough to vet
//! an archive before anything unpacks it. Payloads are skipped by their length fields, never
//! decompressed here; see docs/restore.md for the layout.
//!
//! leantar itself joins entry paths onto its base directories without checking them, trusts
//! length fields, and deletes a truncated archive while exiting 0. [`LtarIndex::parse`]
//! refuses all of those cases from the bytes alone, and [`LtarIndex::module_files`] checks
//! that the entries are exactly the files of one Lake module (`C.olean`, …, `C.c`) under the
//! two bases Lake uses (0 = the module's `leanLibDir`, 1 = its `irDir`).
//!
//! ```
//! use tarn_core::{LtarError, LtarIndex};
//! assert!(matches!(LtarIndex::parse(b"LTR3"), Err(LtarError::Truncated { .. })));
//! ```

/// The magic of the one version Lake writes (leantar's v3 container).
pub(crate) const LTAR_MAGIC_V3: &[u8; 4] = b"LTR3";

/// Entry kinds (leantar's `COMPRESSION_*` bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LtarKind {
    /// 0: a zstd frame (no dictionary) of the file's bytes.
    Zstd,
    /// 1: one `.olean`, lgz-compressed inside a zstd frame with leangz's dictionary.
    Lgz,
    /// 2: a legacy `.hash` file as a u64.
    HashPlain,
    /// 3: a v2 trace `{"depHash": …}` as a u64.
    HashJson,
    /// 4: a compact v3 trace: hashes of depHash, olean, ilean and c, then tagged extras.
    HashOutput,
    /// 5: three oleans (`.olean`, `.olean.server`, `.olean.private`) in one lgz stream.
    LgzModule,
}

impl LtarKind {
    fn from_byte(b: u8) -> Option<LtarKind> {
        Some(match b {
            0 => LtarKind::Zstd,
            1 => LtarKind::Lgz,
            2 => LtarKind::HashPlain,
            3 => LtarKind::HashJson,
            4 => LtarKind::HashOutput,
            5 => LtarKind::LgzModule,
            _ => return None,
        })
    }
}

/// One file an archive unpacks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LtarFile {
    /// The base directory index (0 or 1).
    pub base: u8,
    /// The bare file name under that base.
    pub name: String,
}

/// One record of an archive: a file, or (kind 5) three files from one payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LtarEntry {
    /// How the payload is stored.
    pub kind: LtarKind,
    /// The files the record unpacks to, the first one named by the record itself.
    pub files: Vec<LtarFile>,
    /// Where the payload lies in the archive's bytes (for zstd kinds: the frame, without its
    /// length field).
    pub payload: std::ops::Range<usize>,
}

/// What an archive holds, without its payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LtarIndex {
    /// The trace's `depHash` in the header: Lake's input hash for archives written before
    /// content-stable archives (leantar < 0.1.20); a placeholder in stripped (`-s`) ones.
    pub dep_hash: u64,
    /// The trace file's bare name (`C.trace`), under base 0.
    pub trace_name: String,
    /// Where that name starts in the archive's bytes (it is followed by a NUL).
    pub trace_name_offset: usize,
    /// How the trace is stored.
    pub trace_kind: LtarKind,
    /// The other records, in archive order (comments left out).
    pub entries: Vec<LtarEntry>,
}

/// Why an archive is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LtarError {
    /// Not an `LTR3` archive.
    #[error("not a Lake module archive: magic {found:?} (expected \"LTR3\")")]
    BadMagic {
        /// The first bytes, lossily decoded.
        found: String,
    },
    /// The archive ends inside a record (leantar would delete it and report success).
    #[error("truncated at byte {offset}: {what} runs past the end ({len} bytes)")]
    Truncated {
        /// Where the incomplete item starts.
        offset: u64,
        /// What was being read.
        what: &'static str,
        /// The archive's length.
        len: u64,
    },
    /// An entry path that is not a bare file name (leantar would write it wherever it points).
    #[error("entry at byte {offset}: path {name:?} is not a bare file name ({reason})")]
    BadPath {
        /// Where the record starts.
        offset: u64,
        /// The path, lossily decoded.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A base directory index other than 0 and 1.
    #[error("entry at byte {offset}: base directory {base} (Lake archives use only 0 and 1)")]
    TooManyBases {
        /// Where the record starts.
        offset: u64,
        /// The index found.
        base: u8,
    },
    /// A kind byte leantar does not define.
    #[error("entry at byte {offset}: unknown entry kind {kind}")]
    UnknownKind {
        /// Where the kind byte is.
        offset: u64,
        /// The byte.
        kind: u8,
    },
    /// The trace record stored as three oleans.
    #[error("the trace record has kind 5 (three oleans), which no Lake archive has")]
    BadTraceKind,
    /// More records than any module has.
    #[error("more than {max} records (a Lake module archive has at most 8)")]
    TooManyEntries {
        /// The bound.
        max: usize,
    },
    /// The files are not one Lake module's outputs.
    #[error("not a Lake module archive: {0}")]
    NotAModule(String),
}

/// Most records accepted: a module has at most seven files besides its trace; comments are
/// counted too, so a hostile archive cannot make the index large.
pub(crate) const MAX_LTAR_ENTRIES: usize = 64;

/// Longest entry name accepted (a file name on every common file system).
const MAX_NAME_BYTES: usize = 255;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn truncated(&self, offset: usize, what: &'static str) -> LtarError {
        LtarError::Truncated {
            offset: offset as u64,
            what,
            len: self.bytes.len() as u64,
        }
    }

    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], LtarError> {
        let start = self.pos;
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| start.checked_add(n))
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.truncated(start, what))?;
        self.pos = end;
        Ok(&self.bytes[start..end])
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, LtarError> {
        Ok(self.take(1, what)?[0])
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, LtarError> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A NUL-terminated string (the NUL not included).
    fn cstr(&mut self, what: &'static str) -> Result<&'a [u8], LtarError> {
        let start = self.pos;
        let rest = &self.bytes[start..];
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.truncated(start, what))?;
        self.pos = start + len + 1;
        Ok(&rest[..len])
    }

    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// Checks that `raw` is a bare file name: UTF-8, not empty, not `.`/`..`, no `/` or `\`, no
/// control characters, at most 255 bytes.
fn bare_name(raw: &[u8], offset: usize) -> Result<String, LtarError> {
    let bad = |reason| LtarError::BadPath {
        offset: offset as u64,
        name: String::from_utf8_lossy(raw).into_owned(),
        reason,
    };
    let name = std::str::from_utf8(raw).map_err(|_| bad("not UTF-8"))?;
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name == "." || name == ".." {
        return Err(bad("a directory reference"));
    }
    if name.contains('/') || name.contains('\\') {
        return Err(bad("contains a path separator"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("contains a control character"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(bad("longer than 255 bytes"));
    }
    Ok(name.to_string())
}

impl LtarIndex {
    /// Reads an archive's structure from its bytes, checking every length against the end,
    /// every path, base index and kind. Comments (empty-path records) are skipped.
    pub fn parse(bytes: &[u8]) -> Result<LtarIndex, LtarError> {
        let mut r = Reader { bytes, pos: 0 };
        let magic = r.take(4, "the magic")?;
        if magic != LTAR_MAGIC_V3 {
            return Err(LtarError::BadMagic {
                found: String::from_utf8_lossy(magic).into_owned(),
            });
        }
        let dep_hash = r.u64("the header's depHash")?;
        let trace_at = r.pos;
        let trace_name = bare_name(r.cstr("the trace path")?, trace_at)?;
        let kind_at = r.pos;
        let trace_kind = read_kind(&mut r, kind_at)?;
        if trace_kind == LtarKind::LgzModule {
            return Err(LtarError::BadTraceKind);
        }
        skip_payload(&mut r, trace_kind)?;
        let mut entries = Vec::new();
        let mut records = 0usize;
        while !r.at_end() {
            records += 1;
            if records > MAX_LTAR_ENTRIES {
                return Err(LtarError::TooManyEntries {
                    max: MAX_LTAR_ENTRIES,
                });
            }
            let at = r.pos;
            let first = read_file(&mut r, at)?;
            let Some(first) = first else {
                r.cstr("a comment")?;
                continue;
            };
            let kind_at = r.pos;
            let kind = read_kind(&mut r, kind_at)?;
            let mut files = vec![first];
            if kind == LtarKind::LgzModule {
                for _ in 0..2 {
                    let at = r.pos;
                    let extra = read_file(&mut r, at)?.ok_or(LtarError::BadPath {
                        offset: at as u64,
                        name: String::new(),
                        reason: "empty",
                    })?;
                    files.push(extra);
                }
            }
            let payload = skip_payload(&mut r, kind)?;
            entries.push(LtarEntry {
                kind,
                files,
                payload,
            });
        }
        Ok(LtarIndex {
            dep_hash,
            trace_name,
            trace_name_offset: trace_at,
            trace_kind,
            entries,
        })
    }

    /// Every file the archive unpacks to, trace first.
    pub(crate) fn files(&self) -> impl Iterator<Item = &LtarFile> {
        self.entries.iter().flat_map(|e| e.files.iter())
    }

    /// Checks the archive is one Lake module's outputs, as `Module.packLtar` writes them:
    /// `C.trace` and `C.<ext>` files with one stem `C`, each extension at most once, the
    /// olean parts, `.ilean` and `.ir` under base 0 and `.c`/`.bc` under base 1, with at
    /// least `.olean`, `.ilean` and `.c`. Returns the stem and the extensions.
    pub fn module_files(&self) -> Result<ModuleFiles, LtarError> {
        let stem = self
            .trace_name
            .strip_suffix(".trace")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                LtarError::NotAModule(format!(
                    "the trace is named {:?}, not <Module>.trace",
                    self.trace_name
                ))
            })?
            .to_string();
        let mut exts: Vec<String> = Vec::new();
        for file in self.files() {
            let ext = file
                .name
                .strip_prefix(stem.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .ok_or_else(|| {
                    LtarError::NotAModule(format!(
                        "entry {:?} is not a file of module {stem:?}",
                        file.name
                    ))
                })?;
            let want_base = module_ext_base(ext).ok_or_else(|| {
                LtarError::NotAModule(format!("entry {:?}: unknown extension {ext:?}", file.name))
            })?;
            if file.base != want_base {
                return Err(LtarError::NotAModule(format!(
                    "entry {:?} is under base {} (Lake puts .{ext} under base {want_base})",
                    file.name, file.base
                )));
            }
            if exts.iter().any(|e| e == ext) {
                return Err(LtarError::NotAModule(format!(
                    "entry {:?} appears twice",
                    file.name
                )));
            }
            exts.push(ext.to_string());
        }
        for required in ["olean", "ilean", "c"] {
            if !exts.iter().any(|e| e == required) {
                return Err(LtarError::NotAModule(format!("no {stem}.{required}")));
            }
        }
        Ok(ModuleFiles { stem, exts })
    }
}

/// The files of one module archive: `<stem>.trace` and `<stem>.<ext>` for each extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleFiles {
    /// The module's last name component.
    pub stem: String,
    /// The output extensions, in archive order.
    pub exts: Vec<String>,
}

/// The base Lake's `Module.packLtar` puts a module output with extension `ext` under:
/// 0 (`leanLibDir`) for the olean parts, `.ilean` and `.ir`, 1 (`irDir`) for `.c` and `.bc`.
/// `None` for anything that is not a module output.
pub fn module_ext_base(ext: &str) -> Option<u8> {
    match ext {
        "olean" | "olean.server" | "olean.private" | "ilean" | "ir" => Some(0),
        "c" | "bc" => Some(1),
        _ => None,
    }
}

fn read_kind(r: &mut Reader<'_>, at: usize) -> Result<LtarKind, LtarError> {
    let b = r.u8("an entry kind")?;
    LtarKind::from_byte(b).ok_or(LtarError::UnknownKind {
        offset: at as u64,
        kind: b,
    })
}

/// A `(base, path)` pair; `None` for an empty path (a comment record).
fn read_file(r: &mut Reader<'_>, at: usize) -> Result<Option<LtarFile>, LtarError> {
    let base = r.u8("a base index")?;
    let raw = r.cstr("an entry path")?;
    if raw.is_empty() {
        return Ok(None);
    }
    if base > 1 {
        return Err(LtarError::TooManyBases {
            offset: at as u64,
            base,
        });
    }
    Ok(Some(LtarFile {
        base,
        name: bare_name(raw, at)?,
    }))
}

/// Skips a record's payload; returns where it lies.
fn skip_payload(r: &mut Reader<'_>, kind: LtarKind) -> Result<std::ops::Range<usize>, LtarError> {
    let start = r.pos;
    match kind {
        LtarKind::Zstd | LtarKind::Lgz | LtarKind::LgzModule => {
            let len = r.u64("a payload length")?;
            let at = r.pos;
            r.take(len, "a payload")?;
            return Ok(at..r.pos);
        }
        LtarKind::HashPlain | LtarKind::HashJson => {
            r.take(8, "a hash")?;
        }
        LtarKind::HashOutput => {
            r.take(32, "output hashes")?;
            loop {
                let at = r.pos;
                match r.u8("an output tag")? {
                    0 => break,
                    1 | 2 => {
                        r.u64("an output hash")?;
                    }
                    tag => {
                        return Err(LtarError::UnknownKind {
                            offset: at as u64,
                            kind: tag,
                        })
                    }
                }
            }
        }
    }
    Ok(start..r.pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record: base, name, kind, payload.
    type Record<'a> = (u8, &'a str, u8, &'a [u8]);

    /// An archive built by hand: header, a zstd trace record, then records.
    fn archive(records: &[Record<'_>]) -> Vec<u8> {
        let mut v = b"LTR3".to_vec();
        v.extend_from_slice(&0x57289f38c9016500u64.to_le_bytes());
        v.extend_from_slice(b"C.trace\0");
        v.push(0);
        v.extend_from_slice(&3u64.to_le_bytes());
        v.extend_from_slice(b"abc");
        for (base, name, kind, payload) in records {
            v.push(*base);
            v.extend_from_slice(name.as_bytes());
            v.push(0);
            v.push(*kind);
            v.extend_from_slice(&(payload.len() as u64).to_le_bytes());
            v.extend_from_slice(payload);
        }
        v
    }

    fn module() -> Vec<u8> {
        archive(&[
            (0, "C.olean", 1, b"xx"),
            (0, "C.ilean", 0, b"y"),
            (1, "C.c", 0, b"zz"),
        ])
    }

    #[test]
    fn reads_a_module_archive() {
        let idx = LtarIndex::parse(&module()).unwrap();
        assert_eq!(idx.dep_hash, 0x57289f38c9016500);
        assert_eq!(idx.trace_name, "C.trace");
        let files = idx.module_files().unwrap();
        assert_eq!(files.stem, "C");
        assert_eq!(files.exts, ["olean", "ilean", "c"]);
    }

    #[test]
    fn every_truncation_is_refused() {
        let full = module();
        for cut in 0..full.len() {
            let r = LtarIndex::parse(&full[..cut]);
            // A cut exactly between records is a shorter, complete archive.
            if let Ok(idx) = r {
                assert!(idx.entries.len() < 3, "cut at {cut} parsed as complete");
                continue;
            }
            assert!(
                matches!(
                    r,
                    Err(LtarError::Truncated { .. }) | Err(LtarError::BadMagic { .. })
                ),
                "cut at {cut}: {r:?}"
            );
        }
    }

    #[test]
    fn hostile_paths_and_bases_are_refused() {
        for name in [
            "../C.olean",
            "/etc/passwd",
            "a/C.olean",
            "..",
            ".",
            "a\\b",
            "x\ty",
        ] {
            let r = LtarIndex::parse(&archive(&[(0, name, 0, b"")]));
            assert!(matches!(r, Err(LtarError::BadPath { .. })), "{name}: {r:?}");
        }
        let r = LtarIndex::parse(&archive(&[(2, "C.olean", 0, b"")]));
        assert!(
            matches!(r, Err(LtarError::TooManyBases { base: 2, .. })),
            "{r:?}"
        );
        let r = LtarIndex::parse(&archive(&[(0, "C.olean", 9, b"")]));
        assert!(
            matches!(r, Err(LtarError::UnknownKind { kind: 9, .. })),
            "{r:?}"
        );
    }

    #[test]
    fn a_huge_length_is_truncation_not_an_allocation() {
        let mut v = b"LTR3".to_vec();
        v.extend_from_slice(&0u64.to_le_bytes());
        v.extend_from_slice(b"C.trace\0\0");
        v.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            LtarIndex::parse(&v),
            Err(LtarError::Truncated { .. })
        ));
    }

    #[test]
    fn files_must_be_one_modules_outputs() {
        let cases: [(&[Record<'_>], &str); 5] = [
            (
                &[
                    (0, "D.olean", 1, b""),
                    (0, "C.ilean", 0, b""),
                    (1, "C.c", 0, b""),
                ],
                "not a file of module",
            ),
            (
                &[
                    (0, "C.olean", 1, b""),
                    (0, "C.ilean", 0, b""),
                    (0, "C.c", 0, b""),
                ],
                "base 0",
            ),
            (
                &[
                    (0, "C.olean", 1, b""),
                    (0, "C.ilean", 0, b""),
                    (1, "C.so", 0, b""),
                ],
                "unknown extension",
            ),
            (
                &[
                    (0, "C.olean", 1, b""),
                    (0, "C.olean", 1, b""),
                    (1, "C.c", 0, b""),
                ],
                "twice",
            ),
            (&[(0, "C.olean", 1, b""), (1, "C.c", 0, b"")], "no C.ilean"),
        ];
        for (records, want) in cases {
            let err = LtarIndex::parse(&archive(records))
                .unwrap()
                .module_files()
                .unwrap_err();
            assert!(err.to_string().contains(want), "{err} lacks {want:?}");
        }
    }

    #[test]
    fn reads_archives_leantar_packed_with_lakes_command_line() {
        // tests/data/ltar: packed by leantar v0.1.19 (see make.sh there).
        let attr = include_bytes!("../../../tests/data/ltar/archives/a74d1ed7ffcb58c4.ltar");
        let idx = LtarIndex::parse(attr).unwrap();
        assert_eq!(idx.dep_hash, 0x57289f38c9016500);
        assert_eq!(idx.trace_kind, LtarKind::Zstd);
        assert_eq!(idx.entries[0].kind, LtarKind::LgzModule);
        let files = idx.module_files().unwrap();
        assert_eq!(files.stem, "Attr");
        assert_eq!(
            files.exts,
            ["olean", "olean.server", "olean.private", "ilean", "ir", "c"]
        );
        let basic = include_bytes!("../../../tests/data/ltar/archives/311447e8cf024e29.ltar");
        let idx = LtarIndex::parse(basic).unwrap();
        assert_eq!(idx.entries[0].kind, LtarKind::Lgz);
        assert_eq!(idx.module_files().unwrap().exts, ["olean", "ilean", "c"]);
    }

    #[test]
    fn comments_are_skipped_and_other_magics_refused() {
        let mut v = module();
        v.extend_from_slice(b"\0\0a comment\0");
        assert_eq!(LtarIndex::parse(&v).unwrap().entries.len(), 3);
        let mut v = module();
        v[..4].copy_from_slice(b"LTR2");
        assert!(matches!(
            LtarIndex::parse(&v),
            Err(LtarError::BadMagic { .. })
        ));
    }
}
