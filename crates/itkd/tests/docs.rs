//! docs/directives.md must say what the directive table says: one row per directive with
//! its contexts, `.htaccess` class and support, exactly as `itkd -L` prints them.

use itkd_config::directives::{Support, DIRECTIVES};

#[test]
fn every_directive_has_its_row_in_docs() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/directives.md");
    let doc = std::fs::read_to_string(path).expect("docs/directives.md exists");
    let mut missing = Vec::new();
    for spec in DIRECTIVES {
        let support = match spec.support {
            Support::Model => "model".to_owned(),
            Support::NoEffect(why) => format!("no effect: {why}"),
        };
        let row = format!(
            "| `{}` | {} | {} | {support} |",
            spec.name,
            spec.contexts,
            spec.htaccess.map_or("-", |o| o.name())
        );
        if !doc.lines().any(|l| l == row) {
            missing.push(row);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/directives.md lacks or differs on these rows:\n{}",
        missing.join("\n")
    );
}
