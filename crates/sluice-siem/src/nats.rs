//! NATS JetStream: each event published to `<subject_prefix>.<event type>`
//! and acknowledged by the stream.
//!
//! Owns: connecting, creating the stream when it does not exist (subjects
//! `<subject_prefix>.>`), publishing a batch with every ack awaited, and the
//! `Nats-Msg-Id` header (the event id) that lets JetStream drop a repeat
//! within its duplicate window.
//! Does not: retry (the runner does) or keep a cursor.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;

use crate::SinkError;
use crate::event::SiemEvent;

/// How long connecting, creating the stream and each ack may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// How long JetStream remembers a `Nats-Msg-Id` when it creates the stream.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// One JetStream stream, connected when a batch needs it and dropped on
/// any failure (so a server that went away is dialled afresh).
pub struct NatsSink {
    url: String,
    stream: String,
    subject_prefix: String,
    context: Option<(async_nats::Client, jetstream::Context)>,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink").field("url", &self.url).field("stream", &self.stream).finish_non_exhaustive()
    }
}

impl NatsSink {
    pub fn new(url: &str, stream: &str, subject_prefix: &str) -> NatsSink {
        NatsSink {
            url: url.to_string(),
            stream: stream.to_string(),
            subject_prefix: subject_prefix.to_string(),
            context: None,
        }
    }

    /// The subject an event goes to.
    pub fn subject(&self, event: &SiemEvent) -> String {
        format!("{}.{}", self.subject_prefix, event.kind)
    }

    /// Publishes `events` in order; `Ok` once the stream has acknowledged
    /// every one of them.
    pub async fn send(&mut self, events: &[SiemEvent]) -> Result<(), SinkError> {
        let result = self.try_send(events).await;
        if result.is_err()
            && let Some((client, _)) = self.context.take()
        {
            drop(client);
        }
        result
    }

    async fn try_send(&mut self, events: &[SiemEvent]) -> Result<(), SinkError> {
        if self.context.is_none() {
            self.context = Some(self.connect().await?);
        }
        let (_, js) = self.context.as_ref().expect("connected above");
        let fail = |what: &str, e: &dyn std::fmt::Display| SinkError::Unavailable(format!("{}: {what}: {e}", self.url));
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let publish = PublishMessage::build().payload(Bytes::from(event.to_json())).message_id(&event.event_id);
            let ack = js.send_publish(self.subject(event), publish).await.map_err(|e| fail("publish", &e))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await.map_err(|e| fail("ack", &e))?;
        }
        Ok(())
    }

    async fn connect(&self) -> Result<(async_nats::Client, jetstream::Context), SinkError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| SinkError::Unavailable(format!("{}: {what}: {e}", self.url));
        let options = async_nats::ConnectOptions::new()
            .name("sluice-siem")
            .connection_timeout(TIMEOUT)
            .request_timeout(Some(TIMEOUT));
        let client = tokio::time::timeout(TIMEOUT, options.connect(self.url.as_str()))
            .await
            .map_err(|_| fail("connect", &"timed out"))?
            .map_err(|e| fail("connect", &e))?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(TIMEOUT);
        let config = jetstream::stream::Config {
            name: self.stream.clone(),
            subjects: vec![format!("{}.>", self.subject_prefix)],
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        js.get_or_create_stream(config).await.map_err(|e| fail(&format!("stream {}", self.stream), &e))?;
        Ok((client, js))
    }
}
