//! `RLimitCPU`, `RLimitMEM`, `RLimitNPROC` (httpd core, `ap_unixd_set_rlimit`): the soft
//! and hard resource limits of the CGI scripts started for a directory.
//!
//! httpd reads a line relative to the limits of the process that parses it (root, under
//! mpm-itk, for the configuration and for `.htaccess` alike): `max` as the soft limit is
//! that process's hard limit, `0` or a missing hard limit leaves its value unchanged. This
//! crate knows no process, so a line is kept as [`Bound`]s and the binary resolves them
//! against its own limits (inherited from the master, so the same ones) with
//! [`RLimit::resolve`] when it starts a script.
//!
//! Deliberately stricter than httpd, which reads each word with `atol` and so takes
//! `10M` for 10, `unlimited` for 0 (unchanged) and `-1` for unlimited: anything but a
//! non-negative integer or `max` is a configuration error here, as is a soft limit above
//! the hard one (every script would then fail to start).

/// One limit of an `RLimit*` line, relative to the server's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `0`, or `max` / nothing as the hard limit: the server's own value stays.
    Unchanged,
    /// `max` as the soft limit: the server's hard limit.
    ServerHard,
    /// A number of seconds (`RLimitCPU`), bytes (`RLimitMEM`) or processes (`RLimitNPROC`).
    Value(u64),
}

/// One `RLimit* soft [hard]` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RLimit {
    pub soft: Bound,
    pub hard: Bound,
}

impl RLimit {
    /// The arguments of `name` (for messages): `soft|max [hard|max]`.
    pub fn parse(name: &str, args: &[String]) -> Result<RLimit, String> {
        let (soft, hard) = match args {
            [soft] => (soft, None),
            [soft, hard] => (soft, Some(hard)),
            _ => return Err(format!("{name} takes 1-2 arguments")),
        };
        let number = |word: &str| {
            word.parse::<u64>().map_err(|_| {
                format!("{name}: '{word}' is neither a non-negative integer nor 'max'")
            })
        };
        let soft = if soft.eq_ignore_ascii_case("max") {
            Bound::ServerHard
        } else {
            match number(soft)? {
                0 => Bound::Unchanged,
                n => Bound::Value(n),
            }
        };
        let hard = match hard {
            // httpd: atol("max") is 0, which leaves the hard limit as it is.
            None => Bound::Unchanged,
            Some(w) if w.eq_ignore_ascii_case("max") => Bound::Unchanged,
            Some(w) => match number(w)? {
                0 => Bound::Unchanged,
                n => Bound::Value(n),
            },
        };
        if let (Bound::Value(s), Bound::Value(h)) = (soft, hard) {
            if s > h {
                return Err(format!(
                    "{name}: the soft limit {s} is above the hard limit {h}"
                ));
            }
        }
        Ok(RLimit { soft, hard })
    }

    /// `(soft, hard)` for a script, from the server's own `(soft, hard)`.
    pub fn resolve(self, soft: u64, hard: u64) -> (u64, u64) {
        let pick = |bound, unchanged| match bound {
            Bound::Unchanged => unchanged,
            Bound::ServerHard => hard,
            Bound::Value(n) => n,
        };
        (pick(self.soft, soft), pick(self.hard, hard))
    }
}

/// The three limits of a directory; `None`: not set here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptLimits {
    /// `RLimitCPU`, seconds.
    pub cpu: Option<RLimit>,
    /// `RLimitMEM`, bytes of address space.
    pub mem: Option<RLimit>,
    /// `RLimitNPROC`, processes of the tenant's uid.
    pub nproc: Option<RLimit>,
}

impl ScriptLimits {
    /// httpd's `merge_core_dir_configs`: each limit the inner section sets replaces the
    /// outer one whole (soft and hard together).
    pub fn merge(&self, inner: &ScriptLimits) -> ScriptLimits {
        ScriptLimits {
            cpu: inner.cpu.or(self.cpu),
            mem: inner.mem.or(self.mem),
            nproc: inner.nproc.or(self.nproc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_as_httpd_reads_them() {
        use Bound::*;
        for (args, want) in [
            (&["10"][..], Ok((Value(10), Unchanged))),
            (&["10", "20"], Ok((Value(10), Value(20)))),
            (&["max"], Ok((ServerHard, Unchanged))),
            (&["MAX", "max"], Ok((ServerHard, Unchanged))),
            (&["max", "30"], Ok((ServerHard, Value(30)))),
            (&["0"], Ok((Unchanged, Unchanged))),
            (&["0", "5"], Ok((Unchanged, Value(5)))),
            (&["5", "0"], Ok((Value(5), Unchanged))),
            (&["20", "10"], Err("above")),
            (&["10M"], Err("neither")),
            (&["-1"], Err("neither")),
            (&["unlimited"], Err("neither")),
            (&["1", "x"], Err("neither")),
            (&[], Err("1-2 arguments")),
            (&["1", "2", "3"], Err("1-2 arguments")),
        ] {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            match (RLimit::parse("RLimitCPU", &args), want) {
                (Ok(got), Ok((soft, hard))) => {
                    assert_eq!(got, RLimit { soft, hard }, "{args:?}")
                }
                (Err(got), Err(part)) => assert!(got.contains(part), "{args:?}: {got}"),
                (got, want) => panic!("{args:?}: {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn bounds_resolve_against_the_servers_limits() {
        let inf = u64::MAX;
        let line = |soft, hard| RLimit { soft, hard };
        use Bound::*;
        for (limit, server, want) in [
            (line(Value(10), Unchanged), (inf, inf), (10, inf)),
            (line(Value(10), Value(20)), (inf, inf), (10, 20)),
            (line(ServerHard, Unchanged), (100, 200), (200, 200)),
            (line(ServerHard, Value(30)), (100, 200), (200, 30)),
            (line(Unchanged, Value(150)), (100, 200), (100, 150)),
            (line(Unchanged, Unchanged), (100, 200), (100, 200)),
        ] {
            assert_eq!(limit.resolve(server.0, server.1), want, "{limit:?}");
        }
    }

    #[test]
    fn an_inner_limit_replaces_the_outer_one_whole() {
        let l = |n| {
            Some(RLimit {
                soft: Bound::Value(n),
                hard: Bound::Value(n),
            })
        };
        let outer = ScriptLimits {
            cpu: l(1),
            mem: l(2),
            nproc: None,
        };
        let inner = ScriptLimits {
            cpu: l(10),
            mem: None,
            nproc: l(30),
        };
        assert_eq!(
            outer.merge(&inner),
            ScriptLimits {
                cpu: l(10),
                mem: l(2),
                nproc: l(30)
            }
        );
    }
}
