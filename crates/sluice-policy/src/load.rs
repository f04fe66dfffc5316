//! Loading policy files: parse each file on its own, read Sluice's
//! annotations, validate everything against the schema, and report every
//! problem at its file, line and column.
//!
//! Owns: file order, Cedar-id ↔ policy mapping, error positions.
//! Does not: decide; slicing is `index`.

use crate::PolicyError;
use crate::error::Problem;
use crate::meta::{PolicyMeta, read_meta};
use crate::source::SourceFile;
use cedar_policy::{Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

/// Policies renamed to their global index (Cedar id `"17"` is `metas[17]`).
#[derive(Debug)]
pub(crate) struct Loaded {
    pub policies: Vec<Policy>,
    pub metas: Vec<PolicyMeta>,
    /// Validator warnings (e.g. a policy that can never apply); not fatal.
    pub warnings: Vec<Problem>,
}

/// Reads every `*.cedar` file in `dir`, sorted by name.
pub(crate) fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, PolicyError> {
    let io = |path: &Path, source| PolicyError::Io { path: path.to_owned(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let path = entry.map_err(|e| io(dir, e))?.path();
        if path.extension().is_some_and(|e| e == "cedar") && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(PolicyError::NoPolicyFiles(dir.to_owned()));
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
            let name =
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            Ok((name, text))
        })
        .collect()
}

pub(crate) fn load(sources: &[(String, String)], schema: &Schema) -> Result<Loaded, PolicyError> {
    let files: Vec<SourceFile> =
        sources.iter().map(|(name, text)| SourceFile::new(name.clone(), text.clone())).collect();
    let mut problems = Vec::new();
    let mut policies = Vec::new();
    let mut metas = Vec::new();
    // Global index -> (file, byte offset of the policy's start).
    let mut origin: Vec<(usize, usize)> = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();

    for (f, file) in files.iter().enumerate() {
        let problem = |offset: usize, message: String| {
            let (line, column) = file.line_col(offset);
            Problem { file: file.name.clone(), line, column, message }
        };
        let set = match PolicySet::from_str(&file.text) {
            Ok(set) => set,
            Err(errors) => {
                for e in errors.iter() {
                    problems.push(problem(first_offset(e).unwrap_or(0), with_help(e.to_string(), e)));
                }
                continue;
            }
        };
        let starts = file.policy_starts();
        let start_of = |id: &PolicyId| {
            AsRef::<str>::as_ref(id)
                .strip_prefix("policy")
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| starts.get(n).copied())
        };
        for template in set.templates() {
            let at = start_of(template.id()).unwrap_or(0);
            problems.push(problem(
                at,
                "policy templates (?principal, ?resource) are not supported; write static policies".into(),
            ));
        }
        let mut in_file: Vec<(usize, &Policy)> = set.policies().map(|p| (start_of(p.id()).unwrap_or(0), p)).collect();
        in_file.sort_by_key(|(at, _)| *at);
        for (at, policy) in in_file {
            let (line, _) = file.line_col(at);
            match read_meta(policy, format!("{}:{line}", file.name)) {
                Ok(meta) => {
                    let index = policies.len();
                    if let Some(&first) = ids.get(&meta.name) {
                        let (ff, fat) = origin[first];
                        let (fline, _) = files[ff].line_col(fat);
                        problems.push(problem(
                            at,
                            format!(
                                "@id(\"{}\") is also used at {}:{fline}; ids must be unique",
                                meta.name, files[ff].name
                            ),
                        ));
                    } else {
                        ids.insert(meta.name.clone(), index);
                    }
                    policies.push(policy.new_id(PolicyId::new(index.to_string())));
                    metas.push(meta);
                    origin.push((f, at));
                }
                Err(messages) => problems.extend(messages.into_iter().map(|m| problem(at, m))),
            }
        }
    }
    if !problems.is_empty() {
        return Err(PolicyError::Invalid(problems));
    }

    let set = PolicySet::from_policies(policies.iter().cloned()).map_err(|e| {
        PolicyError::Invalid(vec![Problem { file: String::new(), line: 0, column: 0, message: e.to_string() }])
    })?;
    let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    let locate = |id: &PolicyId, offset: Option<usize>, message: String| -> Problem {
        let index: usize = AsRef::<str>::as_ref(id).parse().unwrap_or(0);
        let (f, at) = origin.get(index).copied().unwrap_or((0, 0));
        let file = &files[f];
        let (line, column) = file.line_col(offset.unwrap_or(at));
        let name = metas.get(index).map_or("?", |m| m.name.as_str());
        let message = message.replace(&format!("policy `{id}`"), &format!("policy `{name}`"));
        Problem { file: file.name.clone(), line, column, message }
    };
    for e in result.validation_errors() {
        problems.push(locate(e.policy_id(), first_offset(e), with_help(e.to_string(), e)));
    }
    let warnings = result
        .validation_warnings()
        .map(|w| locate(w.policy_id(), first_offset(w), with_help(w.to_string(), w)))
        .collect();
    if !problems.is_empty() {
        return Err(PolicyError::Invalid(merge_per_action(problems, &files)));
    }
    Ok(Loaded { policies, metas, warnings })
}

/// Cedar validates a policy once per action it may apply to, so one typo in
/// an open-action policy is reported seven times. Problems that differ only
/// in the action become one, without the action; the rest are sorted by
/// file order and position.
fn merge_per_action(problems: Vec<Problem>, files: &[SourceFile]) -> Vec<Problem> {
    fn without_action(message: &str) -> String {
        const MARK: &str = " for Sluice::Action::\"";
        match message.find(MARK) {
            Some(at) => {
                let rest = &message[at + MARK.len()..];
                let end = rest.find('"').map_or(rest.len(), |e| e + 1);
                format!("{}{}", &message[..at], &rest[end..])
            }
            None => message.to_owned(),
        }
    }
    let key = |p: &Problem| (files.iter().position(|f| f.name == p.file), p.line, p.column, without_action(&p.message));
    let mut counts: HashMap<_, usize> = HashMap::new();
    for p in &problems {
        *counts.entry(key(p)).or_default() += 1;
    }
    let mut out: Vec<(_, Problem)> = Vec::new();
    for mut p in problems {
        let k = key(&p);
        if counts[&k] > 1 {
            if out.iter().any(|(seen, _)| *seen == k) {
                continue;
            }
            p.message = k.3.clone();
        }
        out.push((k, p));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, p)| p).collect()
}

fn first_offset(d: &dyn Diagnostic) -> Option<usize> {
    d.labels()?.map(|l| l.offset()).min()
}

fn with_help(message: String, d: &dyn Diagnostic) -> String {
    match d.help() {
        Some(help) => format!("{message} ({help})"),
        None => message,
    }
}
