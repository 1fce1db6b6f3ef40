//! Local replies: answers the filter gives without the upstream.

use proxy_wasm::hostcalls;

/// Sends a local reply and stops the filter chain. Header values are bytes
/// so a cached upstream answer can be replayed exactly.
pub fn send(status: u32, headers: &[(&str, &[u8])], body: Option<&[u8]>) {
    let headers: Vec<(&str, &[u8])> = headers.to_vec();
    if let Err(status) = hostcalls::send_http_response(status, headers_as_str(&headers), body) {
        log::error!("floodgate: local reply failed: {status:?}");
    }
}

/// The SDK's `send_http_response` takes `&str` values; bytes that are not
/// UTF-8 are replaced rather than dropped or allowed to panic.
fn headers_as_str<'a>(headers: &'a [(&'a str, &'a [u8])]) -> Vec<(&'a str, &'a str)> {
    headers
        .iter()
        .map(|(name, value)| (*name, std::str::from_utf8(value).unwrap_or("\u{fffd}")))
        .collect()
}
