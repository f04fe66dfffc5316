//! The `slack` payload: an incoming-webhook message (Slack `blocks`, with a
//! `text` line that Mattermost and notifications show on their own).
//!
//! Owns: turning an [`AlertEvent`] into that JSON, with user text escaped
//! and the statement truncated to fit Slack's block limits.

use crate::AlertEvent;
use serde_json::{Value, json};

/// Most statement characters shown (Slack refuses section text over 3000).
const STATEMENT_CHARS: usize = 2800;
/// Most statement characters in the one-line `text`.
const SUMMARY_STATEMENT_CHARS: usize = 120;
/// Most characters of one field's value (Slack's limit is 2000 per field).
const FIELD_CHARS: usize = 1900;
/// Slack shows at most ten fields in a section.
const MAX_FIELDS: usize = 10;

/// The message body for `event`.
pub(crate) fn payload(event: &AlertEvent) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": event.kind.title() },
    })];
    if let Some(statement) = &event.statement {
        let fenced = escape_within(statement, STATEMENT_CHARS, true);
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": format!("```{fenced}```") } }));
    }
    let fields: Vec<Value> = fields(event)
        .into_iter()
        .take(MAX_FIELDS)
        .map(|(name, value)| {
            let text = format!("*{name}*\n{}", escape_within(&value, FIELD_CHARS, false));
            json!({ "type": "mrkdwn", "text": text })
        })
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    if let Some(link) = &event.link {
        let link = link.trim_end_matches('/');
        let text = format!(
            "<{}|Open in Sluice>\nApprove: `POST {}/approve`\nDeny: `POST {}/deny`",
            escape_link(link),
            escape(link),
            escape(link)
        );
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } }));
    }
    let context = format!("Sluice · `{}` · {} · {}", event.kind, event.time.to_rfc3339(), event.id);
    blocks.push(json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": context }] }));
    json!({ "text": summary(event), "blocks": blocks })
}

/// One line: what happened, who, where, and the start of the statement.
fn summary(event: &AlertEvent) -> String {
    let mut line = format!("Sluice: {}", event.kind.title());
    if let Some(decision) = &event.decision {
        line.push_str(&format!(" ({decision})"));
    }
    if let Some(principal) = &event.principal {
        line.push_str(&format!(" for {principal}"));
    }
    if let Some(connection) = &event.connection {
        line.push_str(&format!(" on {connection}"));
    }
    if let Some(statement) = &event.statement {
        line.push_str(&format!(": {}", truncate(statement, SUMMARY_STATEMENT_CHARS)));
    }
    if let Some(reason) = event.reason.as_ref().or(event.error.as_ref()) {
        line.push_str(&format!(" ({reason})"));
    }
    escape(&line.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The labelled values shown as fields, most important first.
fn fields(event: &AlertEvent) -> Vec<(&'static str, String)> {
    let text = [
        ("Principal", &event.principal),
        ("Connection", &event.connection),
        ("Reason", &event.reason),
        ("Policy", &event.policy),
        ("Approval", &event.approval_id),
        ("Status", &event.status),
        ("Decision", &event.decision),
        ("Reviewer", &event.reviewer),
        ("Comment", &event.comment),
        ("Error", &event.error),
    ];
    let mut fields: Vec<(&'static str, String)> =
        text.into_iter().filter_map(|(name, value)| Some((name, value.clone()?))).collect();
    if let Some(rows) = event.row_estimate {
        fields.push(("Estimated rows", rows.to_string()));
    }
    if let Some(request) = &event.request_id {
        fields.push(("Request", request.clone()));
    }
    fields
}

/// At most `max` characters, marking a cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}… (truncated)", &text[..cut]),
        None => text.to_string(),
    }
}

/// `text` escaped for Slack, cut so the escaped form has at most `max`
/// characters (plus the cut mark). With `in_code`, a zero-width space goes
/// between adjacent backticks, so the text cannot close its ``` block.
fn escape_within(text: &str, max: usize, in_code: bool) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut previous = None;
    for c in text.chars() {
        let escaped = match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '`' if in_code && previous == Some('`') => "\u{200b}`".to_string(),
            c => c.to_string(),
        };
        count += escaped.chars().count();
        if count > max {
            out.push_str("… (truncated)");
            return out;
        }
        out.push_str(&escaped);
        previous = Some(c);
    }
    out
}

/// Slack's three control characters in message text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A URL inside `<...|label>`: also without `|`.
fn escape_link(url: &str) -> String {
    escape(url).replace('|', "%7C")
}

#[cfg(test)]
mod tests {
    use super::payload;
    use crate::{AlertEvent, EventKind};

    #[test]
    fn requested_approval_shows_statement_fields_and_links() {
        let event = AlertEvent::new(EventKind::ApprovalRequested)
            .with_principal("agent-7")
            .with_connection("patients")
            .with_statement("DELETE FROM visits WHERE a < 3")
            .with_reason("where-less delete")
            .with_policy("hold-deletes")
            .with_approval_id("a1")
            .with_status("pending")
            .with_link("https://sluice.example/api/approvals/a1");
        let body = payload(&event);
        let text = body["text"].as_str().unwrap();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("agent-7") && text.contains("patients") && text.contains("DELETE FROM visits"), "{text}");
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[1]["text"]["text"], "```DELETE FROM visits WHERE a &lt; 3```");
        let fields: Vec<&str> =
            blocks[2]["fields"].as_array().unwrap().iter().map(|f| f["text"].as_str().unwrap()).collect();
        for expected in
            ["*Principal*\nagent-7", "*Connection*\npatients", "*Reason*\nwhere-less delete", "*Approval*\na1"]
        {
            assert!(fields.contains(&expected), "{fields:?}");
        }
        let links = blocks[3]["text"]["text"].as_str().unwrap();
        assert!(links.contains("<https://sluice.example/api/approvals/a1|Open in Sluice>"), "{links}");
        assert!(links.contains("POST https://sluice.example/api/approvals/a1/approve"), "{links}");
        assert!(links.contains("POST https://sluice.example/api/approvals/a1/deny"), "{links}");
    }

    #[test]
    fn long_statements_are_truncated_and_fences_kept_intact() {
        let statement = format!("SELECT '```' || '{}'", "é".repeat(5000));
        let body = payload(&AlertEvent::new(EventKind::RequestBlocked).with_statement(statement));
        let code = body["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(code.chars().count() < 3000, "{}", code.chars().count());
        assert!(code.ends_with("(truncated)```"));
        assert_eq!(code.matches("```").count(), 2);
    }

    #[test]
    fn without_optional_parts_only_header_and_context_remain() {
        let body = payload(&AlertEvent::new(EventKind::AuditStoreUnavailable));
        let kinds: Vec<&str> = body["blocks"].as_array().unwrap().iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["header", "context"]);
        assert_eq!(body["text"], "Sluice: Audit store unavailable");
    }
}
