//! The subset of httpd's string expressions (`ap_expr` string mode) that
//! `AssignUserIDExpr` and `AssignGroupIDExpr` take: literal text with `%{VAR}`
//! interpolation. Parsed at load, so a typo is a config error, not a 500 per request.

use std::fmt;

/// A variable an expression may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    HttpHost,
    ServerName,
    RequestUri,
    /// `%{reqenv:NAME}`: a request environment variable (SetEnv, SetEnvIf, …).
    ReqEnv(String),
    /// `%{ENV:NAME}`: the same in httpd's expression language; kept apart for messages.
    Env(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Var(Var),
}

/// A parsed string expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringExpr {
    pub pieces: Vec<Piece>,
}

const SUPPORTED: &str = "HTTP_HOST, SERVER_NAME, REQUEST_URI, reqenv:NAME, ENV:NAME";

impl StringExpr {
    pub fn parse(text: &str) -> Result<StringExpr, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped) => literal.push(escaped),
                    None => return Err("expression ends with a lone backslash".to_owned()),
                },
                '%' if chars.peek() == Some(&'{') => {
                    chars.next();
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(ch) => name.push(ch),
                            None => return Err(format!("unclosed %{{{name} in expression")),
                        }
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Var(Self::var(&name)?));
                }
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        if pieces.is_empty() {
            return Err("empty expression".to_owned());
        }
        Ok(StringExpr { pieces })
    }

    fn var(name: &str) -> Result<Var, String> {
        if let Some((func, arg)) = name.split_once(':') {
            if arg.is_empty() {
                return Err(format!("%{{{name}}} names no variable"));
            }
            if func.eq_ignore_ascii_case("reqenv") {
                return Ok(Var::ReqEnv(arg.to_owned()));
            }
            if func.eq_ignore_ascii_case("env") {
                return Ok(Var::Env(arg.to_owned()));
            }
        } else {
            match name {
                "HTTP_HOST" => return Ok(Var::HttpHost),
                "SERVER_NAME" => return Ok(Var::ServerName),
                "REQUEST_URI" => return Ok(Var::RequestUri),
                _ => {}
            }
        }
        Err(format!(
            "unsupported variable %{{{name}}} in expression (itkd supports {SUPPORTED})"
        ))
    }

    /// The expression's value, with `lookup` supplying each variable ("" when unset,
    /// as httpd's).
    pub fn eval(&self, lookup: impl Fn(&Var) -> Option<String>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(&lookup(v).unwrap_or_default()),
            }
        }
        out
    }
}

impl fmt::Display for StringExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => {
                    for c in t.chars() {
                        if c == '\\' || c == '%' {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                }
                Piece::Var(Var::HttpHost) => f.write_str("%{HTTP_HOST}")?,
                Piece::Var(Var::ServerName) => f.write_str("%{SERVER_NAME}")?,
                Piece::Var(Var::RequestUri) => f.write_str("%{REQUEST_URI}")?,
                Piece::Var(Var::ReqEnv(n)) => write!(f, "%{{reqenv:{n}}}")?,
                Piece::Var(Var::Env(n)) => write!(f, "%{{ENV:{n}}}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_eval() {
        let e = StringExpr::parse("web-%{reqenv:TENANT}-%{HTTP_HOST}").unwrap();
        let got = e.eval(|v| match v {
            Var::ReqEnv(n) if n == "TENANT" => Some("a".into()),
            Var::HttpHost => Some("a.test".into()),
            _ => None,
        });
        assert_eq!(got, "web-a-a.test");
        assert_eq!(
            StringExpr::parse("%{SERVER_NAME}").unwrap().eval(|_| None),
            ""
        );
        assert_eq!(
            StringExpr::parse("a\\%{b}").unwrap().pieces,
            vec![Piece::Text("a%{b}".into())]
        );
    }

    #[test]
    fn round_trips_through_display() {
        for text in ["u-%{ENV:X}", "%{REQUEST_URI}x", "plain", "a\\\\b\\%c"] {
            let e = StringExpr::parse(text).unwrap();
            assert_eq!(StringExpr::parse(&e.to_string()).unwrap(), e, "{text}");
        }
    }

    #[test]
    fn errors() {
        let table = [
            ("%{HTTP_HOST", "unclosed %{HTTP_HOST in expression"),
            ("%{REMOTE_ADDR}", "unsupported variable %{REMOTE_ADDR} in expression (itkd supports HTTP_HOST, SERVER_NAME, REQUEST_URI, reqenv:NAME, ENV:NAME)"),
            ("%{reqenv:}", "%{reqenv:} names no variable"),
            ("", "empty expression"),
            ("x\\", "expression ends with a lone backslash"),
        ];
        for (text, err) in table {
            assert_eq!(StringExpr::parse(text), Err(err.to_owned()), "{text}");
        }
    }
}
