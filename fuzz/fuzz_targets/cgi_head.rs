//! A CGI script's output (`itkd_http::cgi::parse_head`): any bytes give a head, "not yet",
//! or a malformed-header error, never a panic. A head has a status in 100..=999, a body
//! start inside the input right after the first blank line, a local redirect only for a
//! `Location` path without `Status` (RFC 3875 §6.2.2); and the answer does not depend on
//! how the pipe split the output: every shorter prefix ending a line is still "not yet"
//! (or the same error), and the bytes up to the body start alone give the same head.
#![no_main]

use itkd_http::cgi::parse_head;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((head, start))) = parse_head(data) else {
        return;
    };
    assert!(
        start <= data.len(),
        "body start {start} past {} bytes",
        data.len()
    );
    assert!((100..=999).contains(&head.status), "status {}", head.status);
    let block = &data[..start];
    assert!(
        block.ends_with(b"\n\n")
            || block.ends_with(b"\n\r\n")
            || block == b"\n"
            || block == b"\r\n",
        "body starts at {start}, not after a blank line: {block:?}"
    );
    if let Some(target) = &head.local_redirect {
        assert!(target.starts_with('/'));
        assert_eq!(
            head.headers.get("location").map(|v| v.as_bytes()),
            Some(target.as_bytes())
        );
        assert_eq!(head.status, 302);
    }
    // The worker calls parse_head on what it has read so far, again after every read.
    assert_eq!(parse_head(block), Ok(Some((head.clone(), start))));
    for (i, _) in block
        .iter()
        .enumerate()
        .filter(|(i, &b)| b == b'\n' && i + 1 < start)
    {
        match parse_head(&data[..=i]) {
            Ok(None) | Err(_) => {}
            Ok(Some(early)) => panic!(
                "{:?} alone ends the head at {}, the whole output at {start}",
                &data[..=i],
                early.1
            ),
        }
    }
});
