//! What a Lean installation says about itself: the line `lean --version` prints, the platform
//! (`System.Platform.target`) and toolchain (`Lean.toolchain`) Lake derives from the same
//! build constants, and the name elan gives a toolchain. Parsing only; running `lean` is
//! `tarn_store::probe_lean`'s job. The rules are cited in docs/lake-source-notes.md §16.

/// The facts `lean --version` prints, in the order Lean's `library/util.cpp` joins them:
/// `Lean (version <version>[, <target>][, commit <hash>], <build type>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeanVersion {
    /// `LEAN_VERSION_STRING`: `major.minor.patch`, plus `-<special desc>` when the build has one
    /// (`4.28.0`, `4.22.0-rc1`, `4.23.0-nightly-2025-08-01`).
    pub version: String,
    /// `LEAN_PLATFORM_TARGET`, the string `System.Platform.target` returns (`None` when the
    /// build had none, as Lean then prints nothing for it).
    pub target: Option<String>,
    /// The commit the build was made from, as printed (`None` when not printed).
    pub commit: Option<String>,
}

/// The longest `lean --version` output tarn reads (a real one is about 110 bytes).
pub const LEAN_VERSION_OUTPUT_LIMIT: usize = 4096;

/// The origin Lean's `Lean.origin` and elan's default origin name.
const LEAN_ORIGIN: &str = "leanprover/lean4";

impl LeanVersion {
    /// Parses the first line of `lean --version`'s output. `None` when it is not Lean's
    /// header (another program called `lean`, or a future format tarn does not know).
    pub fn parse(output: &str) -> Option<LeanVersion> {
        let line = output.lines().next()?.trim();
        let inner = line.strip_prefix("Lean (version ")?.strip_suffix(')')?;
        let fields: Vec<&str> = inner.split(", ").collect();
        // At least the version and the build type.
        let (version, rest) = fields.split_first()?;
        let (_build_type, middle) = rest.split_last()?;
        if version.is_empty() || !version.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let mut target = None;
        let mut commit = None;
        for field in middle {
            if let Some(hash) = field.strip_prefix("commit ") {
                commit = Some(hash.to_string());
            } else if target.is_none() && commit.is_none() && !field.is_empty() {
                target = Some(field.to_string());
            } else {
                return None;
            }
        }
        Some(LeanVersion {
            version: version.to_string(),
            target,
            commit,
        })
    }

    /// `major.minor.patch` and the special description (`rc1`, `nightly-2025-08-01`), if any.
    fn core_and_desc(&self) -> (&str, Option<&str>) {
        match self.version.split_once('-') {
            Some((core, desc)) if !desc.is_empty() => (core, Some(desc)),
            _ => (self.version.as_str(), None),
        }
    }

    /// Whether the build is a release (`LEAN_VERSION_IS_RELEASE`). `lean --version` does not
    /// print it; release candidates carry `rcN`, nightlies `nightly-…` and PR builds
    /// `pr-release-…`, and a build without a description is taken to be a stable release
    /// (only a developer's own build of Lean is neither).
    fn is_release(&self) -> bool {
        match self.core_and_desc().1 {
            None => true,
            Some(desc) => !(desc.starts_with("nightly") || desc.starts_with("pr-release")),
        }
    }

    /// `Lean.toolchain` of this build (Lean's `Init/Meta/Defs.lean`): `leanprover/lean4:`
    /// followed by `4.28.0` for a release, `4.22.0-rc1` for a release candidate, or the bare
    /// description (`nightly-2025-08-01`) for other builds. Note: no `v` (unlike elan's names).
    pub fn lean_toolchain(&self) -> Option<String> {
        let (core, desc) = self.core_and_desc();
        let release = self.is_release();
        match desc {
            Some(desc) if release => Some(format!("{LEAN_ORIGIN}:{core}-{desc}")),
            Some(desc) => Some(format!("{LEAN_ORIGIN}:{desc}")),
            None if release => Some(format!("{LEAN_ORIGIN}:{core}")),
            None => None,
        }
    }

    /// The name elan gives this build when a project asks for a moving channel (`stable`,
    /// `nightly`, …): the release it resolves to, spelled as [`elan_toolchain_name`] spells it.
    pub fn elan_name(&self, origin: Option<&str>) -> String {
        let (_, desc) = self.core_and_desc();
        let release = match desc {
            Some(d) if !self.is_release() => d.to_string(),
            _ => format!("v{}", self.version),
        };
        elan_name_parts(origin.unwrap_or(LEAN_ORIGIN), &release)
    }
}

/// The toolchain name elan derives from a `lean-toolchain` line and passes to `lake` in
/// `ELAN_TOOLCHAIN` (elan's `lookup_toolchain_desc`): `[origin:]release`, the origin
/// defaulting to `leanprover/lean4`, `-nightly` appended to it for a nightly release, and a
/// `v` put before a release that starts with a digit. `None` for a moving channel (`stable`,
/// `beta`, `nightly`, `latest`, `lean-toolchain`), which elan resolves over the network, and
/// for text elan refuses.
pub fn elan_toolchain_name(line: &str) -> Option<String> {
    let line = line.trim();
    let (origin, release) = match line.split_once(':') {
        Some((origin, release)) => {
            let mut parts = origin.split('/');
            let valid = |s: Option<&str>| {
                s.is_some_and(|s| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                })
            };
            if !(valid(parts.next()) && valid(parts.next()) && parts.next().is_none()) {
                return None;
            }
            (origin, release)
        }
        None => (LEAN_ORIGIN, line),
    };
    if release.is_empty()
        || !release
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        || matches!(
            release,
            "stable" | "beta" | "nightly" | "latest" | "lean-toolchain"
        )
    {
        return None;
    }
    Some(elan_name_parts(origin, release))
}

/// The origin of a `lean-toolchain` line (`None` when it names none).
pub fn toolchain_origin(line: &str) -> Option<&str> {
    line.trim().split_once(':').map(|(o, _)| o)
}

fn elan_name_parts(origin: &str, release: &str) -> String {
    let origin = if release.starts_with("nightly") && !origin.ends_with("-nightly") {
        format!("{origin}-nightly")
    } else {
        origin.to_string()
    };
    if release.starts_with(|c: char| c.is_ascii_digit()) {
        format!("{origin}:v{release}")
    } else {
        format!("{origin}:{release}")
    }
}

/// The platform tarn assumes when no Lean can be run: what Lean's own release builds report
/// on a machine like this one (`std::env::consts` `arch` and `os`). Only a guess: on macOS the
/// triple carries the Darwin version of the machine Lean was built on, which changes between
/// releases (`arm64-apple-darwin24.6.0` for v4.28.0 to v4.33.1).
pub(crate) fn fallback_platform(arch: &str, os: &str) -> String {
    match (os, arch) {
        ("linux", _) => format!("{arch}-unknown-linux-gnu"),
        ("macos", "aarch64") => "arm64-apple-darwin24.6.0".to_string(),
        ("macos", _) => format!("{arch}-apple-darwin"),
        ("windows", _) => format!("{arch}-w64-windows-gnu"),
        (os, _) => format!("{arch}-unknown-{os}"),
    }
}

/// The platform tarn assumes for this machine when no Lean can be run (a guess from `arch` and
/// `os` alone, as Lean's release builds report it).
pub fn host_platform() -> String {
    fallback_platform(std::env::consts::ARCH, std::env::consts::OS)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded `lean --version` lines of official releases (one per OS).
    const LINUX: &str = "Lean (version 4.30.0, x86_64-unknown-linux-gnu, commit d024af099ca4bf2c86f649261ebf59565dc8c622, Release)\n";
    const MACOS: &str = "Lean (version 4.33.1, arm64-apple-darwin24.6.0, commit 819816b2e0a3bf405af45ae5c7af2491d8f5bee6, Release)\n";
    const WINDOWS: &str = "Lean (version 4.33.1, x86_64-w64-windows-gnu, commit 819816b2e0a3bf405af45ae5c7af2491d8f5bee6, Release)\r\n";

    #[test]
    fn parses_recorded_release_lines() {
        let l = LeanVersion::parse(LINUX).unwrap();
        assert_eq!(l.version, "4.30.0");
        assert_eq!(l.target.as_deref(), Some("x86_64-unknown-linux-gnu"));
        assert_eq!(
            l.commit.as_deref(),
            Some("d024af099ca4bf2c86f649261ebf59565dc8c622")
        );
        assert_eq!(
            l.lean_toolchain().as_deref(),
            Some("leanprover/lean4:4.30.0")
        );
        let m = LeanVersion::parse(MACOS).unwrap();
        assert_eq!(m.target.as_deref(), Some("arm64-apple-darwin24.6.0"));
        let w = LeanVersion::parse(WINDOWS).unwrap();
        assert_eq!(w.target.as_deref(), Some("x86_64-w64-windows-gnu"));
        assert_eq!(w.elan_name(None), "leanprover/lean4:v4.33.1");
    }

    #[test]
    fn special_descriptions_follow_lean_toolchain() {
        let rc = LeanVersion::parse(
            "Lean (version 4.22.0-rc1, x86_64-unknown-linux-gnu, commit abc, Release)",
        )
        .unwrap();
        assert_eq!(
            rc.lean_toolchain().as_deref(),
            Some("leanprover/lean4:4.22.0-rc1")
        );
        assert_eq!(rc.elan_name(None), "leanprover/lean4:v4.22.0-rc1");
        let nightly = LeanVersion::parse(
            "Lean (version 4.23.0-nightly-2025-08-01, aarch64-unknown-linux-gnu, commit abc, Release)",
        )
        .unwrap();
        assert_eq!(
            nightly.lean_toolchain().as_deref(),
            Some("leanprover/lean4:nightly-2025-08-01")
        );
        assert_eq!(
            nightly.elan_name(None),
            "leanprover/lean4-nightly:nightly-2025-08-01"
        );
    }

    #[test]
    fn a_build_without_target_or_commit_parses() {
        let v = LeanVersion::parse("Lean (version 4.1.0, Release)").unwrap();
        assert_eq!(v.target, None);
        assert_eq!(v.commit, None);
        let v = LeanVersion::parse("Lean (version 4.1.0, commit abc, Release)").unwrap();
        assert_eq!(v.target, None);
    }

    #[test]
    fn other_output_is_not_lean() {
        for s in [
            "",
            "lean 1.0",
            "Lean (version , x, Release)",
            "Lean (version 4.1.0)",
        ] {
            assert_eq!(LeanVersion::parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn elan_names_follow_elan() {
        let cases = [
            ("leanprover/lean4:v4.28.0", Some("leanprover/lean4:v4.28.0")),
            ("v4.28.0\n", Some("leanprover/lean4:v4.28.0")),
            ("4.28.0", Some("leanprover/lean4:v4.28.0")),
            (
                "leanprover/lean4:nightly-2025-01-01",
                Some("leanprover/lean4-nightly:nightly-2025-01-01"),
            ),
            (
                "leanprover/lean4-nightly:nightly-2025-01-01",
                Some("leanprover/lean4-nightly:nightly-2025-01-01"),
            ),
            (
                "leanprover/lean4-pr-releases:pr-release-123",
                Some("leanprover/lean4-pr-releases:pr-release-123"),
            ),
            ("leanprover/lean4:stable", None),
            ("nightly", None),
            ("a/b/c:v1", None),
            ("bad name", None),
        ];
        for (line, want) in cases {
            assert_eq!(elan_toolchain_name(line).as_deref(), want, "{line:?}");
        }
    }

    #[test]
    fn fallback_platforms_are_leans_release_triples() {
        assert_eq!(
            fallback_platform("x86_64", "linux"),
            "x86_64-unknown-linux-gnu"
        );
        assert_eq!(
            fallback_platform("aarch64", "macos"),
            "arm64-apple-darwin24.6.0"
        );
        assert_eq!(
            fallback_platform("x86_64", "windows"),
            "x86_64-w64-windows-gnu"
        );
        assert!(host_platform().contains(std::env::consts::ARCH) || cfg!(target_os = "macos"));
    }
}
