//! The response direction of the relay: upstream messages to the client, in
//! order, each attributed to the request at the head of the queue.
//!
//! Owns: counting rows, tags and errors per request, enforcing its result
//! budget row by row, withholding what must not reach the client (a record
//! that failed, a budget crossed) and writing the error in its place,
//! refusals written where the upstream's answer would be, and tracking
//! `standard_conforming_strings` from ParameterStatus.
//! Does not: read the client, or forward anything upstream (the parent
//! module's request side does).

use super::{Columns, Ending, Expect, Inflight, SessionEnd, Tracked, Withheld, record};
use crate::codec::{self, BackendMessage, Frame, Severity, encode};
use crate::mask::{self, MaskError};
use bytes::BytesMut;
use sluice_pipeline::{Recorder, Release};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Flush to the client at least this often while relaying a large result.
const CLIENT_FLUSH_BYTES: usize = 64 * 1024;

/// The response direction: relays upstream messages to the client, in order,
/// attributing them to the request at the head of the queue, and records
/// what the client got when the session is recorded.
pub(super) async fn respond<R, W>(
    inflight: &Inflight,
    upstream: &mut R,
    buf: &mut BytesMut,
    client: &mut W,
    max_frame: usize,
    shutdown: &CancellationToken,
    mut recorder: Option<&mut Recorder>,
) -> SessionEnd
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = BytesMut::with_capacity(16 * 1024);
    let mut transaction_status = b'I';
    let mut discarding = false;
    loop {
        let mut held = false;
        let notices_at = out.len();
        inflight.take_notices(&mut out);
        if let Some(recorder) = recorder.as_deref_mut() {
            record::messages(recorder, &out[notices_at..]);
        }
        loop {
            if settle_head(inflight, &mut out, transaction_status, recorder.as_deref_mut()) {
                held = true;
                break;
            }
            let frame = match codec::split_frame(buf, max_frame) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return SessionEnd::UpstreamLost(format!("malformed message from the target: {e}")),
            };
            match relay_backend(inflight, &frame, &mut out, &mut discarding, recorder.as_deref_mut()) {
                Ok(Some(status)) => transaction_status = status,
                Ok(None) => {}
                Err(e) => return SessionEnd::UpstreamLost(format!("malformed message from the target: {e}")),
            }
            if out.len() >= CLIENT_FLUSH_BYTES {
                if client.write_all(&out).await.is_err() {
                    return SessionEnd::ClientDisconnected;
                }
                out.clear();
            }
        }
        if !out.is_empty() {
            if client.write_all(&out).await.is_err() {
                return SessionEnd::ClientDisconnected;
            }
            out.clear();
        }
        if shutdown.is_cancelled() && inflight.lock().is_empty() {
            return SessionEnd::Shutdown;
        }
        if held {
            // The head's record is still committing: read nothing more from
            // the upstream until the request side confirms it.
            inflight.wake.notified().await;
            continue;
        }
        tokio::select! {
            read = upstream.read_buf(buf) => match read {
                Ok(0) => return SessionEnd::UpstreamLost("the target closed the connection".into()),
                Err(e) => return SessionEnd::UpstreamLost(e.to_string()),
                Ok(_) => {}
            },
            () = inflight.wake.notified() => {}
        }
    }
}

/// Prepares the head of the queue for the next upstream message, under one
/// lock: writes refusals that have reached the head, then says whether the
/// request now at the head must not be answered yet (its record is still
/// committing). A head whose record failed is marked withheld here, so its
/// response is replaced by an error.
fn settle_head(
    inflight: &Inflight,
    out: &mut BytesMut,
    transaction_status: u8,
    mut recorder: Option<&mut Recorder>,
) -> bool {
    let mut queue = inflight.lock();
    while let Some(Expect::Refused { .. }) = queue.front() {
        if let Some(Expect::Refused { error, ready_for_query, statement }) = queue.pop_front() {
            if let Some(recorder) = recorder.as_deref_mut() {
                if let Some(statement) = statement {
                    recorder.statement(&statement);
                }
                record::messages(recorder, &error);
            }
            out.extend_from_slice(&error);
            if ready_for_query {
                encode::ready_for_query(out, transaction_status);
            }
        }
    }
    let Some(Expect::Query(tracked) | Expect::Execute(tracked)) = queue.front_mut() else { return false };
    match tracked.exchange.release() {
        Release::Released => false,
        Release::Held => true,
        Release::Refused(reason) => {
            if tracked.withheld.is_none() {
                tracked.withheld = Some(Withheld::unrecorded(reason));
            }
            false
        }
    }
}

/// Relays one upstream message and updates the queue. Returns the new
/// transaction status when the message is ReadyForQuery.
fn relay_backend(
    inflight: &Inflight,
    frame: &Frame,
    out: &mut BytesMut,
    discarding: &mut bool,
    mut recorder: Option<&mut Recorder>,
) -> Result<Option<u8>, codec::CodecError> {
    let mut queue = inflight.lock();
    if *discarding {
        // After a withheld Execute the client expects nothing until
        // ReadyForQuery, as after any error: drop what the upstream still
        // answers for the rest of the batch.
        if frame.tag != b'Z' {
            if matches!(frame.tag, b'A' | b'S') {
                out.extend_from_slice(&frame.bytes);
            }
            return Ok(None);
        }
        *discarding = false;
    }
    // The statement is recorded as its answer begins, before any of it.
    if let (Some(recorder), Some(Expect::Query(tracked) | Expect::Execute(tracked))) =
        (recorder.as_deref_mut(), queue.front_mut())
        && let Some(recording) = tracked.recording.as_deref_mut()
    {
        recording.start(recorder);
    }
    let head = queue.front_mut();
    if let Some(expect) = head {
        let execute = matches!(expect, Expect::Execute(_));
        let at = out.len();
        match relay_withheld(expect, frame, out)? {
            Withholding::No => {}
            Withholding::Consumed => return Ok(None),
            Withholding::Done(status) => {
                if let (Some(recorder), Expect::Query(tracked) | Expect::Execute(tracked)) =
                    (recorder.as_deref_mut(), expect)
                {
                    if let Some(recording) = tracked.recording.as_deref_mut() {
                        recording.interrupted(recorder);
                    }
                    record::messages(recorder, &out[at..]);
                }
                pop_tracked(&mut queue, Ending::Answered);
                if execute {
                    while !matches!(queue.front(), None | Some(Expect::Sync)) {
                        pop_tracked(&mut queue, Ending::Skipped);
                    }
                    *discarding = true;
                }
                return Ok(status);
            }
        }
    }
    let mut masked_notice = None;
    if let Some(Expect::Query(tracked) | Expect::Execute(tracked)) = queue.front_mut() {
        let len = frame.bytes.len() as u64;
        if matches!(frame.tag, b'D' | b'd') {
            // A result row (a DataRow, or a CopyData row of COPY OUT): the
            // first one that would cross the budget ends the relayed result.
            // Without a budget nothing more than the row count is kept.
            if let Some(limit) = tracked.exchange.result_limit() {
                let (rows, bytes) = tracked.spent();
                if let Err(message) = limit.check(rows + 1, bytes + len) {
                    tracked.withheld = Some(Withheld::over_budget(message));
                    return Ok(None);
                }
                tracked.spend(len);
            }
            tracked.rows_returned += 1;
        }
        tracked.bytes_out += len;
        match frame.tag {
            b'D' => {
                tracked.rows += 1;
                let at = out.len();
                let relayed = relay_row(inflight, tracked, frame, out);
                if let (Some(recorder), Some(recording)) = (recorder, tracked.recording.as_deref_mut())
                    && out.len() > at
                {
                    recording.row(recorder, &tracked.columns, &out[at..]);
                }
                return relayed;
            }
            b'd' | b'H' if tracked.exchange.masker().is_some() => return relay_copy_out(tracked, frame, out),
            b'T' => {
                // A new result in a simple Query string: its own columns.
                if let Columns::Query(description) = &mut tracked.columns {
                    *description = Some(frame.bytes.clone());
                    tracked.mask_plan = None;
                    if let (Some(recorder), Some(recording)) =
                        (recorder.as_deref_mut(), tracked.recording.as_deref_mut())
                    {
                        recording.row_description(recorder, frame.body());
                    }
                }
            }
            b'E' | b'N' => {
                if let Some(masker) = tracked.exchange.masker() {
                    let mut rewritten = BytesMut::new();
                    mask::rewrite_notice(
                        &frame.bytes,
                        frame.tag,
                        frame.body(),
                        masker,
                        &mut tracked.masked,
                        &mut rewritten,
                    );
                    masked_notice = Some(Frame { tag: frame.tag, bytes: rewritten.freeze() });
                }
            }
            _ => {}
        }
    }
    let frame = masked_notice.as_ref().unwrap_or(frame);
    if let Some(recorder) = recorder.as_deref_mut()
        && matches!(frame.tag, b'E' | b'N')
    {
        if frame.tag == b'E'
            && let Some(Expect::Query(tracked) | Expect::Execute(tracked)) = queue.front_mut()
            && let Some(recording) = tracked.recording.as_deref_mut()
        {
            recording.interrupted(recorder);
        }
        record::message(recorder, frame.tag, frame.body());
    }
    // The answer to Sluice's own Describe is kept, not relayed.
    let own_describe = matches!(queue.front(), Some(Expect::Describe { relay: false, .. }));
    if !(own_describe && matches!(frame.tag, b'T' | b'n')) {
        out.extend_from_slice(&frame.bytes);
    }
    if frame.tag == b'S'
        && let BackendMessage::ParameterStatus { name: "standard_conforming_strings", value } =
            BackendMessage::decode(frame)?
    {
        inflight.standard_conforming_strings.store(value == "on", Ordering::Relaxed);
    }
    let mut status = None;
    match (frame.tag, queue.front_mut()) {
        (b'1' | b'2' | b'3', Some(Expect::Complete)) => {
            queue.pop_front();
        }
        (b'T' | b'n', Some(Expect::Describe { slot, .. })) => {
            if let Some(slot) = slot {
                // NoData is kept as an empty description: no columns.
                let description = if frame.tag == b'T' { frame.bytes.clone() } else { Default::default() };
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(description);
            }
            queue.pop_front();
        }
        (b'C', Some(Expect::Query(tracked) | Expect::Execute(tracked))) => {
            if let BackendMessage::CommandComplete { tag } = BackendMessage::decode(frame)? {
                tracked.tags.push(tag.to_string());
                tracked.rows = tracked.rows.max(rows_in_tag(tag));
                if let (Some(recorder), Some(recording)) = (recorder, tracked.recording.as_deref_mut()) {
                    recording.complete(recorder, &tracked.columns, tag, rows_in_tag(tag));
                }
            }
            if matches!(queue.front(), Some(Expect::Execute(_))) {
                pop_tracked(&mut queue, Ending::Answered);
            }
        }
        (b'I' | b's', Some(Expect::Execute(tracked))) => {
            // A suspended portal's rows over the cap are counted here; the
            // next Execute of it is a statement of its own.
            if let (Some(recorder), Some(recording)) = (recorder, tracked.recording.as_deref_mut()) {
                recording.interrupted(recorder);
            }
            pop_tracked(&mut queue, Ending::Answered);
        }
        (b'E', Some(head)) => {
            let BackendMessage::Error(fields) = BackendMessage::decode(frame)? else {
                unreachable!("tag E is an error")
            };
            let error = Some((fields.code.to_string(), fields.message.to_string()));
            match head {
                Expect::Query(tracked) => tracked.error = error,
                Expect::Sync => {}
                _ => {
                    if let Expect::Execute(tracked) = head {
                        tracked.error = error;
                    }
                    pop_tracked(&mut queue, Ending::Answered);
                    // The upstream now discards everything up to Sync.
                    while !matches!(queue.front(), None | Some(Expect::Sync)) {
                        pop_tracked(&mut queue, Ending::Skipped);
                    }
                }
            }
        }
        (b'Z', head) => {
            if let BackendMessage::ReadyForQuery { status: s } = BackendMessage::decode(frame)? {
                status = Some(s);
            }
            if matches!(head, Some(Expect::Sync | Expect::Query(_))) {
                pop_tracked(&mut queue, Ending::Answered);
            }
        }
        _ => {}
    }
    Ok(status)
}

/// Relays one DataRow of the head request, masked by its profile. A row
/// Sluice cannot mask withholds the rest of the result; a malformed row
/// ends the session, as any malformed message from the target.
fn relay_row(
    inflight: &Inflight,
    tracked: &mut Tracked,
    frame: &Frame,
    out: &mut BytesMut,
) -> Result<Option<u8>, codec::CodecError> {
    let masks = tracked.exchange.masker().is_some();
    if !masks && tracked.exchange.subject_columns().is_none() {
        out.extend_from_slice(&frame.bytes);
        return Ok(None);
    }
    if tracked.mask_plan.is_none() {
        match tracked.columns.plan(&tracked.exchange, &inflight.tables) {
            Ok(plan) => tracked.mask_plan = Some(plan),
            Err(MaskError::Malformed(e)) => return Err(e),
            Err(_) if !masks => {
                // Nothing to mask: the row passes, unaccounted.
                out.extend_from_slice(&frame.bytes);
                return Ok(None);
            }
            Err(e) => {
                tracked.withheld = Some(Withheld::unmaskable(&e));
                return Ok(None);
            }
        }
    }
    let Some(plan) = &tracked.mask_plan else { return Ok(None) };
    let relayed = match tracked.exchange.masker() {
        Some(masker) => plan.rewrite_row(&frame.bytes, frame.body(), masker, &mut tracked.masked, out),
        None => {
            out.extend_from_slice(&frame.bytes);
            Ok(())
        }
    };
    match relayed {
        Ok(()) => {
            // Accounting of disclosures: the row's identifiers, as sent by the target.
            if plan.discloses()
                && let Some(subjects) = tracked.exchange.subjects_mut()
            {
                plan.disclose(frame.body(), subjects);
            }
            Ok(None)
        }
        Err(MaskError::Malformed(e)) => Err(e),
        Err(e) => {
            tracked.withheld = Some(Withheld::unmaskable(&e));
            Ok(None)
        }
    }
}

/// COPY OUT under a masking profile: a text or CSV row is masked field by
/// field; binary COPY cannot be, so it is withheld from its CopyOutResponse.
fn relay_copy_out(tracked: &mut Tracked, frame: &Frame, out: &mut BytesMut) -> Result<Option<u8>, codec::CodecError> {
    let Some(masker) = tracked.exchange.masker() else { return Ok(None) };
    if frame.tag == b'H' {
        if frame.body().first() == Some(&1) {
            tracked.withheld = Some(Withheld::unmaskable(&MaskError::BinaryCopy));
        } else {
            out.extend_from_slice(&frame.bytes);
        }
        return Ok(None);
    }
    if let Err(e) = mask::rewrite_copy_row(&frame.bytes, frame.body(), masker, &mut tracked.masked, out) {
        tracked.withheld = Some(Withheld::unmaskable(&e));
    }
    Ok(None)
}

/// What happened to a frame while the head's response is withheld.
enum Withholding {
    /// The head's response is not withheld: relay normally.
    No,
    /// The frame was dropped (or passed, if not part of the result).
    Consumed,
    /// The withheld request is complete and was answered with its error;
    /// carries the transaction status at ReadyForQuery.
    Done(Option<u8>),
}

/// For a request at the head whose response is withheld: drops the rest of
/// it and writes the ErrorResponse in place of its completion. For a simple
/// Query that is at its ReadyForQuery, so the statements after it in the
/// same string, which the upstream still ran, are not reported either. An
/// Execute's batch is then discarded up to Sync, as after any error.
fn relay_withheld(expect: &Expect, frame: &Frame, out: &mut BytesMut) -> Result<Withholding, codec::CodecError> {
    let (execute, tracked) = match expect {
        Expect::Execute(tracked) => (true, tracked),
        Expect::Query(tracked) => (false, tracked),
        _ => return Ok(Withholding::No),
    };
    let Some(withheld) = &tracked.withheld else { return Ok(Withholding::No) };
    match frame.tag {
        // Not part of the result: notifications and parameter changes pass.
        b'A' | b'S' => out.extend_from_slice(&frame.bytes),
        b'C' | b'I' | b's' | b'E' if execute => {
            encode::error_response(out, Severity::Error, withheld.sqlstate, &withheld.message, None);
            return Ok(Withholding::Done(None));
        }
        b'Z' if !execute => {
            encode::error_response(out, Severity::Error, withheld.sqlstate, &withheld.message, None);
            out.extend_from_slice(&frame.bytes);
            let status = match BackendMessage::decode(frame)? {
                BackendMessage::ReadyForQuery { status } => Some(status),
                _ => None,
            };
            return Ok(Withholding::Done(status));
        }
        _ => {}
    }
    Ok(Withholding::Consumed)
}

/// Pops the head; a tracked request is finished as `ending` says.
fn pop_tracked(queue: &mut VecDeque<Expect>, ending: Ending) {
    // Anything else popped is done; a refusal queued behind an upstream
    // error is dropped, as PostgreSQL reports only the first error of a batch.
    if let Some(Expect::Query(tracked) | Expect::Execute(tracked)) = queue.pop_front() {
        tracked.finish(ending);
    }
}

/// The row count in a command tag: `SELECT 3`, `INSERT 0 5`, `COPY 10`.
fn rows_in_tag(tag: &str) -> u64 {
    tag.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}
