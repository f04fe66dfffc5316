//! `sluice keys generate`: a new Ed25519 key for signing audit checkpoints.
//!
//! Owns: writing the private key file (created new, mode 0600, never
//! overwritten) and its public key beside it (`PATH.pub`). The formats are
//! `sluice_evidence::SigningKey`'s (the C2SP note key formats).

use anyhow::Context;
use clap::Subcommand;
use sluice_evidence::SigningKey;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new signing key to PATH (mode 0600) and its public key to
    /// PATH.pub. Keep PATH away from the audit database: whoever holds the
    /// key and the database could rewrite both the log and its checkpoints.
    Generate {
        /// Where the private key goes; it must not exist yet.
        #[arg(long)]
        out: PathBuf,
        /// The key's name, shown in every signature line.
        #[arg(long, default_value = "sluice")]
        name: String,
    },
}

pub fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    let KeysCommand::Generate { out, name } = command;
    let key = SigningKey::generate(&name).with_context(|| format!("cannot make a key named {name:?}"))?;
    let public = public_path(&out);
    for path in [&out, &public] {
        anyhow::ensure!(!path.exists(), "{} already exists; not replacing it", path.display());
    }
    write_new(&out, key.to_key_file().as_bytes(), 0o600)?;
    write_new(&public, format!("{}\n", key.verifier()).as_bytes(), 0o644)?;
    println!("private key: {} (mode 0600; keep it away from the audit database)", out.display());
    println!("public key:  {}", public.display());
    println!("log id:      {}", key.log_id());
    Ok(ExitCode::SUCCESS)
}

/// `PATH.pub`.
fn public_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Creates `path` with `mode`; an existing file is an error, never replaced.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_all().with_context(|| format!("cannot write {}", path.display()))
}
