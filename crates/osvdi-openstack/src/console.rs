//! Nova's noVNC console URL (`.../vnc_auto.html?path=%3Ftoken%3D...`) turned into the
//! WebSocket URL of nova-novncproxy that carries RFB (`ws://host:port/?token=...`). The
//! connection itself is `osvdi_compute::connect_vnc`.

use crate::OsError;

/// The proxy's WebSocket URL for a console URL from `POST /servers/{id}/remote-consoles`.
pub fn websocket_url(console_url: &str) -> Result<String, OsError> {
    let bad = || OsError::Decode {
        service: "Nova",
        message: "a console URL without a token".into(),
    };
    let (scheme, rest) = console_url.split_once("://").ok_or_else(bad)?;
    let ws = match scheme {
        "http" => "ws",
        "https" => "wss",
        _ => return Err(bad()),
    };
    let authority = rest.split(['/', '?']).next().ok_or_else(bad)?;
    let query = rest.split_once('?').map(|(_, q)| q).unwrap_or("");
    let token = query_value(query, "token")
        .or_else(|| {
            // Newer Nova: `path=%3Ftoken%3D...` (the WebSocket path noVNC should open).
            let path = query_value(query, "path")?;
            let q = path
                .split_once('?')
                .map_or(path.as_str(), |(_, q)| q)
                .to_owned();
            query_value(&q, "token")
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(bad)?;
    Ok(format!("{ws}://{authority}/?token={}", encode(&token)))
}

fn query_value(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| decode(v))
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(v) => {
                    out.push(v);
                    i += 3;
                }
                Err(_) => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|c| {
            if c.is_ascii_alphanumeric() || b"-_.~".contains(&c) {
                (c as char).to_string()
            } else {
                format!("%{c:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_url_forms() {
        assert_eq!(
            websocket_url("http://127.0.0.1:6080/vnc_auto.html?path=%3Ftoken%3D5e1f-ab").unwrap(),
            "ws://127.0.0.1:6080/?token=5e1f-ab"
        );
        assert_eq!(
            websocket_url("https://console.example.org/vnc_lite.html?token=abc&title=x").unwrap(),
            "wss://console.example.org/?token=abc"
        );
        assert!(websocket_url("http://127.0.0.1:6080/vnc_auto.html").is_err());
        assert!(websocket_url("ftp://x/?token=a").is_err());
        assert_eq!(decode("a%2"), "a%2");
    }
}
