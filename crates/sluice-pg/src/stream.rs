//! `PgStream`: one socket, plain or TLS, on either side of the gateway.
//!
//! Owns: dispatching reads and writes to the right transport.
//! Does not: know what the bytes mean.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

#[derive(Debug)]
pub enum PgStream {
    Plain(TcpStream),
    /// A client that asked for TLS and got it.
    ClientTls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// An upstream reached over TLS.
    UpstreamTls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl PgStream {
    pub fn is_tls(&self) -> bool {
        !matches!(self, PgStream::Plain(_))
    }
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            PgStream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            PgStream::ClientTls($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
            PgStream::UpstreamTls($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
        }
    };
}

impl AsyncRead for PgStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        dispatch!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for PgStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        dispatch!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        dispatch!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        dispatch!(self, s => s.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        dispatch!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            PgStream::Plain(s) => s.is_write_vectored(),
            PgStream::ClientTls(s) => s.is_write_vectored(),
            PgStream::UpstreamTls(s) => s.is_write_vectored(),
        }
    }
}
