//! Writing a directive tree back as httpd.conf text that reads back to the same tree.

use std::borrow::Cow;
use std::fmt::{self, Write};

use crate::Directive;

/// An argument as it must be written so that `ap_getword_conf` reads it back unchanged.
/// `${` cannot be protected (httpd expands variables before it splits words), so an
/// argument holding it reads back expanded.
pub fn quote_arg(arg: &str) -> Cow<'_, str> {
    let plain = !arg.is_empty()
        && !arg.starts_with('#')
        && !arg.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '<' | '>'));
    if plain {
        return Cow::Borrowed(arg);
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    for c in arg.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Cow::Owned(out)
}

/// Writes `directives` as configuration text, sections indented by four spaces.
pub fn write_tree(directives: &[Directive]) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_level(&mut out, directives, 0);
    out
}

fn write_level(out: &mut String, directives: &[Directive], depth: usize) -> fmt::Result {
    for d in directives {
        let indent = "    ".repeat(depth);
        let args: Vec<Cow<'_, str>> = d.args.iter().map(|a| quote_arg(a)).collect();
        let sep = if args.is_empty() { "" } else { " " };
        match &d.children {
            Some(children) => {
                writeln!(out, "{indent}<{}{sep}{}>", d.name, args.join(" "))?;
                write_level(out, children, depth + 1)?;
                writeln!(out, "{indent}</{}>", d.name)?;
            }
            // A directive's name is a word like its arguments (`"#x"`, `""`, `"<x"`).
            None => writeln!(out, "{indent}{}{sep}{}", quote_arg(&d.name), args.join(" "))?,
        }
    }
    Ok(())
}

impl fmt::Display for Directive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&write_tree(std::slice::from_ref(self)))
    }
}
