//! NATS JetStream end to end (part of the `siem` test): the machine's
//! nats-server behind a TCP proxy the test cuts mid-run and starts again;
//! the stream must end with every audit record and a signed checkpoint
//! exactly once, JetStream dropping repeats by `Nats-Msg-Id`.
//!
//! Owns: the cuttable proxy and reading a stream back.

use super::{Gateway, bind_again, free_port};
use crate::support::unique;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const NATS: &str = "127.0.0.1:4222";

/// A TCP proxy in front of the shared nats-server, so the test can take
/// "the NATS server" away without stopping it.
struct Proxy {
    port: u16,
    running: Option<ProxyRun>,
}

/// A running proxy: its stop flag, its accept thread, and every proxied
/// connection (both sides), to cut them at stop.
type ProxyRun = (Arc<AtomicBool>, JoinHandle<()>, Arc<Mutex<Vec<TcpStream>>>);

impl Proxy {
    fn start() -> Proxy {
        let mut proxy = Proxy { port: free_port(), running: None };
        proxy.spawn();
        proxy
    }

    fn spawn(&mut self) {
        let listener = bind_again(self.port);
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (halt, open) = (stop.clone(), conns.clone());
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(NATS) else { continue };
                        let mut open = open.lock().unwrap();
                        open.push(client.try_clone().unwrap());
                        open.push(server.try_clone().unwrap());
                        for (mut from, mut to) in
                            [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                        {
                            std::thread::spawn(move || {
                                let _ = std::io::copy(&mut from, &mut to);
                                let _ = to.shutdown(std::net::Shutdown::Both);
                            });
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        self.running = Some((stop, thread, conns));
    }

    /// Stops listening and cuts every proxied connection.
    fn stop(&mut self) {
        let (stop, thread, conns) = self.running.take().unwrap();
        stop.store(true, Ordering::SeqCst);
        thread.join().unwrap();
        for conn in conns.lock().unwrap().drain(..) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.running.is_some() {
            self.stop();
        }
    }
}

/// A stream's messages: (subject, Nats-Msg-Id, payload).
fn stream_messages(runtime: &tokio::runtime::Runtime, stream: &str) -> Vec<(String, String, serde_json::Value)> {
    runtime.block_on(async {
        let client = async_nats::connect(NATS).await.expect("nats-server runs on 127.0.0.1:4222");
        let js = async_nats::jetstream::new(client);
        let Ok(mut stream) = js.get_stream(stream).await else { return Vec::new() };
        let state = stream.info().await.unwrap().state.clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return out;
        }
        for seq in state.first_sequence..=state.last_sequence {
            let message = stream.get_raw_message(seq).await.unwrap();
            let id = message.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string()).unwrap_or_default();
            out.push((message.subject.to_string(), id, serde_json::from_slice(&message.payload).unwrap()));
        }
        out
    })
}

#[test]
fn nats_jetstream_holds_every_record_once_across_a_cut_connection() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let name = unique("SLUICE_SIEM").to_uppercase();
    let prefix = format!("sluicetest.{}", name.to_lowercase());
    let mut proxy = Proxy::start();
    let sink = format!(
        "[[siem.sinks]]\nname = \"bus\"\nkind = \"nats\"\nurl = \"nats://127.0.0.1:{}\"\nstream = \"{name}\"\nsubject_prefix = \"{prefix}\"\nbatch = 6\n",
        proxy.port
    );
    struct DeleteStream<'a>(&'a tokio::runtime::Runtime, String);
    impl Drop for DeleteStream<'_> {
        fn drop(&mut self) {
            self.0.block_on(async {
                if let Ok(client) = async_nats::connect(NATS).await {
                    let _ = async_nats::jetstream::new(client).delete_stream(&self.1).await;
                }
            });
        }
    }
    let _cleanup = DeleteStream(&runtime, name.clone());

    let gateway = Gateway::start(&sink, &[]);
    gateway.run("before", 3);
    let ids = || stream_messages(&runtime, &name).into_iter().map(|(_, id, _)| id).collect::<Vec<_>>();
    gateway.wait_for_delivery("the stream", ids);

    let before = gateway.failures();
    proxy.stop();
    gateway.run("while-down", 3);
    gateway.wait_for_failure(before);
    proxy.spawn();
    gateway.run("after", 2);
    let counts = gateway.wait_for_everything("nats", ids);

    // JetStream dropped any repeat by Nats-Msg-Id: each id once.
    let repeats: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeats.is_empty(), "{repeats:?}");
    for (subject, id, event) in stream_messages(&runtime, &name) {
        assert_eq!(event["event_id"], id.as_str());
        assert_eq!(subject, format!("{prefix}.{}", event["type"].as_str().unwrap()));
        if event["type"] == "request" {
            assert!(event["statement"].as_str().unwrap().contains("marker-"), "{event}");
            assert_eq!(event["connection"], "clinic");
        }
    }
}
