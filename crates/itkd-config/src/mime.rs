//! `TypesConfig`: the `mime.types` file mapping extensions to media types.

use std::collections::HashMap;

/// Extension (lower case, no dot) → media type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MimeTypes {
    by_ext: HashMap<String, String>,
}

impl MimeTypes {
    /// Parses `mime.types` text: `type ext ext …` per line, `#` comments. Later lines win,
    /// as in mod_mime.
    pub fn parse(text: &str) -> MimeTypes {
        let mut by_ext = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let Some(media_type) = words.next() else {
                continue;
            };
            for ext in words {
                by_ext.insert(ext.to_ascii_lowercase(), media_type.to_ascii_lowercase());
            }
        }
        MimeTypes { by_ext }
    }

    pub fn lookup(&self, ext: &str) -> Option<&str> {
        self.by_ext
            .get(&ext.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.by_ext.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ext.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_debian_style_lines() {
        let m = MimeTypes::parse(
            "# c\ntext/html\t\thtml htm\nimage/png png\n\napplication/x-empty\nTEXT/CSS CSS\n",
        );
        assert_eq!(m.lookup("HTM"), Some("text/html"));
        assert_eq!(m.lookup("png"), Some("image/png"));
        assert_eq!(m.lookup("css"), Some("text/css"));
        assert_eq!(m.lookup("c"), None);
        assert_eq!(m.len(), 4);
    }
}
