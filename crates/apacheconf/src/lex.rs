//! Lines and words, exactly as httpd reads them.
//!
//! httpd's `ap_cfg_getline` joins a physical line ending in `\` with the next one (the
//! backslash is removed, the next line's leading blanks are kept) and trims both ends;
//! `ap_resolve_env` expands `${NAME}` over the whole line before it is split into words by
//! `ap_getword_conf`. This module does those three steps and nothing else: it knows no
//! directive.

/// httpd's `VARBUF_MAX_LEN`: the longest logical line `ap_build_config` accepts.
pub const MAX_LINE_LEN: usize = 16 * 1024 * 1024;

/// One logical line: continuation lines joined, both ends trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based number of the line's first physical line.
    pub number: u32,
    pub text: String,
}

/// Why a logical line could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    NotUtf8,
    TooLong,
}

/// Splits a file's bytes into logical lines. Blank lines are dropped; comment lines are
/// kept (the caller decides, because a continued comment is still a comment).
pub fn logical_lines(bytes: &[u8]) -> Vec<(u32, Result<String, LineError>)> {
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0u32;
    let mut too_long = false;
    let mut physical = bytes.split(|&b| b == b'\n').enumerate().peekable();
    while let Some((index, raw)) = physical.next() {
        if buf.is_empty() && !too_long {
            start = u32::try_from(index + 1).unwrap_or(u32::MAX);
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let (body, continues) = match raw.strip_suffix(b"\\") {
            // A trailing backslash joins the next line, unless this is the file's end.
            Some(body) if physical.peek().is_some() => (body, true),
            _ => (raw, false),
        };
        if buf.len() + body.len() > MAX_LINE_LEN {
            too_long = true;
        } else if !too_long {
            buf.extend_from_slice(body);
        }
        if continues {
            continue;
        }
        if too_long {
            out.push((start, Err(LineError::TooLong)));
        } else {
            let trimmed = trim_ascii(&buf);
            if !trimmed.is_empty() {
                match std::str::from_utf8(trimmed) {
                    Ok(text) => out.push((start, Ok(text.to_owned()))),
                    Err(_) => out.push((start, Err(LineError::NotUtf8))),
                }
            }
        }
        buf.clear();
        too_long = false;
    }
    out
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| b.is_ascii_whitespace() || *b == b'\x0b';
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// Expands every `${NAME}` in `line` with `lookup`; a name `lookup` does not know is kept
/// verbatim (httpd AH00111 warns and keeps it) and reported in `undefined`.
///
/// The result is bounded by [`MAX_LINE_LEN`]: `Define A ${A}${A}` doubles per line, so a
/// few hundred bytes of configuration could otherwise ask for any amount of memory.
pub fn expand_vars(
    line: &str,
    lookup: impl Fn(&str) -> Option<String>,
    undefined: &mut Vec<String>,
) -> Result<String, LineError> {
    if !line.contains("${") {
        return Ok(line.to_owned());
    }
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find("${") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match lookup(name) {
                    Some(value) if out.len() + value.len() > MAX_LINE_LEN => {
                        return Err(LineError::TooLong)
                    }
                    Some(value) => out.push_str(&value),
                    None => {
                        undefined.push(name.to_owned());
                        out.push_str(&rest[open..open + 2 + close + 1]);
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A quote opened and never closed on its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnterminatedQuote(pub char);

/// Splits a line into words as httpd's `ap_getword_conf` does: blanks separate words;
/// a word beginning with `"` or `'` runs to the matching quote, in which `\"` (or `\'`)
/// and `\\` are escapes; outside quotes only `\\` is one.
///
/// httpd silently ends an unterminated quote at the end of the line; itkd reports it.
pub fn split_words(line: &str) -> Result<Vec<String>, UnterminatedQuote> {
    let bytes = line.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            return Ok(words);
        }
        let quote = bytes[i];
        if quote == b'"' || quote == b'\'' {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end] != quote {
                if bytes[end] == b'\\'
                    && end + 1 < bytes.len()
                    && (bytes[end + 1] == quote || bytes[end + 1] == b'\\')
                {
                    end += 2;
                } else {
                    end += 1;
                }
            }
            if end >= bytes.len() {
                return Err(UnterminatedQuote(quote as char));
            }
            words.push(unescape(&line[start..end], Some(quote)));
            i = end + 1;
        } else {
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            words.push(unescape(&line[start..i], None));
        }
    }
}

/// httpd's `substring_conf`: `\\` always, and `\<quote>` inside that quote, lose the backslash.
fn unescape(text: &str, quote: Option<u8>) -> String {
    if !text.contains('\\') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 1 < bytes.len()
            && (bytes[i + 1] == b'\\' || Some(bytes[i + 1]) == quote)
        {
            out.push(bytes[i + 1]);
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    // Only ASCII bytes were removed, and never from inside a multi-byte character.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(u32, String)> {
        logical_lines(text.as_bytes())
            .into_iter()
            .map(|(n, l)| (n, l.unwrap()))
            .collect()
    }

    #[test]
    fn lines_are_trimmed_and_blank_ones_dropped() {
        assert_eq!(
            lines("  Listen 80  \n\n\t\nUser a\r\n"),
            vec![(1, "Listen 80".into()), (4, "User a".into())]
        );
    }

    #[test]
    fn trailing_backslash_joins_the_next_line_keeping_its_blanks() {
        assert_eq!(
            lines("Foo a \\\n    b\nBar x\\\ny\n"),
            vec![(1, "Foo a     b".into()), (3, "Bar xy".into())]
        );
    }

    #[test]
    fn a_continued_comment_stays_a_comment_line() {
        assert_eq!(
            lines("# one \\\nUser x\nGroup g"),
            vec![(1, "# one User x".into()), (3, "Group g".into())]
        );
    }

    #[test]
    fn backslash_on_the_last_line_is_kept() {
        assert_eq!(lines("Foo a\\"), vec![(1, "Foo a\\".into())]);
    }

    #[test]
    fn invalid_utf8_is_reported_on_its_line() {
        let got = logical_lines(b"Listen 80\nFoo \xff\xfe\n");
        assert_eq!(got[1], (2, Err(LineError::NotUtf8)));
    }

    #[test]
    fn words_split_like_ap_getword_conf() {
        let table: &[(&str, &[&str])] = &[
            ("a b\tc", &["a", "b", "c"]),
            (r#""a b" c"#, &["a b", "c"]),
            (r#"'a "b"' c"#, &["a \"b\"", "c"]),
            (r#""a \"q\" \\ \n""#, &["a \"q\" \\ \\n"]),
            (r#"'it\'s'"#, &["it's"]),
            (r"a\\b a\b", &["a\\b", "a\\b"]),
            (r#""""#, &[""]),
            (r#""abc"def"#, &["abc", "def"]),
            (r#"x"y z"#, &["x\"y", "z"]),
        ];
        for (line, want) in table {
            assert_eq!(&split_words(line).unwrap(), want, "line {line:?}");
        }
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert_eq!(split_words(r#"a "b c"#), Err(UnterminatedQuote('"')));
        assert_eq!(split_words(r#"'b\'"#), Err(UnterminatedQuote('\'')));
    }

    #[test]
    fn vars_expand_and_undefined_ones_are_kept() {
        let lookup = |n: &str| (n == "A").then(|| "x y".to_owned());
        let mut undefined = Vec::new();
        assert_eq!(
            expand_vars("p${A}q ${B} ${A", lookup, &mut undefined).unwrap(),
            "px yq ${B} ${A"
        );
        assert_eq!(undefined, vec!["B".to_owned()]);
    }
}
