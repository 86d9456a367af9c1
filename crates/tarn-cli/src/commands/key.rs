//! `tarn key generate` and the key options of the transfer commands: `--sign-key` /
//! `TARN_SIGN_KEY` for `put` and `put-staged`, `--trust` and the trusted-keys files for `get`
//! (docs/trust.md).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use tarn_core::trust::{SecretKey, TrustedKey};
use tarn_remote::get::TrustPolicy;
use tarn_store::Workspace;

use super::CmdResult;
use crate::global_args::GlobalArgs;
use crate::ui;

/// The environment variable holding a private key's text (a CI secret).
pub(crate) const SIGN_KEY_ENV: &str = "TARN_SIGN_KEY";
/// A package's trusted-keys file, beside its lakefile.
pub(crate) const WORKSPACE_TRUSTED_KEYS: &str = ".tarn/trusted-keys";

/// `tarn key`.
#[derive(clap::Args, Debug)]
pub(crate) struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// Subcommands of `tarn key`.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum KeyCommand {
    /// Generate an Ed25519 signing key: FILE (private, mode 0600, OpenSSH format) and
    /// FILE.pub (one line to commit to .tarn/trusted-keys).
    Generate {
        /// Where to write the private key (never replaced if it exists).
        file: PathBuf,
        /// The comment stored with the key and on its public line.
        #[arg(long, default_value = "tarn signing key")]
        comment: String,
    },
}

/// Signing options of `put` and `put-staged`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct SignArgs {
    /// Sign the revision with this private key (OpenSSH ed25519, unencrypted; see
    /// docs/trust.md). Without it, the key text in TARN_SIGN_KEY is used when set.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
}

/// Trust options of `get`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct TrustArgs {
    /// Trust this public key (FILE.pub, or a trusted-keys file) for every package; repeatable.
    /// Trusted keys also come from $XDG_CONFIG_HOME/tarn/trusted-keys (every package) and
    /// each package's .tarn/trusted-keys (its own revisions). A package with any trusted key
    /// is fetched only with a valid signature.
    #[arg(long, value_name = "FILE.pub")]
    pub trust: Vec<PathBuf>,
}

/// `tarn key generate`.
pub(crate) fn key(global: &GlobalArgs, a: KeyArgs) -> CmdResult {
    match a.command {
        KeyCommand::Generate { file, comment } => {
            let public = tarn_store::generate_key(&file, &comment)?;
            let pub_path = tarn_store::public_key_path(&file);
            if global.json {
                ui::print_json(&serde_json::json!({
                    "command": "key generate",
                    "private_key": file.display().to_string(),
                    "public_key": pub_path.display().to_string(),
                    "key_id": public.key_id(),
                }));
            } else if !global.quiet {
                ui::say!(
                    "wrote private key {} (mode 0600; keep it secret) and public key {}\nkey id {}",
                    file.display(),
                    pub_path.display(),
                    public.key_id()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The signing key for an upload: `--sign-key FILE`, else `TARN_SIGN_KEY`'s text, else none.
pub(crate) fn signing_key(a: &SignArgs) -> anyhow::Result<Option<Arc<SecretKey>>> {
    if let Some(file) = &a.sign_key {
        return Ok(Some(Arc::new(tarn_store::read_secret_key(file)?)));
    }
    match std::env::var(SIGN_KEY_ENV) {
        Ok(text) if !text.trim().is_empty() => {
            let key = SecretKey::parse_openssh(&text).map_err(|e| {
                ui::with_hint(
                    anyhow!("{SIGN_KEY_ENV}: {e}"),
                    "set it to the whole text of the private key file `tarn key generate` wrote",
                )
            })?;
            Ok(Some(Arc::new(key)))
        }
        _ => Ok(None),
    }
}

/// The user's trusted-keys file: `$XDG_CONFIG_HOME/tarn/trusted-keys`, else
/// `~/.config/tarn/trusted-keys`.
fn user_trusted_keys() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("tarn").join("trusted-keys"))
}

/// The trust policy of each package of a `get`: the keys of every `--trust` file and of the
/// user's trusted-keys file, the package's own `.tarn/trusted-keys` (beside its lakefile:
/// each package names the keys its revisions are signed with), and the root package's keys
/// that carry `scope=` options (so the root can name the keys of a dependency's scope). A
/// key counts only for the scopes it covers; a package with no key at all is not in the map
/// (not signature-checked).
pub(crate) fn trust_policies(
    a: &TrustArgs,
    ws: &Workspace,
) -> anyhow::Result<BTreeMap<String, Arc<TrustPolicy>>> {
    let mut global: Vec<TrustedKey> = Vec::new();
    for f in &a.trust {
        global.extend(tarn_store::read_trusted_keys(f).context("--trust")?);
    }
    if !a.trust.is_empty() && global.is_empty() {
        return Err(anyhow!("--trust: the files hold no key"));
    }
    if let Some(path) = user_trusted_keys().filter(|p| p.is_file()) {
        global.extend(tarn_store::read_trusted_keys(&path)?);
    }
    let mut own_keys = BTreeMap::new();
    for pkg in &ws.packages {
        let own = pkg.dir.join(WORKSPACE_TRUSTED_KEYS);
        if own.is_file() {
            own_keys.insert(pkg.name.clone(), tarn_store::read_trusted_keys(&own)?);
        }
    }
    if let Some(root) = ws.packages.iter().find(|p| p.is_root()) {
        let scoped = own_keys.get(&root.name).into_iter().flatten();
        global.extend(scoped.filter(|k| !k.scopes.is_empty()).cloned());
    }
    let mut policies = BTreeMap::new();
    for pkg in &ws.packages {
        let mut keys = global.clone();
        if let Some(own) = own_keys.remove(&pkg.name) {
            keys.extend(
                own.into_iter()
                    .filter(|k| !pkg.is_root() || k.scopes.is_empty()),
            );
        }
        if !keys.is_empty() {
            policies.insert(pkg.name.clone(), Arc::new(TrustPolicy { keys }));
        }
    }
    Ok(policies)
}
