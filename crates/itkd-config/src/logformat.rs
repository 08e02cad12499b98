//! mod_log_config's `LogFormat` strings, parsed once at load.
//!
//! `%[condition][<|>][{arg}]code`, where the condition is `!`?status,status…; literal
//! text takes the escapes mod_log_config knows (`\n`, `\r`, `\t`, `\\`; any other backslash
//! is kept).

/// A parsed format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFormat {
    pub items: Vec<LogItem>,
    /// The text it was parsed from, for `-S` and messages.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogItem {
    Text(String),
    Field(Field),
}

/// One `%` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The letter (`h`, `>s`'s `s`, …) or `^ti`/`^to`.
    pub code: &'static str,
    pub arg: Option<String>,
    /// `<`: the original request's value; `>`: the final one (after internal redirects).
    pub original: Option<bool>,
    /// Log only for these statuses (or all but these when `negate`).
    pub statuses: Option<(bool, Vec<u16>)>,
}

/// httpd's default format for `TransferLog` without a preceding `LogFormat` (CLF).
pub const DEFAULT_FORMAT: &str = "%h %l %u %t \"%r\" %>s %b";

/// The codes mod_log_config, mod_logio and core register.
const CODES: &[&str] = &[
    "a", "A", "b", "B", "C", "D", "e", "f", "h", "H", "i", "k", "l", "L", "m", "n", "o", "p", "P",
    "q", "r", "R", "s", "t", "T", "u", "U", "v", "V", "x", "X", "I", "O", "S", "^ti", "^to",
];

impl LogFormat {
    pub fn parse(text: &str) -> Result<LogFormat, String> {
        let mut items = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                // mod_log_config's parse_log_misc_string: \n, \r, \t, \\; any other
                // backslash stays, and the next character is read as usual.
                '\\' => match chars.peek() {
                    Some('n') => {
                        chars.next();
                        literal.push('\n');
                    }
                    Some('r') => {
                        chars.next();
                        literal.push('\r');
                    }
                    Some('t') => {
                        chars.next();
                        literal.push('\t');
                    }
                    Some('\\') => {
                        chars.next();
                        literal.push('\\');
                    }
                    _ => literal.push('\\'),
                },
                '%' => {
                    if chars.peek() == Some(&'%') {
                        chars.next();
                        literal.push('%');
                        continue;
                    }
                    if !literal.is_empty() {
                        items.push(LogItem::Text(std::mem::take(&mut literal)));
                    }
                    items.push(LogItem::Field(Self::field(&mut chars)?));
                }
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            items.push(LogItem::Text(literal));
        }
        Ok(LogFormat {
            items,
            source: text.to_owned(),
        })
    }

    fn field(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Field, String> {
        let mut field = Field {
            code: "",
            arg: None,
            original: None,
            statuses: None,
        };
        let mut status_text = String::new();
        loop {
            let Some(c) = chars.next() else {
                return Err("LogFormat string ends inside a % directive".to_owned());
            };
            match c {
                '{' => {
                    let mut arg = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(ch) => arg.push(ch),
                            None => return Err("unclosed { in LogFormat directive".to_owned()),
                        }
                    }
                    field.arg = Some(arg);
                }
                '<' => field.original = Some(true),
                '>' => field.original = Some(false),
                '!' | ',' | '0'..='9' => status_text.push(c),
                '^' => {
                    let code: String = [chars.next(), chars.next()].into_iter().flatten().collect();
                    let full = format!("^{code}");
                    return match CODES.iter().find(|k| **k == full) {
                        Some(k) => {
                            field.code = k;
                            Ok(Self::with_statuses(field, &status_text)?)
                        }
                        None => Err(format!("Unrecognized LogFormat directive %{full}")),
                    };
                }
                other => {
                    let mut buf = [0u8; 4];
                    let code = other.encode_utf8(&mut buf);
                    return match CODES.iter().find(|k| **k == &*code) {
                        Some(k) => {
                            field.code = k;
                            Ok(Self::with_statuses(field, &status_text)?)
                        }
                        None => Err(format!("Unrecognized LogFormat directive %{other}")),
                    };
                }
            }
        }
    }

    fn with_statuses(mut field: Field, text: &str) -> Result<Field, String> {
        if text.is_empty() {
            return Ok(field);
        }
        let (negate, list) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let statuses = list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<u16>()
                    .map_err(|_| format!("invalid status list '{text}' in LogFormat"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        field.statuses = Some((negate, statuses));
        Ok(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(f: &LogFormat) -> Vec<String> {
        f.items
            .iter()
            .map(|i| match i {
                LogItem::Text(t) => format!("'{t}'"),
                LogItem::Field(f) => format!(
                    "{}{}",
                    f.code,
                    f.arg
                        .as_deref()
                        .map(|a| format!("({a})"))
                        .unwrap_or_default()
                ),
            })
            .collect()
    }

    #[test]
    fn debian_formats_parse() {
        let f = LogFormat::parse(r#"%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i""#)
            .unwrap();
        assert_eq!(
            codes(&f),
            [
                "v",
                "':'",
                "p",
                "' '",
                "h",
                "' '",
                "l",
                "' '",
                "u",
                "' '",
                "t",
                "' \"'",
                "r",
                "'\" '",
                "s",
                "' '",
                "O",
                "' \"'",
                "i(Referer)",
                "'\" \"'",
                "i(User-Agent)",
                "'\"'"
            ]
        );
        let LogItem::Field(status) = &f.items[14] else {
            panic!()
        };
        assert_eq!(status.original, Some(false));
    }

    #[test]
    fn conditions_escapes_and_two_letter_codes() {
        let f = LogFormat::parse("%!200,304{Referer}i %% %{%s}t\\t%^ti %400e").unwrap();
        let LogItem::Field(first) = &f.items[0] else {
            panic!()
        };
        assert_eq!(first.statuses, Some((true, vec![200, 304])));
        assert_eq!(
            codes(&f),
            ["i(Referer)", "' % '", "t(%s)", "'\t'", "^ti", "' '", "e"]
        );
    }

    #[test]
    fn backslashes_like_mod_log_config() {
        // The config tokenizer has already turned \" into "; what is left: \n \r \t,
        // and any other backslash stays.
        let f = LogFormat::parse("a\\rb\\zc\\\\d\\%%").unwrap();
        assert_eq!(f.items, [LogItem::Text("a\rb\\zc\\d\\%".into())]);
    }

    #[test]
    fn errors() {
        for (text, err) in [
            ("%Z", "Unrecognized LogFormat directive %Z"),
            ("%{x", "unclosed { in LogFormat directive"),
            ("abc %", "LogFormat string ends inside a % directive"),
            ("%^zz", "Unrecognized LogFormat directive %^zz"),
        ] {
            assert_eq!(LogFormat::parse(text), Err(err.to_owned()), "{text}");
        }
    }
}
