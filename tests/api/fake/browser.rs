//! The end user's browser: one plain HTTP/1.1 GET that does not follow redirects.
//!
//! Written by hand over a `TcpStream` rather than with reqwest because the test binary's reqwest is built
//! with `rustls-no-provider` and refuses to build a client until a crypto provider is installed; the fake
//! must work whatever the test did first.

use std::io;

use tokio::net::TcpStream;
use url::Url;

/// What the browser got back.
pub(crate) struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// GETs `url` with extra request headers; the server must be plain HTTP.
pub(crate) async fn get(url: &Url, headers: &[(&str, &str)]) -> io::Result<Page> {
    let host = url.host_str().unwrap_or("127.0.0.1");
    let port = url.port_or_known_default().unwrap_or(80);
    let target = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let mut request =
        format!("GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");

    let stream = TcpStream::connect((host, port)).await?;
    write_all(&stream, request.as_bytes()).await?;
    let raw = read_to_end(&stream).await?;
    parse(&String::from_utf8_lossy(&raw))
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads until the server closes the connection (the request asked for `Connection: close`).
async fn read_to_end(stream: &TcpStream) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        stream.readable().await?;
        match stream.try_read(&mut buffer) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

fn parse(raw: &str) -> io::Result<Page> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an HTTP response: {raw:?}"),
        )
    };
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(bad)?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(bad)?;
    let location = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("location"))
        .map(|(_, value)| value.trim().to_owned());
    Ok(Page {
        status,
        location,
        body: body.to_owned(),
    })
}
