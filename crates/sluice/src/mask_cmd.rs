//! `sluice mask`: masks JSONL records or plain text from stdin to stdout.
//!
//! Owns: the flags, and picking the masker: a built-in profile, or with
//! `--config` any profile of that file's `[masking]` (built as `serve`
//! builds it, column overrides included). The work is `sluice_mask::jsonl`.

use anyhow::Context;
use clap::Args;
use sluice_mask::{Detector, Masker, Profile, jsonl};
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct MaskArgs {
    /// Write `{"id", "spans": [{"start","end","type"}], "offset_unit": "utf8"}`
    /// (byte offsets into the original text) instead of the masked text.
    #[arg(long, conflicts_with = "text")]
    spans: bool,
    /// The masking profile: `safe_harbor` (default) or `unmasked`, or with
    /// `--config` any profile of its `[masking]`.
    #[arg(long, default_value = "safe_harbor")]
    profile: String,
    /// Read plain text, not JSONL: each line is masked and written as a line.
    #[arg(long)]
    text: bool,
    /// A sluice.toml whose `[masking]` profiles, pseudonym key and column
    /// overrides to use.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

pub fn run(args: MaskArgs) -> anyhow::Result<ExitCode> {
    let masker = masker(&args)?;
    let input = BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let output = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if args.text {
        jsonl::run_text(input, output, &masker).context("sluice mask --text")?;
    } else {
        let mode = if args.spans { jsonl::Output::Spans } else { jsonl::Output::Masked };
        jsonl::run(input, output, &masker, mode).context("sluice mask")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn masker(args: &MaskArgs) -> anyhow::Result<Arc<Masker>> {
    let Some(path) = &args.config else {
        return Ok(Arc::new(Masker::new(Detector::new(), Profile::built_in(&args.profile)?)));
    };
    let config = crate::load_config(path)?;
    let masking = sluice_server::masking::build(&config).with_context(|| format!("{}", path.display()))?;
    match masking.masker(&args.profile) {
        Some(Some(masker)) => Ok(masker.clone()),
        // A profile that keeps everything has no masker in the registry.
        Some(None) => Ok(Arc::new(Masker::new(Detector::new(), Profile::unmasked().renamed(&args.profile)))),
        None => anyhow::bail!("{}: no masking profile `{}` is defined", path.display(), args.profile),
    }
}
