//! `LogLevel`: the levels of httpd's error log, and the global and per-module levels a
//! server logs at (`LogLevel warn cgi:info`), parsed once at load.

/// `LogLevel`'s levels, as the error log names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Emerg,
    Alert,
    Crit,
    Error,
    Warn,
    Notice,
    Info,
    Debug,
    /// `trace1` … `trace8`.
    Trace(u8),
}

impl Level {
    /// A `LogLevel` keyword (`info`, `trace3`, any case), without a `module:` prefix.
    pub fn parse(word: &str) -> Option<Level> {
        let word = word.to_ascii_lowercase();
        Some(match word.as_str() {
            "emerg" => Level::Emerg,
            "alert" => Level::Alert,
            "crit" => Level::Crit,
            "error" => Level::Error,
            "warn" => Level::Warn,
            "notice" => Level::Notice,
            "info" => Level::Info,
            "debug" => Level::Debug,
            _ => match word.strip_prefix("trace")?.parse() {
                Ok(n @ 1..=8) => Level::Trace(n),
                _ => return None,
            },
        })
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Level::Emerg => f.write_str("emerg"),
            Level::Alert => f.write_str("alert"),
            Level::Crit => f.write_str("crit"),
            Level::Error => f.write_str("error"),
            Level::Warn => f.write_str("warn"),
            Level::Notice => f.write_str("notice"),
            Level::Info => f.write_str("info"),
            Level::Debug => f.write_str("debug"),
            Level::Trace(n) => write!(f, "trace{n}"),
        }
    }
}

/// `LogLevel [module:]level ...`: the global level (httpd's default `warn`) and
/// per-module ones (`LogLevel warn cgi:info ssl:debug`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogLevel {
    global: Level,
    modules: Vec<(String, Level)>,
}

impl LogLevel {
    /// Reads a `LogLevel` value (`[module:]level ...`); what does not parse keeps the
    /// default (the loader has reported it).
    pub fn parse(text: &str) -> LogLevel {
        let mut levels = LogLevel {
            global: Level::Warn,
            modules: Vec::new(),
        };
        for arg in text.split_whitespace() {
            match arg.split_once(':') {
                Some((module, level)) => {
                    if let Some(level) = Level::parse(level) {
                        levels.modules.push((module_name(module), level));
                    }
                }
                None => {
                    if let Some(level) = Level::parse(arg) {
                        levels.global = level;
                    }
                }
            }
        }
        levels
    }

    /// Whether a line of `module` at `level` is logged.
    pub fn allows(&self, module: &str, level: Level) -> bool {
        let module = module_name(module);
        let wanted = self
            .modules
            .iter()
            .rev()
            .find(|(m, _)| *m == module)
            .map_or(self.global, |(_, l)| *l);
        level <= wanted
    }
}

/// httpd accepts a module as `cgi`, `mod_cgi`, `mod_cgi.c` or `cgi_module`.
fn module_name(module: &str) -> String {
    let m = module.to_ascii_lowercase();
    let m = m.strip_suffix(".c").unwrap_or(&m);
    let m = m.strip_prefix("mod_").unwrap_or(m);
    m.strip_suffix("_module").unwrap_or(m).to_owned()
}

impl Default for LogLevel {
    /// httpd's default: `warn` for every module.
    fn default() -> LogLevel {
        LogLevel::parse("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_global_and_per_module() {
        let cases: &[(&str, &str, Level, bool)] = &[
            ("warn", "core", Level::Warn, true),
            ("warn", "core", Level::Info, false),
            ("warn", "core", Level::Error, true),
            ("info", "core", Level::Info, true),
            ("info", "core", Level::Debug, false),
            ("warn cgi:info", "cgi", Level::Info, true),
            ("warn mod_cgi.c:info", "cgi", Level::Info, true),
            ("warn cgi_module:info", "cgi", Level::Info, true),
            ("warn cgi:info", "core", Level::Info, false),
            ("debug ssl:error", "ssl", Level::Warn, false),
            ("debug ssl:error", "core", Level::Debug, true),
            ("", "core", Level::Warn, true),
            ("", "core", Level::Notice, false),
            ("trace2", "core", Level::Trace(2), true),
            ("trace2", "core", Level::Trace(3), false),
        ];
        for (text, module, level, logged) in cases {
            assert_eq!(
                LogLevel::parse(text).allows(module, *level),
                *logged,
                "LogLevel {text}: {module} at {level:?}"
            );
        }
    }
}
