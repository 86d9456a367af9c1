//! The archive path of a restore: each archive is vetted and named, the module's own
//! directories are checked (no symbolic link followed) and its old trace and outputs removed,
//! then leantar unpacks straight into those directories; tarn hashes what it wrote and writes
//! the trace last.
//!
//! leantar would write the archive's own trace to `C.trace` first of all, before the other
//! files: a kill in between would leave a trace naming missing outputs. So leantar reads the
//! archive as handed over to it (`handoff`), with its trace entry renamed, same length, to
//! `C.tarn~` ([`UNPACKED_TRACE_EXT`]), a name Lake never reads. Once the module is checked,
//! tarn replaces that file's contents with the module's own trace and renames it to
//! `C.trace`: it is the trace's temp file, so a restore creates no file of its own per module.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;
use tarn_core::{
    artifacts_of, fetch_trace_text, module_ext_base, module_output_descrs, ArtifactName, Hash,
    ModuleFiles, ModuleName, SavedTrace,
};

use super::handoff::{read_archive, ReadArchive, UNPACKED_TRACE_EXT};
use super::identity::{archive_module, ilean_module};
use super::place::{
    ensure_dir_reporting_new, link_or_copy, remove_if_exists, rewrite_into_place, write_into_place,
};
use super::{
    invalidate_module, read_small, ArchiveWork, RestoreError, RestoreTarget, MAX_SMALL_FILE_BYTES,
};

/// An archive vetted and named, waiting for its batch.
pub(crate) struct Staged {
    /// Its index in the archive work list.
    pub(crate) work: usize,
    /// The module it holds.
    pub(crate) module: ModuleName,
    /// Its files.
    pub(crate) files: ModuleFiles,
    /// Its size in bytes.
    pub(crate) len: u64,
    /// leantar's bases: the module's `leanLibDir` and `irDir` directories, once checked.
    pub(crate) bases: Option<[PathBuf; 2]>,
}

/// Reads a cached archive (bounded), checks its hash against its name, vets its container,
/// and names its module. leantar later reads it again, as handed over (see `handoff`).
/// Returns its files, its module and its size.
pub(crate) fn vet(w: &ArchiveWork) -> Result<(ModuleFiles, ModuleName, u64), RestoreError> {
    let ReadArchive {
        bytes,
        index,
        files,
    } = read_archive(w)?;
    // Content-stable archives (leantar 0.1.20 `-s`) carry a placeholder; the others were
    // packed for exactly one input hash, and Lake would not accept them for another.
    let packed = Hash(index.dep_hash);
    if packed != w.input && packed != Hash::NIL && packed != Hash(0) {
        return Err(RestoreError::OtherInput {
            path: w.cached.clone(),
            packed,
            input: w.input,
        });
    }
    let module = archive_module(&w.cached, &bytes, &index, &files, MAX_SMALL_FILE_BYTES)?;
    Ok((files, module, bytes.len() as u64))
}

/// The module directories checked or made so far in this run, and whether each was new
/// (made by this run, so holding nothing from before it).
#[derive(Debug, Default)]
pub(crate) struct CheckedDirs {
    dirs: Mutex<HashMap<PathBuf, bool>>,
}

impl CheckedDirs {
    /// `root/rel`, checked once per run (no link, no file on the way), and whether it is new.
    fn ensure(&self, root: &Path, rel: &Path) -> Result<(PathBuf, bool), RestoreError> {
        let path = root.join(rel);
        let mut dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(new) = dirs.get(&path) {
            return Ok((path, *new));
        }
        let (dir, made) = ensure_dir_reporting_new(root, rel)?;
        // Directories made on the way are new too: another module's directory, made here as
        // a parent of this one, holds nothing from before either.
        let new = made.last() == Some(&dir);
        for m in made {
            dirs.insert(m, true);
        }
        dirs.insert(dir.clone(), new);
        Ok((dir, new))
    }
}

/// Gets the module's directories ready for leantar: checked or made without following a
/// link; unless both are new, the old trace removed first (refused if it is for another
/// input and not `force`), then the old outputs, their `.hash` files and a stale `C.tarn~`.
pub(crate) fn prepare(
    t: &RestoreTarget,
    m: &ModuleName,
    input: Hash,
    force: bool,
    dirs: &CheckedDirs,
) -> Result<[PathBuf; 2], RestoreError> {
    let (lib, lib_new) = dirs.ensure(&t.dir, &t.layout.module_lib_dir(m))?;
    let (ir, ir_new) = dirs.ensure(&t.dir, &t.layout.module_ir_dir(m))?;
    if !(lib_new && ir_new) {
        invalidate_module(t, m, input, force)?;
        remove_if_exists(&lib.join(format!("{}.{UNPACKED_TRACE_EXT}", m.last())))?;
    }
    Ok([lib, ir])
}

/// After leantar: checks the module's files (the `.ilean` names the same module, the
/// archive's own trace lists exactly the files written), makes them readable, links the
/// archive when restoring all, and writes the trace last. On a failure the files leantar
/// wrote for it are removed.
pub(crate) fn finish(
    w: &ArchiveWork,
    s: &Staged,
    t: &RestoreTarget,
    handed: &str,
    stderr: &str,
) -> Result<(), RestoreError> {
    let bases = s.bases.as_ref().expect("prepared before unpacking");
    let stem = &s.files.stem;
    let unpacked_trace = bases[0].join(format!("{stem}.{UNPACKED_TRACE_EXT}"));
    if !unpacked_trace.is_file() {
        // leantar names the archive first: `<name>: <error>` or `<name> not found`.
        let message = stderr
            .lines()
            .filter(|l| {
                l.strip_prefix(handed)
                    .is_some_and(|rest| rest.starts_with(':') || rest.starts_with(' '))
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(RestoreError::NotUnpacked {
            path: w.cached.clone(),
            message: if message.is_empty() {
                "its trace is missing after the run".into()
            } else {
                message
            },
        });
    }
    let path_of = |ext: &str| {
        let base = module_ext_base(ext).unwrap_or(0) as usize;
        bases[base].join(format!("{stem}.{ext}"))
    };
    let descrs = match check_unpacked(w, s, &unpacked_trace, &path_of) {
        Ok(d) => d,
        Err(e) => {
            for ext in &s.files.exts {
                let _ = fs::remove_file(path_of(ext));
            }
            let _ = fs::remove_file(&unpacked_trace);
            return Err(e);
        }
    };
    let m = &s.module;
    if t.restore_all {
        link_or_copy(&w.cached, &t.dir.join(t.layout.output_path(m, "ltar")))?;
    }
    let trace_path = t.dir.join(t.layout.output_path(m, "trace"));
    let text = fetch_trace_text(w.input, &descrs);
    // `C.tarn~` becomes the trace's temp file: no file created, none left to remove.
    if trace_path.parent() == Some(bases[0].as_path()) {
        rewrite_into_place(&unpacked_trace, text.as_bytes(), &trace_path)
    } else {
        remove_if_exists(&unpacked_trace)?;
        write_into_place(&trace_path, text.as_bytes())
    }
}

/// Hashes a file leantar wrote into a checked module directory, through one descriptor
/// (opened without following a link or blocking, and only if it is a regular file), and makes
/// it readable by everyone: leantar leaves `0600`, build outputs are not private (Windows has
/// no mode bits: the file inherits the directory's ACL). With `keep`, also returns its bytes
/// (read once, bounded), for the `.ilean`'s module name.
fn hash_unpacked(p: &Path, keep: bool) -> Result<(Hash, Option<Vec<u8>>), RestoreError> {
    let io = |e| RestoreError::io(p, e);
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(p).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(io(std::io::Error::other("not a regular file")));
    }
    let result = if keep {
        if meta.len() > MAX_SMALL_FILE_BYTES {
            return Err(io(std::io::Error::other(format!(
                "larger than {MAX_SMALL_FILE_BYTES} bytes"
            ))));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        std::io::Read::take(&file, MAX_SMALL_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        (Hash::of_bytes(&bytes), Some(bytes))
    } else {
        (crate::hashing::hash_open_file(&file).map_err(io)?, None)
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(io)?;
    }
    Ok(result)
}

/// The checks of [`finish`]; returns the trace's `outputs`.
fn check_unpacked(
    w: &ArchiveWork,
    s: &Staged,
    unpacked_trace: &Path,
    path_of: &dyn Fn(&str) -> PathBuf,
) -> Result<Value, RestoreError> {
    let mut outputs = Vec::new();
    for ext in &s.files.exts {
        let p = path_of(ext);
        let (h, bytes) = hash_unpacked(&p, ext == "ilean")?;
        if let Some(bytes) = bytes {
            let named = ilean_module(&p, &bytes)?;
            if named != s.module {
                return Err(RestoreError::Identity {
                    path: w.cached.clone(),
                    message: format!(
                        "its .ilean names module {named}, its .c header {}",
                        s.module
                    ),
                });
            }
        }
        outputs.push(ArtifactName::new(h, ext.clone()));
    }
    // The archive's own trace (leantar's re-serialisation) must list exactly these files.
    let packed = SavedTrace::parse(&String::from_utf8_lossy(&read_small(unpacked_trace)?)).ok();
    let mut is_module = s.files.exts.iter().any(|e| e == "olean.server");
    if let Some(listed) = packed.as_ref().and_then(|t| t.outputs.as_ref()) {
        if let Some(Value::Bool(m)) = listed.get("m") {
            is_module = *m;
        }
        let mut listed_names = artifacts_of(listed).unwrap_or_default();
        listed_names.retain(|a| a.ext != "ltar");
        let mut held = outputs.clone();
        held.sort();
        if listed_names != held {
            let show = |v: &[ArtifactName]| {
                v.iter()
                    .map(ArtifactName::file_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(RestoreError::TraceDisagrees {
                path: w.cached.clone(),
                listed: show(&listed_names),
                held: show(&held),
            });
        }
    }
    Ok(module_output_descrs(is_module, &outputs, None))
}
