//! Shared by the integration tests: run a probe binary as a fresh process and read its
//! `Key:\tvalue` lines. Tests that need root skip when not root, unless
//! ITKD_REQUIRE_ROOT is set (scripts/test, CI), where they fail instead.

#![allow(dead_code)] // each test file uses a part

use std::process::{Command, Output};

pub fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("ITKD_REQUIRE_ROOT").is_none(),
        "these tests need root (ITKD_REQUIRE_ROOT is set)"
    );
    eprintln!("skipped: needs root");
    false
}

pub fn run(probe: &str, args: &[&str]) -> Output {
    Command::new(probe).args(args).output().expect("probe runs")
}

/// Runs the probe, requires success, returns its fields.
pub fn probe(probe: &str, args: &[&str]) -> Fields {
    let out = run(probe, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{probe} {args:?}: {:?}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Fields::parse(&stdout)
}

pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(stdout: &str) -> Fields {
        Fields(
            stdout
                .lines()
                .filter_map(|l| {
                    l.split_once(":\t").map(|(k, v)| {
                        (
                            k.to_owned(),
                            v.split_whitespace().collect::<Vec<_>>().join(" "),
                        )
                    })
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("<missing>", |(_, v)| v.as_str())
    }
}
