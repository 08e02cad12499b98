//! httpd's built-in error responses: the status line reason phrases and the HTML body
//! `ap_send_error_response` sends when no `ErrorDocument` applies, byte for byte as
//! Debian's apache2 2.4.71 sends them (fixtures in `tests/fixtures/errors/`).
//!
//! It deliberately does not decide *which* server's settings apply (early errors such as
//! 400, 408 and 414 use the address's default virtual host, not the one the Host header
//! names), nor whether a body is sent at all (HEAD, 204 and 304 carry none): the caller
//! knows that. It never puts the request URI in a page — httpd 2.4.71's pages do not.

/// The `Content-Type` of every error body httpd generates.
pub const CONTENT_TYPE: &str = "text/html; charset=iso-8859-1";

/// httpd's `DEFAULT_ADMIN`: what the 500 page names when no `ServerAdmin` is set.
pub const DEFAULT_ADMIN: &str = "[no address given]";

/// The `error-notes` core sets for a header line over `LimitRequestFieldSize` (400).
pub const NOTE_FIELD_TOO_LONG: &str = "Size of a request header field exceeds server limit.";

/// The `error-notes` core sets for more header lines than `LimitRequestFields` (400).
pub const NOTE_TOO_MANY_FIELDS: &str =
    "The number of request header fields exceeds this server's limit.";

/// The reason phrase httpd 2.4.71 puts after `status` in the status line; `""` for codes
/// it has none for (it then sends `HTTP/1.1 418 ` with the trailing space).
///
/// Checked against the real server for every code from 100 to 599 (CGI `Status:` for
/// 1xx/2xx, `Redirect NNN` for the rest). Note httpd's older wording where RFC 9110
/// changed it: 413 "Request Entity Too Large", 414 "Request-URI Too Long",
/// 416 "Requested Range Not Satisfiable".
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Requested Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        423 => "Locked",
        424 => "Failed Dependency",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

/// `ServerSignature`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Signature {
    /// httpd's default: no footer.
    #[default]
    Off,
    /// `<address>BANNER Server at NAME Port N</address>`.
    On,
    /// The same with the name linked to `mailto:ServerAdmin` (or to ServerAdmin itself when
    /// it is a URL).
    EMail,
}

/// What httpd's error pages interpolate, as the request that failed saw it.
#[derive(Debug, Clone, Copy)]
pub struct ErrorContext<'a> {
    /// The request method (405, 411, 413, 501 name it).
    pub method: &'a str,
    /// The `Location` response header, for 301, 302, 303, 307 and 308.
    pub location: Option<&'a str>,
    /// The request's `Expect` header, for 417.
    pub expect: Option<&'a str>,
    /// httpd's `error-notes`: HTML the failing module wrote (already escaped), shown by
    /// 400, 411, 414, 451, 501 and 502. See [`NOTE_FIELD_TOO_LONG`].
    pub error_notes: Option<&'a str>,
    /// `ServerAdmin` of the server answering, or [`DEFAULT_ADMIN`].
    pub server_admin: &'a str,
    /// `ServerSignature` in force for the request.
    pub signature: Signature,
    /// What `ServerTokens` makes of the product: see [`server_banner`].
    pub banner: &'a str,
    /// `ap_get_server_name`: with `UseCanonicalName Off` (the default) the Host header's
    /// name, else `ServerName`.
    pub server_name: &'a str,
    /// `ap_get_server_port`: with `UseCanonicalName Off` the Host header's port, or the
    /// scheme's default (80 even on another listening port); else `ServerName`'s port.
    pub port: u16,
}

impl<'a> ErrorContext<'a> {
    /// A context with no signature, no Location, no notes and httpd's default admin.
    pub fn new(method: &'a str) -> Self {
        ErrorContext {
            method,
            location: None,
            expect: None,
            error_notes: None,
            server_admin: DEFAULT_ADMIN,
            signature: Signature::Off,
            banner: "",
            server_name: "",
            port: 80,
        }
    }
}

/// The product string for `Server:` and signatures under `ServerTokens`, as httpd builds
/// `ap_get_server_banner()`: `Prod` → `name`, `Major` → `name/1`, `Minor` → `name/1.2`,
/// `Minimal` → `name/1.2.3`, `OS` → `name/1.2.3 (os)`, `Full` → the `OS` form followed by
/// the `components` (httpd: `mpm-itk/2.4.7-04`, module versions).
pub fn server_banner(
    tokens: itkd_config::model::ServerTokens,
    name: &str,
    version: &str,
    os: &str,
    components: &[&str],
) -> String {
    use itkd_config::model::ServerTokens;
    let mut parts = version.splitn(3, '.');
    let major = parts.next().unwrap_or_default();
    let minor = parts.next();
    match tokens {
        ServerTokens::ProductOnly => name.to_owned(),
        ServerTokens::Major => format!("{name}/{major}"),
        ServerTokens::Minor => match minor {
            Some(minor) => format!("{name}/{major}.{minor}"),
            None => format!("{name}/{major}"),
        },
        ServerTokens::Minimal => format!("{name}/{version}"),
        ServerTokens::Os => format!("{name}/{version} ({os})"),
        ServerTokens::Full => {
            let mut banner = format!("{name}/{version} ({os})");
            for component in components {
                banner.push(' ');
                banner.push_str(component);
            }
            banner
        }
    }
}

/// The body httpd sends for `status` when no `ErrorDocument` applies.
///
/// The title is `status reason`; statuses without a text of their own get httpd's
/// default one, the 500 text naming `ServerAdmin` (402, 409, 505, …).
pub fn error_body(status: u16, ctx: &ErrorContext<'_>) -> String {
    let reason = reason(status);
    let mut body = String::with_capacity(600);
    body.push_str(
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\" \
         \"http://www.w3.org/TR/html4/strict.dtd\">\n<html><head>\n<title>",
    );
    body.push_str(&format!("{status} {reason}"));
    body.push_str("</title>\n</head><body>\n<h1>");
    body.push_str(reason);
    body.push_str("</h1>\n");
    canned_text(status, ctx, &mut body);
    signature(ctx, &mut body);
    body.push_str("</body></html>\n");
    body
}

/// httpd's `get_canned_error_string`.
fn canned_text(status: u16, ctx: &ErrorContext<'_>, out: &mut String) {
    let location = || escape_html(ctx.location.unwrap_or_default());
    let method = || escape_html(ctx.method);
    // `add_optional_notes`: prefix, the notes if any, suffix.
    let with_notes = |out: &mut String, prefix: &str, suffix: &str| {
        out.push_str(prefix);
        out.push_str(ctx.error_notes.unwrap_or_default());
        out.push_str(suffix);
    };
    match status {
        300 => {}
        301 | 302 | 307 | 308 => out.push_str(&format!(
            "<p>The document has moved <a href=\"{}\">here</a>.</p>\n",
            location()
        )),
        303 => out.push_str(&format!(
            "<p>The answer to your request is located <a href=\"{}\">here</a>.</p>\n",
            location()
        )),
        305 => out.push_str(
            "<p>This resource is only accessible through the proxy\n<br />\n\
             You will need to configure your client to use that proxy.</p>\n",
        ),
        400 => with_notes(
            out,
            "<p>Your browser sent a request that this server could not understand.<br />\n",
            "</p>\n",
        ),
        401 | 407 => out.push_str(
            "<p>This server could not verify that you\n\
             are authorized to access the document\n\
             requested.  Either you supplied the wrong\n\
             credentials (e.g., bad password), or your\n\
             browser doesn't understand how to supply\n\
             the credentials required.</p>\n",
        ),
        403 => out.push_str("<p>You don't have permission to access this resource.</p>\n"),
        404 => out.push_str("<p>The requested URL was not found on this server.</p>\n"),
        405 => out.push_str(&format!(
            "<p>The requested method {} is not allowed for this URL.</p>\n",
            method()
        )),
        406 => out.push_str(
            "<p>An appropriate representation of the requested resource \
             could not be found on this server.</p>\n",
        ),
        408 => out.push_str("<p>Server timeout waiting for the HTTP request from the client.</p>\n"),
        410 => out.push_str(
            "<p>The requested resource is no longer available on this server \
             and there is no forwarding address.\n\
             Please remove all references to this resource.</p>\n",
        ),
        411 => with_notes(
            out,
            &format!(
                "<p>A request of the requested method {} requires a valid Content-length.<br />\n",
                method()
            ),
            "</p>\n",
        ),
        412 => out
            .push_str("<p>The precondition on the request for this URL evaluated to false.</p>\n"),
        413 => out.push_str(&format!(
            "The requested resource does not allow request data with {} requests, \
             or the amount of data provided in\nthe request exceeds the capacity limit.\n",
            method()
        )),
        414 => with_notes(
            out,
            "<p>The requested URL's length exceeds the capacity\nlimit for this server.<br />\n",
            "</p>\n",
        ),
        415 => out.push_str(
            "<p>The supplied request data is not in a format\n\
             acceptable for processing by this resource.</p>\n",
        ),
        416 => out.push_str(
            "<p>None of the range-specifier values in the Range\n\
             request-header field overlap the current extent\n\
             of the selected resource.</p>\n",
        ),
        417 => {
            match ctx.expect {
                Some(expect) => out.push_str(&format!(
                    "<p>The expectation given in the Expect request-header\n\
                     field could not be met by this server.\n\
                     The client sent<pre>\n    Expect: {}\n</pre>\n",
                    escape_html(expect)
                )),
                None => out.push_str(
                    "<p>No expectation was seen, the Expect request-header \n\
                     field was not presented by the client.\n",
                ),
            }
            out.push_str("</p><p>Only the 100-continue expectation is supported.</p>\n");
        }
        421 => out.push_str(
            "<p>The client needs a new connection for this\n\
             request as the requested host name does not match\n\
             the Server Name Indication (SNI) in use for this\n\
             connection.</p>\n",
        ),
        422 => out.push_str(
            "<p>The server understands the media type of the\n\
             request entity, but was unable to process the\n\
             contained instructions.</p>\n",
        ),
        423 => out.push_str(
            "<p>The requested resource is currently locked.\n\
             The lock must be released or proper identification\n\
             given before the method can be applied.</p>\n",
        ),
        424 => out.push_str(
            "<p>The method could not be performed on the resource\n\
             because the requested action depended on another\n\
             action and that other action failed.</p>\n",
        ),
        426 => out.push_str(
            "<p>The requested resource can only be retrieved\n\
             using SSL.  The server is willing to upgrade the current\n\
             connection to SSL, but your client doesn't support it.\n\
             Either upgrade your client, or try requesting the page\n\
             using https://\n",
        ),
        428 => out.push_str("<p>The request is required to be conditional.</p>\n"),
        429 => out.push_str(
            "<p>The user has sent too many requests\nin a given amount of time.</p>\n",
        ),
        431 => out.push_str(
            "<p>The server refused this request because\n\
             the request header fields are too large.</p>\n",
        ),
        451 => with_notes(
            out,
            "<p>Access to this URL has been denied for legal reasons.<br />\n",
            "</p>\n",
        ),
        501 => with_notes(
            out,
            &format!("<p>{} not supported for current URL.<br />\n", method()),
            "</p>\n",
        ),
        // httpd's text really has CRLF line ends here, unlike every other page.
        502 => with_notes(
            out,
            "<p>The proxy server received an invalid\r\nresponse from an upstream server.<br />\r\n",
            "</p>\n",
        ),
        503 => out.push_str(
            "<p>The server is temporarily unable to service your\n\
             request due to maintenance downtime or capacity\n\
             problems. Please try again later.</p>\n",
        ),
        504 => out.push_str(
            "<p>The gateway did not receive a timely response\n\
             from the upstream server or application.</p>\n",
        ),
        // mod_negotiation's `variant-list` note would go in the <pre>; itkd negotiates nothing.
        506 => out.push_str(
            "<p>A variant for the requested resource\n<pre>\n\n</pre>\n\
             is itself a negotiable resource. This indicates a configuration error.</p>\n",
        ),
        507 => out.push_str(
            "<p>The method could not be performed on the resource\n\
             because the server is unable to store the\n\
             representation needed to successfully complete the\n\
             request.  There is insufficient free space left in\n\
             your storage allocation.</p>\n",
        ),
        508 => out.push_str(
            "<p>The server terminated an operation because\nit encountered an infinite loop.</p>\n",
        ),
        510 => out.push_str(
            "<p>A mandatory extension policy in the request is not\n\
             accepted by the server for this resource.</p>\n",
        ),
        511 => out.push_str(
            "<p>The client needs to authenticate to gain\nnetwork access.</p>\n",
        ),
        // 500 and every code without a text of its own.
        _ => out.push_str(&format!(
            "<p>The server encountered an internal error or\n\
             misconfiguration and was unable to complete\n\
             your request.</p>\n\
             <p>Please contact the server administrator at \n \
             {} to inform them of the time this error occurred,\n \
             and the actions you performed just before this error.</p>\n\
             <p>More information about this error may be available\n\
             in the server error log.</p>\n",
            escape_html(ctx.server_admin)
        )),
    }
}

/// httpd's `ap_psignature("<hr>\n", r)`.
fn signature(ctx: &ErrorContext<'_>, out: &mut String) {
    out.push_str(&server_signature(ctx, "<hr>\n"));
}

/// httpd's `ap_psignature(prefix, r)`: empty with `ServerSignature Off`; with the empty
/// prefix it is a CGI's `SERVER_SIGNATURE`.
pub fn server_signature(ctx: &ErrorContext<'_>, prefix: &str) -> String {
    let name = escape_html(ctx.server_name);
    let mut out = String::new();
    match ctx.signature {
        Signature::Off => {}
        Signature::On => out.push_str(&format!(
            "{prefix}<address>{} Server at {name} Port {}</address>\n",
            ctx.banner, ctx.port
        )),
        Signature::EMail => {
            // `ap_is_url`: a ServerAdmin that is already a URL is linked as it is.
            let mailto = if is_url(ctx.server_admin) {
                ""
            } else {
                "mailto:"
            };
            out.push_str(&format!(
                "{prefix}<address>{} Server at <a href=\"{mailto}{}\">{name}</a> Port {}</address>\n",
                ctx.banner,
                escape_html(ctx.server_admin),
                ctx.port
            ));
        }
    }
    out
}

/// httpd's `ap_escape_html`: `<`, `>`, `&` and `"` only (`'` stays).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// httpd's `ap_is_url`: a scheme of letters, digits, `+`, `-` or `.` followed by `:`.
fn is_url(s: &str) -> bool {
    match s.split_once(':') {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use itkd_config::model::ServerTokens;

    #[test]
    fn banner_per_server_tokens() {
        for (tokens, want) in [
            (ServerTokens::ProductOnly, "Apache"),
            (ServerTokens::Major, "Apache/2"),
            (ServerTokens::Minor, "Apache/2.4"),
            (ServerTokens::Minimal, "Apache/2.4.71"),
            (ServerTokens::Os, "Apache/2.4.71 (Debian)"),
            (
                ServerTokens::Full,
                "Apache/2.4.71 (Debian) mpm-itk/2.4.7-04",
            ),
        ] {
            assert_eq!(
                server_banner(tokens, "Apache", "2.4.71", "Debian", &["mpm-itk/2.4.7-04"]),
                want
            );
        }
        assert_eq!(
            server_banner(ServerTokens::Minor, "itkd", "1", "Unix", &[]),
            "itkd/1"
        );
    }

    #[test]
    fn urls_and_escapes() {
        for (s, url) in [
            ("https://x.test/", true),
            ("mailto:a@b", true),
            ("a@b.test", false),
            (":x", false),
            ("a b:c", false),
        ] {
            assert_eq!(is_url(s), url, "{s}");
        }
        assert_eq!(
            escape_html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;'"
        );
    }

    #[test]
    fn unknown_reason_is_empty() {
        for status in [104, 299, 306, 418, 425, 509, 599] {
            assert_eq!(reason(status), "", "{status}");
        }
    }
}
