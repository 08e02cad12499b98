//! `LogFormat` strings (`itkd_config::logformat::LogFormat::parse`, then
//! `itkd_http::logfmt::render`): any text parses or is refused without a panic, and a
//! parsed format renders a request whose every client-controlled value is hostile
//! (control bytes, quotes, backslashes, non-UTF-8) without a panic, the same way twice,
//! and with no raw control character the format itself did not put there: request-derived
//! values go through `ap_escape_logitem` as in mod_log_config. A format may put control
//! characters in its own text (`\n`, `\t` escapes), in the arguments some codes echo, and,
//! through `%n`/`%t` in a `%{…}t` strftime format, a newline or tab.
#![no_main]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use itkd_config::logformat::{LogFormat, LogItem};
use itkd_http::logfmt::{render, ConnStatus, LogEntry, Original};
use libfuzzer_sys::fuzz_target;

/// Every byte a client can get into a request-derived value, and then some.
const HOSTILE: &[u8] = b"a\x00\x01\x08\t\n\x0b\x0c\r\x1b\"\\\x7f\x80\x9b\xc3\xa9\xff z";

fn header_map(pairs: &[&'static str]) -> HeaderMap {
    // Header values may hold tab and obs-text, but no other control byte.
    let value: Vec<u8> = HOSTILE
        .iter()
        .copied()
        .filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
        .collect();
    let mut map = HeaderMap::new();
    for name in pairs {
        let value = HeaderValue::from_bytes(&value).expect("no CTL but tab");
        map.append(HeaderName::from_static(name), value);
    }
    map
}

fn entry() -> &'static LogEntry {
    static ENTRY: OnceLock<LogEntry> = OnceLock::new();
    ENTRY.get_or_init(|| {
        let text = String::from_utf8_lossy(HOSTILE).into_owned();
        let start = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let mut e = LogEntry::new(
            "[::ffff:192.0.2.1]:4242".parse().expect("an address"),
            "[2001:db8::1]:80".parse().expect("an address"),
            start,
        );
        e.duration = Duration::from_micros(1_234_567);
        e.request_line = [b"GET /", HOSTILE, b" HTTP/1.1"].concat();
        e.method = text.clone();
        e.protocol = text.clone();
        e.uri_path = HOSTILE.to_vec();
        e.query = Some(HOSTILE.to_vec());
        e.status = 404;
        e.filename = Some(PathBuf::from(format!("/srv/a/{text}")));
        e.handler = Some(text.clone());
        e.remote_user = Some(HOSTILE.to_vec());
        e.request_headers = header_map(&["user-agent", "referer", "cookie", "cookie", "host"]);
        e.response_headers = header_map(&["content-type", "set-cookie", "set-cookie", "location"]);
        e.env = vec![(text.clone(), text.clone()), ("HTTPS".into(), text.clone())];
        e.notes = vec![("note".into(), text.clone())];
        e.body_bytes = 1234;
        e.bytes_received = 321;
        e.bytes_sent = 1500;
        e.server_name = text.clone();
        e.host_name = text.clone();
        e.canonical_port = 8080;
        e.pid = 4321;
        e.keepalives = 3;
        e.conn_status = ConnStatus::KeepAlive;
        e.log_id = Some("YWJjZA".into());
        e.conn_log_id = Some("ZWZnaA".into());
        e.original = Some(Original {
            status: 302,
            uri_path: HOSTILE.to_vec(),
            query: Some(HOSTILE.to_vec()),
            filename: Some(PathBuf::from(format!("/srv/{text}"))),
            handler: Some(text.clone()),
            response_headers: header_map(&["location"]),
        });
        e
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(format) = LogFormat::parse(text) else {
        return;
    };
    let entry = entry();
    let line = render(&format, entry);
    assert_eq!(line, render(&format, entry), "{text:?}");

    // The control characters the format itself may emit.
    let mut allowed: BTreeSet<char> = BTreeSet::new();
    for item in &format.items {
        match item {
            LogItem::Text(t) => allowed.extend(t.chars().filter(|c| c.is_control())),
            LogItem::Field(f) => {
                let arg = f.arg.as_deref().unwrap_or("");
                allowed.extend(arg.chars().filter(|c| c.is_control()));
                if f.code == "t" && !arg.is_empty() {
                    allowed.extend(['\n', '\t']);
                }
            }
        }
    }
    for c in line.chars().filter(|c| c.is_control()) {
        assert!(
            allowed.contains(&c),
            "{text:?} logged a raw {c:?}: {line:?}"
        );
    }
});
