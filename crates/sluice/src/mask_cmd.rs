//! `sluice mask`: masks JSONL records or plain text from stdin to stdout.
//!
//! Owns: the flags. The work is `sluice_mask::jsonl`.

use anyhow::Context;
use clap::Args;
use sluice_mask::{Detector, Masker, Profile, jsonl};
use std::io::{BufReader, BufWriter};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct MaskArgs {
    /// Write `{"id", "spans": [{"start","end","type"}], "offset_unit": "utf8"}`
    /// (byte offsets into the original text) instead of the masked text.
    #[arg(long, conflicts_with = "text")]
    spans: bool,
    /// The masking profile: `safe_harbor` (default) or `unmasked`.
    #[arg(long, default_value = "safe_harbor")]
    profile: String,
    /// Read plain text, not JSONL: each line is masked and written as a line.
    #[arg(long)]
    text: bool,
}

pub fn run(args: MaskArgs) -> anyhow::Result<ExitCode> {
    let profile = Profile::built_in(&args.profile)?;
    let masker = Masker::new(Detector::new(), profile);
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
