//! Syslog over TLS (RFC 5425) against a real TLS listener on 127.0.0.1:
//! octet-counted RFC 5424 frames arrive through a server checked against
//! `ca_file`, and a server the CA did not issue is refused.
//!
//! The certificates are made with the `openssl` command for each run.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sluice_audit::StoredCheckpoint;
use sluice_config::SyslogTransport;
use sluice_siem::syslog::SyslogSink;
use sluice_siem::{SiemEvent, SinkError};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA named `name` in `dir` (`<name>.pem`, `<name>.key`).
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
}

/// `server.pem` / `server.key` for 127.0.0.1 and localhost, issued by `ca`.
fn make_server_cert(dir: &Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
}

/// A TLS listener that accepts one connection and returns the
/// octet-counted frames it read until the client closed.
async fn tls_collector(dir: &Path) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join("server.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let Ok(mut tls) = acceptor.accept(tcp).await else { return Vec::new() };
        let mut bytes = Vec::new();
        let _ = tls.read_to_end(&mut bytes).await;
        frames(&bytes)
    });
    (port, task)
}

/// Splits RFC 6587 octet-counted frames: `<len> <len bytes>`...
fn frames(mut bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let space = bytes.iter().position(|&b| b == b' ').expect("a length and a space");
        let len: usize = std::str::from_utf8(&bytes[..space]).unwrap().parse().unwrap();
        let message = &bytes[space + 1..space + 1 + len];
        out.push(String::from_utf8(message.to_vec()).unwrap());
        bytes = &bytes[space + 1 + len..];
    }
    out
}

fn events() -> Vec<SiemEvent> {
    (1..=3)
        .map(|size| {
            SiemEvent::from_checkpoint(&StoredCheckpoint {
                size,
                time: "2026-11-05T09:30:00.000250Z".into(),
                root: "00".repeat(32),
                note: format!("sluice/test\n{size}\n"),
            })
        })
        .collect()
}

#[tokio::test]
async fn frames_arrive_over_tls_checked_against_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "ca");
    make_server_cert(dir.path(), "ca");
    let (port, collector) = tls_collector(dir.path()).await;

    let ca = dir.path().join("ca.pem");
    let mut sink = SyslogSink::new(&format!("127.0.0.1:{port}"), SyslogTransport::Tls, Some(&ca), None).unwrap();
    sink.send(&events()).await.unwrap();
    drop(sink);

    let frames = collector.await.unwrap();
    assert_eq!(frames.len(), 3, "{frames:?}");
    for (frame, size) in frames.iter().zip(1..) {
        assert!(frame.starts_with("<110>1 2026-11-05T09:30:00.000250Z "), "{frame}");
        assert!(frame.contains(&format!("[sluice@32473 event_id=\"sluice/checkpoint/{size}\"")), "{frame}");
        let json = frame.split_once('\u{feff}').unwrap().1;
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(value["checkpoint"]["size"], size);
    }
}

#[tokio::test]
async fn a_server_another_ca_issued_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "ca");
    make_ca(dir.path(), "other");
    make_server_cert(dir.path(), "other");
    let (port, collector) = tls_collector(dir.path()).await;

    let ca = dir.path().join("ca.pem");
    let mut sink =
        SyslogSink::new(&format!("127.0.0.1:{port}"), SyslogTransport::Tls, Some(&ca), Some("localhost")).unwrap();
    match sink.send(&events()).await {
        Err(SinkError::Unavailable(message)) => assert!(message.contains("TLS"), "{message}"),
        other => panic!("expected the handshake to fail, got {other:?}"),
    }
    drop(sink);
    assert!(collector.await.unwrap().is_empty(), "nothing is sent to an unverified server");
}

#[test]
fn a_ca_file_without_certificates_is_a_setup_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    match SyslogSink::new("127.0.0.1:6514", SyslogTransport::Tls, Some(&empty), None) {
        Err(SinkError::Setup(message)) => assert!(message.contains("no certificate"), "{message}"),
        other => panic!("{other:?}"),
    }
}
