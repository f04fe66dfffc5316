//! `sluice.toml`: the file format, and its validation into a `Config`.
//!
//! Owns: the config types, parsing (unknown keys are errors), and the semantic
//! checks that make a bad value stop startup with a message naming the key and
//! the file.
//! Does not: hold global state, open sockets or read secrets. Secrets are named
//! here (`password_env`, `password_file`, `pseudonym_key_env`, `pseudonym_key_file`,
//! a webhook's `secret_env`) and resolved by whoever needs them, through
//! [`Secret::resolve`], so `sluice check` can report a missing one.
//!
//! # Layout
//! - [`model`]: the types, one per table of the file.
//! - [`validate`]: checks serde cannot express (duplicates, hex, addresses).
//! - [`masking`]: `[masking]`, its types and checks.
//! - [`alerts`]: `[alerts]`, the webhooks, their types and checks.
//! - [`siem`]: `[siem]`, the SIEM sinks, their types and checks.
//! - `recording`: `[recording]`, session recording for replay.

mod alerts;
mod masking;
mod model;
mod recording;
mod siem;
mod validate;

pub use alerts::{ALERT_EVENTS, Alerts, InlineSecret, WebhookConfig, WebhookFormat, WebhookSecret};
pub use masking::{Masking, MaskingProfile};
pub use model::*;
pub use recording::Recording;
pub use siem::{Siem, SinkConfig, SinkTarget, StatementOption, SyslogTransport};

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{file}: {message}")]
    Parse { file: PathBuf, message: String },
    #[error("{file}: `{key}`: {message}")]
    Invalid { file: PathBuf, key: String, message: String },
}

/// A config error found by [`validate`], before the file name is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub key: String,
    pub message: String,
}

impl Config {
    /// Reads, parses and validates the file. Relative paths inside the file
    /// (policy dirs, certificates, secrets, the pseudonym key, the SQLite store) are resolved
    /// against the file's own folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: path.to_path_buf(), source })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::from_toml(&text, base).map_err(|e| match e {
            LoadError::Parse(message) => ConfigError::Parse { file: path.to_path_buf(), message },
            LoadError::Invalid(Invalid { key, message }) => {
                ConfigError::Invalid { file: path.to_path_buf(), key, message }
            }
        })
    }

    /// Parses and validates config text; `base` anchors relative paths.
    pub fn from_toml(text: &str, base: &Path) -> Result<Config, LoadError> {
        let mut config: Config =
            toml::from_str(text).map_err(|e| LoadError::Parse(e.to_string().trim_end().to_string()))?;
        validate::validate(&config).map_err(LoadError::Invalid)?;
        config.anchor_paths(base);
        Ok(config)
    }

    fn anchor_paths(&mut self, base: &Path) {
        let anchor = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(tls) = &mut self.client_tls {
            anchor(&mut tls.cert_file);
            anchor(&mut tls.key_file);
        }
        for conn in &mut self.connections {
            if let Some(p) = &mut conn.password_file {
                anchor(p);
            }
            if let Some(ca) = &mut conn.ca_file {
                anchor(ca);
            }
        }
        if let Some(dir) = &mut self.policy.dir {
            anchor(dir);
        }
        if let Some(key) = &mut self.masking.pseudonym_key_file {
            anchor(key);
        }
        if let Some(key) = &mut self.audit.signing_key_file {
            anchor(key);
        }
        for sink in &mut self.siem.sinks {
            if let Some(ca) = &mut sink.ca_file {
                anchor(ca);
            }
        }
        self.storage.anchor_sqlite_path(base);
    }

    pub fn connection(&self, name: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.name == name)
    }
}

/// Why config text was refused, before a file name is attached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Parse(String),
    #[error("`{}`: {}", .0.key, .0.message)]
    Invalid(Invalid),
}
