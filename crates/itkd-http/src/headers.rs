//! mod_headers' `Header` actions on a response, on httpd's two tables.
//!
//! httpd keeps a response's headers in `headers_out` (what `onsuccess` actions change) and
//! `err_headers_out` (what `always` actions change). A response a handler produced sends
//! both; an error page or a redirect made on the error path (`ap_send_error_response`)
//! sends only `err_headers_out`, so only `always` actions show there. mod_cgi files a
//! script's own headers in `err_headers_out`, which is why `Header always unset` is the
//! one that removes them.
//!
//! The framing headers (`Content-Length`, `Transfer-Encoding`, `Connection`, `Keep-Alive`)
//! and `Date`/`Server` are never touched: httpd sets them after mod_headers has run, and a
//! tenant's `.htaccess` must not be able to desynchronise the connection's framing.

use std::time::SystemTime;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use itkd_config::dirconf::{HeaderAction, HeaderOp, HeaderPiece, HeaderTable};

/// Where the response came from, which decides the tables in play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Produced {
    /// A handler's own response (a file, a listing, a 304): its headers are `headers_out`.
    #[default]
    Handler,
    /// A CGI script's output: its headers are in `err_headers_out`, as mod_cgi files them.
    Cgi,
    /// An error page or a redirect on httpd's error path: only `err_headers_out` is sent.
    ErrorPath,
}

/// What `%`-formats and `env=` conditions look at.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The request's variables (SetEnv, PassEnv, UnsetEnv).
    pub env: &'a [(String, String)],
    /// When the request was received (`%t`, and the start of `%D`).
    pub received: SystemTime,
    /// Now, when the head is about to be sent (the end of `%D`).
    pub now: SystemTime,
}

/// Headers `Header` leaves alone (see the module comment).
const UNTOUCHABLE: [HeaderName; 6] = [
    http::header::CONTENT_LENGTH,
    http::header::TRANSFER_ENCODING,
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    http::header::DATE,
    http::header::SERVER,
];

/// Carries out `actions` (outer sections first) on `headers`, the response's headers as
/// produced.
pub fn apply(
    actions: &[HeaderAction],
    produced: Produced,
    headers: &mut HeaderMap,
    req: &Request<'_>,
) {
    if actions.is_empty() {
        return;
    }
    let mut fixed = HeaderMap::new();
    let mut table = HeaderMap::new();
    let mut current: Option<HeaderName> = None;
    for (name, value) in std::mem::take(headers) {
        // `into_iter` names a header on its first value only; the others follow it.
        if let Some(name) = name {
            current = Some(name);
        }
        let Some(name) = current.clone() else {
            continue;
        };
        if UNTOUCHABLE.contains(&name) {
            fixed.append(name, value);
        } else {
            table.append(name, value);
        }
    }
    let (mut out, mut err) = match produced {
        Produced::Handler => (table, HeaderMap::new()),
        Produced::Cgi | Produced::ErrorPath => (HeaderMap::new(), table),
    };
    for action in actions {
        let target = match (action.table, produced) {
            (HeaderTable::Always, _) => &mut err,
            (HeaderTable::OnSuccess, Produced::ErrorPath) => continue,
            (HeaderTable::OnSuccess, _) => &mut out,
        };
        act(action, target, req);
    }
    // httpd overlays err_headers_out on headers_out: both sets of lines go out.
    *headers = fixed;
    for (name, value) in err.iter().chain(out.iter()) {
        headers.append(name.clone(), value.clone());
    }
}

fn act(action: &HeaderAction, headers: &mut HeaderMap, req: &Request<'_>) {
    let Ok(name) = HeaderName::from_bytes(action.name.as_bytes()) else {
        return;
    };
    if UNTOUCHABLE.contains(&name) {
        return;
    }
    if let Some((wanted, var)) = &action.condition {
        let set = req.env.iter().any(|(k, _)| k.eq_ignore_ascii_case(var));
        if set != *wanted {
            return;
        }
    }
    if action.op == HeaderOp::Unset {
        headers.remove(&name);
        return;
    }
    let text = render(&action.value, req);
    let Ok(value) = HeaderValue::from_str(&text) else {
        // A variable with a control character in it: the action is skipped.
        return;
    };
    match action.op {
        HeaderOp::Set => {
            headers.insert(name, value);
        }
        HeaderOp::Add => {
            headers.append(name, value);
        }
        HeaderOp::SetIfEmpty => {
            if !headers.contains_key(&name) {
                headers.insert(name, value);
            }
        }
        HeaderOp::Append => merge_into_first(headers, name, &text),
        HeaderOp::Merge => {
            let present = headers
                .get(&name)
                .is_some_and(|first| has_token(first.as_bytes(), text.as_bytes()));
            if !present {
                merge_into_first(headers, name, &text);
            }
        }
        HeaderOp::Unset => {}
    }
}

/// `apr_table_merge`: the value joins the first line of the header with `, `, or becomes it.
fn merge_into_first(headers: &mut HeaderMap, name: HeaderName, text: &str) {
    let mut values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
    let joined = match values.first() {
        Some(first) => {
            let mut bytes = first.as_bytes().to_vec();
            bytes.extend_from_slice(b", ");
            bytes.extend_from_slice(text.as_bytes());
            HeaderValue::from_bytes(&bytes)
        }
        None => HeaderValue::from_str(text),
    };
    let Ok(joined) = joined else {
        return;
    };
    if values.is_empty() {
        values.push(joined);
    } else {
        values[0] = joined;
    }
    headers.remove(&name);
    for v in values {
        headers.append(name.clone(), v);
    }
}

/// mod_headers' `merge` test: is `token` one of the comma-separated values of `value`
/// (quoted strings kept whole, leading spaces skipped, compared exactly)?
fn has_token(value: &[u8], token: &[u8]) -> bool {
    let mut i = 0;
    while i < value.len() {
        while i < value.len() && value[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < value.len() && value[i] != b',' {
            let quote = value[i] == b'"';
            i += 1;
            if quote {
                while i < value.len() {
                    i += 1;
                    if value[i - 1] == b'"' {
                        break;
                    }
                }
            }
        }
        if value[start..i] == *token {
            return true;
        }
        if i < value.len() {
            i += 1;
        }
    }
    false
}

fn render(pieces: &[HeaderPiece], req: &Request<'_>) -> String {
    let micros = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros())
    };
    let mut out = String::new();
    for piece in pieces {
        match piece {
            HeaderPiece::Text(t) => out.push_str(t),
            HeaderPiece::Time => out.push_str(&format!("t={}", micros(req.received))),
            HeaderPiece::Duration => {
                let d = req.now.duration_since(req.received).unwrap_or_default();
                out.push_str(&format!("D={}", d.as_micros()));
            }
            // mod_headers writes "(null)" for an unset variable.
            HeaderPiece::Env(var) => out.push_str(
                req.env
                    .iter()
                    .rev()
                    .find(|(k, _)| k.eq_ignore_ascii_case(var))
                    .map_or("(null)", |(_, v)| v.as_str()),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn action(table: HeaderTable, op: HeaderOp, name: &str, value: &str) -> HeaderAction {
        HeaderAction {
            table,
            op,
            name: name.to_owned(),
            value: vec![HeaderPiece::Text(value.to_owned())],
            condition: None,
        }
    }

    fn map(lines: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in lines {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    fn lines(m: &HeaderMap) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = m
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        out.sort();
        out
    }

    fn run(
        actions: &[HeaderAction],
        produced: Produced,
        start: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let mut headers = map(start);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_123);
        let env = [("V".to_owned(), "val".to_owned())];
        let req = Request {
            env: &env,
            received: t0,
            now: t0 + Duration::from_micros(250),
        };
        apply(actions, produced, &mut headers, &req);
        lines(&headers)
    }

    fn pairs(want: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    }

    use HeaderOp::*;
    use HeaderTable::*;

    #[test]
    fn each_operation_as_mod_headers() {
        type Lines = &'static [(&'static str, &'static str)];
        let cases: Vec<(Vec<HeaderAction>, Lines, Lines)> = vec![
            (
                vec![action(OnSuccess, Set, "x-a", "1")],
                &[("x-a", "0"), ("x-a", "9")],
                &[("x-a", "1")],
            ),
            (
                vec![action(OnSuccess, Append, "x-a", "2")],
                &[("x-a", "1"), ("x-a", "9")],
                &[("x-a", "1, 2"), ("x-a", "9")],
            ),
            (
                vec![action(OnSuccess, Append, "x-a", "2")],
                &[],
                &[("x-a", "2")],
            ),
            (
                vec![action(OnSuccess, Add, "x-a", "2")],
                &[("x-a", "1")],
                &[("x-a", "1"), ("x-a", "2")],
            ),
            (
                vec![action(OnSuccess, Merge, "x-a", "b")],
                &[("x-a", "a, b")],
                &[("x-a", "a, b")],
            ),
            (
                vec![action(OnSuccess, Merge, "x-a", "b")],
                &[("x-a", "a, \"b, c\"")],
                &[("x-a", "a, \"b, c\", b")],
            ),
            (
                vec![
                    action(OnSuccess, Merge, "x-a", "b"),
                    action(OnSuccess, Merge, "x-a", "b"),
                ],
                &[],
                &[("x-a", "b")],
            ),
            (
                vec![action(OnSuccess, SetIfEmpty, "x-a", "2")],
                &[("x-a", "1")],
                &[("x-a", "1")],
            ),
            (
                vec![action(OnSuccess, SetIfEmpty, "x-b", "2")],
                &[("x-a", "1")],
                &[("x-a", "1"), ("x-b", "2")],
            ),
            (
                vec![action(OnSuccess, Unset, "X-A", "")],
                &[("x-a", "1"), ("x-a", "2"), ("x-c", "3")],
                &[("x-c", "3")],
            ),
            // Framing and server headers are left alone.
            (
                vec![
                    action(Always, Set, "content-length", "1"),
                    action(OnSuccess, Unset, "Date", ""),
                ],
                &[("content-length", "5"), ("date", "d")],
                &[("content-length", "5"), ("date", "d")],
            ),
            // httpd's overlay: both tables' lines go out.
            (
                vec![
                    action(OnSuccess, Set, "x-a", "s"),
                    action(Always, Set, "x-a", "a"),
                ],
                &[],
                &[("x-a", "a"), ("x-a", "s")],
            ),
        ];
        for (actions, start, want) in cases {
            assert_eq!(
                run(&actions, Produced::Handler, start),
                pairs(want),
                "{actions:?} on {start:?}"
            );
        }
    }

    #[test]
    fn the_tables_follow_where_the_response_came_from() {
        let actions = [
            action(OnSuccess, Set, "x-on", "1"),
            action(Always, Set, "x-always", "1"),
            action(OnSuccess, Unset, "x-script", ""),
        ];
        let start: &[(&str, &str)] = &[("x-script", "s"), ("location", "/l")];
        // An error page: only `always` acts, the page's own headers stay.
        assert_eq!(
            run(&actions, Produced::ErrorPath, start),
            pairs(&[("x-always", "1"), ("x-script", "s"), ("location", "/l")])
        );
        // A script's headers are in the `always` table: `onsuccess` unset misses them.
        assert_eq!(
            run(&actions, Produced::Cgi, start),
            pairs(&[
                ("x-on", "1"),
                ("x-always", "1"),
                ("x-script", "s"),
                ("location", "/l")
            ])
        );
        assert_eq!(
            run(&actions, Produced::Handler, start),
            pairs(&[("x-on", "1"), ("x-always", "1"), ("location", "/l")])
        );
        let unset_always = [action(Always, Unset, "x-script", "")];
        assert_eq!(
            run(&unset_always, Produced::Cgi, start),
            pairs(&[("location", "/l")])
        );
    }

    #[test]
    fn formats_and_conditions() {
        let mut a = action(OnSuccess, Set, "x-f", "");
        a.value = vec![
            HeaderPiece::Text("100% ".into()),
            HeaderPiece::Time,
            HeaderPiece::Text(" ".into()),
            HeaderPiece::Duration,
            HeaderPiece::Text(" ".into()),
            HeaderPiece::Env("v".into()),
            HeaderPiece::Text(" ".into()),
            HeaderPiece::Env("NOPE".into()),
        ];
        assert_eq!(
            run(&[a], Produced::Handler, &[]),
            pairs(&[("x-f", "100% t=1700000000000123 D=250 val (null)")])
        );
        let mut yes = action(OnSuccess, Set, "x-yes", "1");
        yes.condition = Some((true, "V".into()));
        let mut no = action(OnSuccess, Set, "x-no", "1");
        no.condition = Some((false, "V".into()));
        let mut absent = action(OnSuccess, Set, "x-absent", "1");
        absent.condition = Some((false, "W".into()));
        assert_eq!(
            run(&[yes, no, absent], Produced::Handler, &[]),
            pairs(&[("x-yes", "1"), ("x-absent", "1")])
        );
    }
}
