//! The glue between the worker and itkd-http's error pages and log lines.
//! (Interim: a compact rendering until itkd-http's byte-exact versions land.)

use std::net::SocketAddr;
use std::time::SystemTime;

/// httpd's reason phrase and page text for the statuses the worker produces.
fn texts(status: u16) -> (&'static str, &'static str) {
    match status {
        301 => ("Moved Permanently", "The document has moved."),
        400 => ("Bad Request", "Your browser sent a request that this server could not understand.<br />"),
        403 => ("Forbidden", "You don't have permission to access this resource."),
        404 => ("Not Found", "The requested URL was not found on this server."),
        405 => ("Method Not Allowed", "The requested method is not allowed for this URL."),
        412 => ("Precondition Failed", "The precondition on the request for this URL evaluated to false."),
        414 => ("Request-URI Too Long", "The requested URL's length exceeds the capacity\nlimit for this server.<br />"),
        416 => ("Requested Range Not Satisfiable", "None of the range-specifier values in the Range\nrequest-header field overlap the current extent\nof the selected resource."),
        500 => ("Internal Server Error", "The server encountered an internal error or\nmisconfiguration and was unable to complete\nyour request."),
        503 => ("Service Unavailable", "The server is temporarily unable to service your\nrequest due to maintenance downtime or capacity\nproblems. Please try again later."),
        _ => ("Error", "An error occurred."),
    }
}

pub fn error_page(status: u16) -> String {
    let (reason, text) = texts(status);
    format!(
        "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>{status} {reason}</title>\n</head><body>\n<h1>{reason}</h1>\n<p>{text}</p>\n</body></html>\n"
    )
}

pub fn error_log_line(
    module: &str,
    level: &str,
    client: Option<SocketAddr>,
    message: &str,
) -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let client = client.map(|c| format!(" [client {c}]")).unwrap_or_default();
    format!(
        "[{}] [{module}:{level}] [pid {}]{client} {message}",
        httpdate_like(secs),
        std::process::id()
    )
}

fn httpdate_like(secs: u64) -> String {
    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}
