//! Wildcards in `Include` paths: `*`, `?` and `[...]` as `apr_fnmatch` with
//! `APR_FNM_PERIOD` (a leading `.` must be matched literally), one path component at a time.

use std::path::{Component, Path, PathBuf};

/// True when a path component holds a wildcard character.
pub fn has_wildcard(component: &str) -> bool {
    component.contains(['*', '?', '['])
}

/// Matches `name` against `pattern` (one component, no `/`).
pub fn matches(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    match_from(pattern.as_bytes(), name.as_bytes())
}

/// `apr_fnmatch(pattern, text, APR_FNM_PATHNAME)`, as httpd matches the wildcard forms
/// of `<Files>`, `<Directory>` and `<Location>`: case-sensitive, `*`, `?` and `[...]`
/// never match a `/`, and a leading `.` needs no literal match (no APR_FNM_PERIOD).
pub fn matches_pathname(pattern: &str, text: &str) -> bool {
    let (mut p, mut t) = (pattern.split('/'), text.split('/'));
    loop {
        match (p.next(), t.next()) {
            (None, None) => return true,
            (Some(pc), Some(tc)) if match_from(pc.as_bytes(), tc.as_bytes()) => {}
            _ => return false,
        }
    }
}

fn match_from(p: &[u8], n: &[u8]) -> bool {
    // Iterative with one backtrack point for the last `*`: linear in practice, never
    // exponential on hostile patterns.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                b'[' => {
                    if let Some((hit, next)) = class(&p[pi..], n[ni]) {
                        if hit {
                            pi += next;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == b'[' {
                        // An unclosed `[` is a literal.
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// `[...]` at the start of `p`: whether `c` is in it and the class's length.
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            if p[i] <= c && c <= p[i + 2] {
                hit = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                hit = true;
            }
            i += 1;
        }
    }
    None
}

/// Expands a path whose components may hold wildcards into the existing paths it names,
/// sorted within each directory (httpd sorts too). A path without wildcards is returned
/// as is, whether or not it exists.
pub fn expand(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = vec![PathBuf::new()];
    for component in path.components() {
        let pattern = match component {
            Component::Normal(part) => part.to_string_lossy(),
            other => {
                for f in &mut found {
                    f.push(other);
                }
                continue;
            }
        };
        if !has_wildcard(&pattern) {
            for f in &mut found {
                f.push(&*pattern);
            }
            continue;
        }
        let mut next = Vec::new();
        for dir in &found {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| matches(&pattern, name))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        found = next;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden cases answered by Debian's apache2 (crates/itkd/tests/sections.rs runs them
    /// against both servers).
    #[test]
    fn pathname_matching_as_httpds_sections() {
        let cases = [
            ("*.PHP", "b.PHP", true),
            ("*.PHP", "a.php", false),
            ("*.ph[pt]", "a.php", true),
            ("*.ph[pt]", "c.pht", true),
            ("*.ph[pt]", "d.phx", false),
            ("?.txt", "x.txt", true),
            ("?.txt", "xy.txt", false),
            ("*", ".hidden", true),
            ("/srv/*/www", "/srv/one/www", true),
            ("/srv/*/www", "/srv/.dot/www", true),
            ("/srv/*/www", "/srv/one/two/www", false),
            ("/loc*", "/loc", true),
            ("/loc*", "/locx", true),
            ("/loc*", "/loc/f.txt", false),
            ("/d/*.txt", "/d/x.txt", true),
            ("/d/*.txt", "/d/e/x.txt", false),
            ("/s?b", "/sub", true),
            ("/s?b", "/s/b", false),
        ];
        for (pattern, text, hit) in cases {
            assert_eq!(matches_pathname(pattern, text), hit, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn patterns() {
        let table = [
            ("*.conf", "a.conf", true),
            ("*.conf", "a.conf~", false),
            ("*.conf", ".hidden.conf", false),
            (".*", ".hidden", true),
            ("?.load", "a.load", true),
            ("?.load", "ab.load", false),
            ("[ab]*", "beta", true),
            ("[!ab]*", "beta", false),
            ("[a-c]x", "bx", true),
            ("*a*b*c", "xxaxxbxxc", true),
            ("*a*b*c", "xxaxxbxx", false),
            ("[x", "[x", true),
            ("*", "", true),
        ];
        for (p, n, want) in table {
            assert_eq!(matches(p, n), want, "{p} vs {n}");
        }
    }

    #[test]
    fn hostile_pattern_is_fast() {
        let name = "a".repeat(10_000);
        let pattern = "*a".repeat(50) + "b";
        assert!(!matches(&pattern, &name));
    }
}
