//! `Range` headers (`itkd_http::files::parse_ranges`, then `byteranges_body`): any header
//! on any file length gives parts inside the file, at most httpd's MaxRanges of them and
//! adding up to no more than the file, the same answer twice; and the multipart/byteranges body built from them is exactly
//! the part headers plus each part's own bytes, in order.
//!
//! Input: two bytes of file length (big-endian, so at most 65535), then the header value.
#![no_main]

use itkd_http::files::{byteranges_body, parse_ranges, Ranges};
use libfuzzer_sys::fuzz_target;

/// httpd's `MaxRanges` default, as files.rs has it.
const MAX_RANGES: usize = 200;

fuzz_target!(|data: &[u8]| {
    let (len, text) = match data {
        [a, b, rest @ ..] => (u64::from(u16::from_be_bytes([*a, *b])), rest),
        _ => return,
    };
    let text = String::from_utf8_lossy(text);
    let ranges = parse_ranges(&text, len);
    assert_eq!(
        ranges,
        parse_ranges(&text, len),
        "not deterministic: {text:?}"
    );
    let Ranges::Satisfiable(parts) = ranges else {
        return;
    };
    assert!(
        !parts.is_empty() && parts.len() <= MAX_RANGES,
        "{text:?}: {parts:?}"
    );
    for &(start, end) in &parts {
        assert!(
            start <= end && end < len,
            "{text:?} on {len} bytes: {start}-{end}"
        );
    }
    // httpd ignores ranges that add up past the file (no MaxRanges-fold bodies).
    let sum: u64 = parts.iter().map(|(s, e)| e - s + 1).sum();
    assert!(sum <= len, "{text:?} on {len} bytes: parts add up to {sum}");

    // A file whose every byte says where it is, so a part from the wrong offset shows.
    let file: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let media_type = (len % 2 == 0).then_some("text/plain");
    let boundary = "3d6b6a416f9b5";
    let body = byteranges_body(&parts, len, media_type, boundary, |start, buf| {
        let start = usize::try_from(start).expect("a u16 length");
        buf.copy_from_slice(&file[start..start + buf.len()]);
        Ok(())
    })
    .expect("reading from memory does not fail");
    let mut at = 0;
    for &(start, end) in &parts {
        let mut head = format!("\r\n--{boundary}\r\n");
        if let Some(t) = media_type {
            head.push_str(&format!("Content-type: {t}\r\n"));
        }
        head.push_str(&format!("Content-range: bytes {start}-{end}/{len}\r\n\r\n"));
        assert_eq!(&body[at..at + head.len()], head.as_bytes(), "{text:?}");
        at += head.len();
        let (s, e) = (start as usize, end as usize);
        assert_eq!(
            &body[at..=at + e - s],
            &file[s..=e],
            "{text:?}: part {start}-{end}"
        );
        at += e - s + 1;
    }
    assert_eq!(
        &body[at..],
        format!("\r\n--{boundary}--\r\n").as_bytes(),
        "{text:?}"
    );
});
