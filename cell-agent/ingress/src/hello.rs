//! Reading the ClientHello before deciding anything: the SNI host picks the route, and the raw
//! bytes are kept so that they can be replayed to rustls or to another cell's ingress.

use rustls::server::Acceptor;
use tokio::io::{AsyncRead, AsyncReadExt};

/// A ClientHello larger than this is refused (post-quantum key shares make them ~2 KiB).
const MAX_HELLO_BYTES: usize = 64 * 1024;

/// The start of a TLS connection.
#[derive(Debug)]
pub(crate) struct Hello {
    /// Every byte read from the client so far (the ClientHello, possibly more).
    pub bytes: Vec<u8>,
    /// The SNI host, lowercase.
    pub sni: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum HelloError {
    /// The client closed before sending anything: a port probe, not a failed handshake.
    #[error("closed before any byte")]
    Silent,
    #[error("closed in the middle of the ClientHello")]
    Truncated,
    #[error("ClientHello over {MAX_HELLO_BYTES} bytes")]
    TooLarge,
    #[error("not a TLS ClientHello: {0}")]
    Invalid(rustls::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads until a whole ClientHello has arrived.
pub(crate) async fn read_client_hello<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Hello, HelloError> {
    let mut acceptor = Acceptor::default();
    let mut bytes = Vec::with_capacity(2048);
    loop {
        if bytes.len() >= MAX_HELLO_BYTES {
            return Err(HelloError::TooLarge);
        }
        let start = bytes.len();
        if stream.read_buf(&mut bytes).await? == 0 {
            return Err(if start == 0 {
                HelloError::Silent
            } else {
                HelloError::Truncated
            });
        }
        let mut fresh = &bytes[start..];
        while !fresh.is_empty() {
            if acceptor.read_tls(&mut fresh)? == 0 {
                return Err(HelloError::TooLarge);
            }
        }
        match acceptor.accept() {
            Ok(None) => continue,
            Ok(Some(accepted)) => {
                let sni = accepted
                    .client_hello()
                    .server_name()
                    .map(str::to_ascii_lowercase);
                return Ok(Hello { bytes, sni });
            }
            Err((err, _alert)) => return Err(HelloError::Invalid(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn garbage_is_not_a_hello() {
        let mut input: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let err = read_client_hello(&mut input).await.unwrap_err();
        assert!(matches!(err, HelloError::Invalid(_)), "{err:?}");
    }

    #[tokio::test]
    async fn silence_and_truncation_differ() {
        let mut empty: &[u8] = b"";
        assert!(matches!(
            read_client_hello(&mut empty).await,
            Err(HelloError::Silent)
        ));
        // A handshake record header announcing 512 bytes, then nothing.
        let mut cut: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
        assert!(matches!(
            read_client_hello(&mut cut).await,
            Err(HelloError::Truncated)
        ));
    }
}
