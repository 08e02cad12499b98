//! Reading files into the directive tree, executing what httpd executes on read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::lex::{self, LineError};
use crate::{fnmatch, module_id, Diagnostic, Directive, Host, ModuleLoad, Parsed, Span};

/// httpd's `AP_MAX_INCLUDE_DEPTH`.
const MAX_INCLUDE_DEPTH: usize = 128;

/// How deep sections may nest (across included files). httpd has no limit, but the reader
/// recurses once per open section: without one, a file of `<a>` lines overflows the stack.
const MAX_SECTION_DEPTH: usize = 128;

/// Where reading starts.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-d`, or the compiled-in default: relative `Include`s and `<IfFile>`s resolve here.
    pub server_root: PathBuf,
    /// `-D NAME` from the command line.
    pub defines: Vec<String>,
    /// Refuse `Include`/`IncludeOptional` (for fuzzing and tests that must not touch files).
    pub forbid_includes: bool,
}

/// What one read of the configuration leaves for later reads (`.htaccess` files).
#[derive(Debug, Clone, Default)]
pub struct ReadState {
    defines: Vec<String>,
    vars: HashMap<String, String>,
    modules: Vec<String>,
}

impl ReadState {
    pub(crate) fn value(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

/// Reads a main configuration file and everything it includes.
pub fn parse_file(path: &Path, options: &Options, host: &dyn Host) -> Parsed {
    let mut parser = Parser::new(options, host);
    let mut directives = Vec::new();
    let span = Span {
        file: path.into(),
        line: 0,
    };
    parser.include_file(path, &span, None, &mut directives);
    parser.finish(path, directives)
}

/// Reads main configuration text that is not in a file of its own; `name` is the file
/// name its diagnostics carry.
pub fn parse_bytes(bytes: &[u8], name: &Path, options: &Options, host: &dyn Host) -> Parsed {
    let mut parser = Parser::new(options, host);
    let mut directives = Vec::new();
    parser.read_bytes(bytes, name.into(), &mut directives);
    parser.finish(name, directives)
}

/// Reads one `.htaccess` file's bytes. `Include`, `Define` and the other directives httpd
/// executes on read are not allowed in it; variables and defines are those of `main`.
pub fn parse_htaccess(bytes: &[u8], file: &Path, main: &Parsed, host: &dyn Host) -> Parsed {
    let mut parser = Parser {
        host,
        server_root: main.server_root.clone(),
        state: main.state.clone(),
        htaccess: true,
        forbid_includes: true,
        include_stack: Vec::new(),
        depth: 0,
        diagnostics: Vec::new(),
    };
    let mut directives = Vec::new();
    parser.read_bytes(bytes, file.into(), &mut directives);
    parser.finish(file, directives)
}

struct Parser<'h> {
    host: &'h dyn Host,
    server_root: PathBuf,
    state: ReadState,
    htaccess: bool,
    forbid_includes: bool,
    include_stack: Vec<PathBuf>,
    /// Sections open now, in every file being read.
    depth: usize,
    diagnostics: Vec<Diagnostic>,
}

/// How a block of lines ended.
enum End {
    Eof,
    /// A `</Name>` line; `reported` once its mismatch has been reported.
    Close {
        name: String,
        span: Span,
        reported: bool,
    },
}

struct Cursor {
    file: Arc<Path>,
    lines: std::vec::IntoIter<(u32, Result<String, LineError>)>,
}

/// The sections httpd evaluates while reading; their bodies are spliced in or dropped.
#[derive(Clone, Copy)]
enum Conditional {
    Define,
    Module,
    Directive,
    Section,
    File,
}

impl Conditional {
    fn of(name: &str) -> Option<Self> {
        let table = [
            ("IfDefine", Conditional::Define),
            ("IfModule", Conditional::Module),
            ("IfDirective", Conditional::Directive),
            ("IfSection", Conditional::Section),
            ("IfFile", Conditional::File),
        ];
        table
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, c)| c)
    }
}

/// The name in a `</Name>` line, or `None` when the line is not one.
fn closer_name(text: &str) -> Option<String> {
    let rest = text.strip_prefix("</")?;
    let rest = rest.strip_suffix('>').unwrap_or(rest);
    Some(
        rest.split_ascii_whitespace()
            .next()
            .unwrap_or("")
            .to_owned(),
    )
}

/// Reads a section body past its closing line without recursing (the section nests too
/// deep to be read): nothing in it is checked, executed or kept.
fn skip_body(cur: &mut Cursor) -> End {
    let mut open = 0usize;
    for (number, line) in cur.lines.by_ref() {
        let Ok(text) = line else { continue };
        if let Some(name) = closer_name(&text) {
            if open == 0 {
                let span = Span {
                    file: cur.file.clone(),
                    line: number,
                };
                return End::Close {
                    name,
                    span,
                    reported: false,
                };
            }
            open -= 1;
        } else if text.starts_with('<') {
            open += 1;
        }
    }
    End::Eof
}

impl<'h> Parser<'h> {
    fn new(options: &Options, host: &'h dyn Host) -> Self {
        let mut parser = Parser {
            host,
            server_root: options.server_root.clone(),
            state: ReadState::default(),
            htaccess: false,
            forbid_includes: options.forbid_includes,
            include_stack: Vec::new(),
            depth: 0,
            diagnostics: Vec::new(),
        };
        for name in &options.defines {
            parser.define(name);
        }
        parser
    }

    fn finish(self, file: &Path, directives: Vec<Directive>) -> Parsed {
        Parsed {
            file: file.to_path_buf(),
            directives,
            diagnostics: self.diagnostics,
            server_root: self.server_root,
            defines: self.state.defines.clone(),
            state: self.state,
        }
    }

    fn error(&mut self, span: &Span, directive: Option<&str>, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::error(span, directive, message));
    }

    fn warning(&mut self, span: &Span, directive: Option<&str>, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::warning(span, directive, message));
    }

    fn define(&mut self, name: &str) {
        if !self.state.defines.iter().any(|d| d == name) {
            self.state.defines.push(name.to_owned());
        }
    }

    fn read_bytes(&mut self, bytes: &[u8], file: Arc<Path>, out: &mut Vec<Directive>) {
        let mut cursor = Cursor {
            file,
            lines: lex::logical_lines(bytes).into_iter(),
        };
        // At a file's top level every `</X>` is reported inside `block`; the end is EOF.
        let _ = self.block(&mut cursor, None, true, out);
    }

    /// Reads lines until EOF or a closing `</X>` line. `open` is the section being read;
    /// `active` is false inside a conditional section that evaluated false, where only the
    /// nesting is checked and nothing is executed or kept.
    fn block(
        &mut self,
        cur: &mut Cursor,
        open: Option<&str>,
        active: bool,
        out: &mut Vec<Directive>,
    ) -> End {
        while let Some((number, line)) = cur.lines.next() {
            let span = Span {
                file: cur.file.clone(),
                line: number,
            };
            let text = match line {
                Ok(text) => text,
                Err(LineError::NotUtf8) => {
                    self.error(&span, None, "line is not valid UTF-8");
                    continue;
                }
                Err(LineError::TooLong) => {
                    self.error(
                        &span,
                        None,
                        format!("line longer than {} bytes", lex::MAX_LINE_LEN),
                    );
                    continue;
                }
            };
            if text.starts_with('#') {
                continue;
            }
            let text = if active {
                match self.expand(&text, &span) {
                    Some(text) => text,
                    None => continue,
                }
            } else {
                text
            };
            let end = if let Some(name) = closer_name(&text) {
                Some(End::Close {
                    name,
                    span,
                    reported: false,
                })
            } else if text.starts_with('<') {
                self.section(cur, &text, span, active, out)
            } else {
                if active {
                    self.directive(&text, span, out);
                }
                None
            };
            match (end, open) {
                (None, _) => {}
                (Some(end), Some(_)) => return end,
                (Some(End::Eof), None) => return End::Eof,
                (
                    Some(End::Close {
                        name,
                        span,
                        reported,
                    }),
                    None,
                ) => {
                    if !reported {
                        self.error(
                            &span,
                            None,
                            format!("</{name}> without matching <{name}> section"),
                        );
                    }
                }
            }
        }
        End::Eof
    }

    /// A `<Name args>` line and its body. Returns `None` when the section closed properly.
    fn section(
        &mut self,
        cur: &mut Cursor,
        text: &str,
        span: Span,
        active: bool,
        out: &mut Vec<Directive>,
    ) -> Option<End> {
        let header = &text[1..];
        let name_end = header
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(header.len());
        let name = header[..name_end].trim_end_matches('>').to_owned();
        if name.is_empty() {
            self.error(&span, None, "section without a name");
            return None;
        }
        let header = match header.strip_suffix('>') {
            Some(h) => h,
            None => {
                self.error(
                    &span,
                    Some(&name),
                    format!("<{name}> directive missing closing '>'"),
                );
                header
            }
        };
        let args = match lex::split_words(header.get(name_end..).unwrap_or("")) {
            Ok(args) => args,
            Err(q) => {
                self.error(&span, Some(&name), format!("unterminated {} quote", q.0));
                Vec::new()
            }
        };

        if self.depth >= MAX_SECTION_DEPTH {
            self.error(
                &span,
                Some(&name),
                format!("sections nested deeper than {MAX_SECTION_DEPTH}"),
            );
            let end = skip_body(cur);
            return self.closed(&name, &span, end);
        }
        self.depth += 1;
        let mut children = Vec::new();
        let end = match Conditional::of(&name) {
            Some(kind) => {
                let holds = active && self.condition(kind, &name, &args, &span);
                // A true conditional's body joins the enclosing block.
                let target = if holds { &mut *out } else { &mut children };
                self.block(cur, Some(&name), holds, target)
            }
            None => {
                let end = self.block(cur, Some(&name), active, &mut children);
                if active {
                    out.push(Directive {
                        name: name.clone(),
                        args,
                        span: span.clone(),
                        children: Some(children),
                    });
                }
                end
            }
        };
        self.depth -= 1;
        self.closed(&name, &span, end)
    }

    /// How the body of section `name` (opened at `span`) ended: `None` when properly closed.
    fn closed(&mut self, name: &str, span: &Span, end: End) -> Option<End> {
        match end {
            End::Close { name: closer, .. } if closer.eq_ignore_ascii_case(name) => None,
            End::Close {
                name: closer,
                span: close_span,
                reported,
            } => {
                if !reported {
                    self.error(
                        &close_span,
                        None,
                        format!("Expected </{name}> but saw </{closer}>"),
                    );
                }
                Some(End::Close {
                    name: closer,
                    span: close_span,
                    reported: true,
                })
            }
            End::Eof => {
                self.error(span, Some(name), format!("<{name}> was not closed"));
                Some(End::Eof)
            }
        }
    }

    fn condition(&mut self, kind: Conditional, name: &str, args: &[String], span: &Span) -> bool {
        let [arg] = args else {
            self.error(span, Some(name), format!("<{name}> takes one argument"));
            return false;
        };
        let (negate, arg) = match arg.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, arg.as_str()),
        };
        if arg.is_empty() {
            self.error(span, Some(name), format!("<{name}> needs a name after '!'"));
            return false;
        }
        let holds = match kind {
            Conditional::Define => self.state.defines.iter().any(|d| d == arg),
            Conditional::Module => {
                let id = module_id(arg);
                self.host.builtin_module(&id) || self.state.modules.contains(&id)
            }
            Conditional::Directive => self.host.known_directive(arg),
            Conditional::Section => self.host.known_section(arg),
            Conditional::File => self.server_root.join(arg).exists(),
        };
        holds != negate
    }

    /// `None` when the expanded line would exceed the line limit (reported here).
    fn expand(&mut self, text: &str, span: &Span) -> Option<String> {
        let mut undefined = Vec::new();
        let vars = &self.state.vars;
        let host = self.host;
        let expanded = lex::expand_vars(
            text,
            |name| vars.get(name).cloned().or_else(|| host.env_var(name)),
            &mut undefined,
        );
        for name in undefined {
            self.warning(
                span,
                None,
                format!("config variable ${{{name}}} is not defined"),
            );
        }
        if expanded.is_err() {
            let max = lex::MAX_LINE_LEN;
            self.error(
                span,
                None,
                format!("line longer than {max} bytes after variable expansion"),
            );
        }
        expanded.ok()
    }

    /// An ordinary directive line in an active block.
    fn directive(&mut self, text: &str, span: Span, out: &mut Vec<Directive>) {
        let mut words = match lex::split_words(text) {
            Ok(words) => words,
            Err(q) => {
                let name = text.split_ascii_whitespace().next();
                self.error(&span, name, format!("unterminated {} quote", q.0));
                return;
            }
        };
        // A line that variables expanded to blanks has no first word: httpd skips it.
        if words.is_empty() {
            return;
        }
        let name = words.remove(0);
        let args = words;
        let read_time = [
            "Define",
            "UnDefine",
            "Include",
            "IncludeOptional",
            "ServerRoot",
            "LoadModule",
        ];
        if self.htaccess && read_time.iter().any(|d| d.eq_ignore_ascii_case(&name)) {
            self.error(&span, Some(&name), "not allowed here");
            return;
        }
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "define" => match args.as_slice() {
                [n, ..] if n.contains(':') => {
                    self.error(&span, Some(&name), "Variable name must not contain ':'")
                }
                [n] => self.define(n),
                [n, v] => {
                    self.define(n);
                    self.state.vars.insert(n.clone(), v.clone());
                }
                _ => self.error(&span, Some(&name), "Define takes one or two arguments"),
            },
            "undefine" => match args.as_slice() {
                [n] => {
                    self.state.defines.retain(|d| d != n);
                    self.state.vars.remove(n);
                }
                _ => self.error(&span, Some(&name), "UnDefine takes one argument"),
            },
            "include" | "includeoptional" if self.forbid_includes => self.error(
                &span,
                Some(&name),
                format!("{name} is not allowed in this configuration"),
            ),
            "include" | "includeoptional" => match args.as_slice() {
                [path] => self.include(path, lower == "includeoptional", &name, &span, out),
                _ => self.error(&span, Some(&name), format!("{name} takes one argument")),
            },
            _ => {
                if lower == "serverroot" {
                    self.server_root_directive(&args, &name, &span);
                } else if lower == "loadmodule" {
                    self.load_module(&args, &name, &span);
                }
                out.push(Directive {
                    name,
                    args,
                    span,
                    children: None,
                });
            }
        }
    }

    fn server_root_directive(&mut self, args: &[String], name: &str, span: &Span) {
        let [root] = args else {
            self.error(span, Some(name), "ServerRoot takes one argument");
            return;
        };
        let root = self.server_root.join(root);
        if root.is_dir() {
            self.server_root = root;
        } else {
            self.error(
                span,
                Some(name),
                format!("ServerRoot must be a valid directory: {}", root.display()),
            );
        }
    }

    fn load_module(&mut self, args: &[String], name: &str, span: &Span) {
        let [module, path] = args else {
            self.error(span, Some(name), "LoadModule takes two arguments, a module name and the name of a shared object file to load it from");
            return;
        };
        let id = module_id(module);
        if self.host.builtin_module(&id) || self.state.modules.contains(&id) {
            return;
        }
        match self.host.load_module(&id, path) {
            ModuleLoad::Provided => self.state.modules.push(id),
            ModuleLoad::Skipped(why) => self.warning(span, Some(name), why),
        }
    }

    fn include(
        &mut self,
        path: &str,
        optional: bool,
        name: &str,
        span: &Span,
        out: &mut Vec<Directive>,
    ) {
        let full = self.server_root.join(path);
        let wild = full
            .components()
            .any(|c| fnmatch::has_wildcard(&c.as_os_str().to_string_lossy()));
        if !wild {
            self.include_path(&full, span, name, out);
            return;
        }
        let found = fnmatch::expand(&full).unwrap_or_default();
        if found.is_empty() && !optional {
            self.error(
                span,
                Some(name),
                format!("No matches for the wildcard '{}', failing", full.display()),
            );
        }
        for path in found {
            self.include_path(&path, span, name, out);
        }
    }

    /// A file, or every file under a directory (sorted, recursively), as httpd does.
    fn include_path(&mut self, path: &Path, span: &Span, name: &str, out: &mut Vec<Directive>) {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
                Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
                Err(e) => {
                    self.error(
                        span,
                        Some(name),
                        format!("Could not open config directory {}: {e}", path.display()),
                    );
                    return;
                }
            };
            entries.sort();
            for entry in entries {
                self.include_path(&entry, span, name, out);
            }
        } else {
            self.include_file(path, span, Some(name), out);
        }
    }

    fn include_file(
        &mut self,
        path: &Path,
        span: &Span,
        name: Option<&str>,
        out: &mut Vec<Directive>,
    ) {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if self.include_stack.contains(&canonical) {
            let chain: Vec<String> = self
                .include_stack
                .iter()
                .chain(std::iter::once(&canonical))
                .map(|p| p.display().to_string())
                .collect();
            self.error(span, name, format!("Include loop: {}", chain.join(" -> ")));
            return;
        }
        if self.include_stack.len() >= MAX_INCLUDE_DEPTH {
            self.error(
                span,
                name,
                format!("Exceeded the maximum include nesting level of {MAX_INCLUDE_DEPTH}"),
            );
            return;
        }
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.error(
                    span,
                    name,
                    format!("Could not open configuration file {}: {e}", path.display()),
                );
                return;
            }
        };
        self.include_stack.push(canonical);
        self.read_bytes(&bytes, path.into(), out);
        self.include_stack.pop();
    }
}
