//! mod_ssl's `SSLProtocol` and `SSLCipherSuite` arguments, mapped onto what rustls offers:
//! TLS 1.2 and 1.3, and nine cipher suites, all of OpenSSL's `HIGH` class.

use crate::model::TlsVersions;

/// The cipher suites rustls (ring provider) implements, by IANA name, each with the
/// OpenSSL name `SSLCipherSuite` lists use for it.
pub const SUITES: &[(&str, &str)] = &[
    ("TLS13_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"),
    ("TLS13_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"),
    (
        "TLS13_CHACHA20_POLY1305_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ),
];

/// `SSLProtocol`'s arguments, as mod_ssl reads them: `+X` adds, `-X` removes, a bare
/// name replaces what was there; `all` is every version. Returns the TLS versions left
/// and warnings for versions itkd does not have (SSLv3, TLSv1, TLSv1.1).
pub fn protocols(args: &[String]) -> Result<(TlsVersions, Vec<String>), String> {
    let mut on = TlsVersions {
        tls12: false,
        tls13: false,
    };
    let mut warnings = Vec::new();
    for arg in args {
        let (action, name) = match arg.as_bytes().first() {
            Some(b'+') => ('+', &arg[1..]),
            Some(b'-') => ('-', &arg[1..]),
            _ => ('=', arg.as_str()),
        };
        let (tls12, tls13) = match name.to_ascii_lowercase().as_str() {
            "all" => (true, true),
            "tlsv1.2" => (true, false),
            "tlsv1.3" => (false, true),
            "sslv3" | "tlsv1" | "tlsv1.1" => {
                if action != '-' {
                    warnings.push(format!(
                        "{name} is not supported (rustls has TLSv1.2 and TLSv1.3 only): ignored"
                    ));
                }
                (false, false)
            }
            _ => return Err(format!("Illegal protocol '{name}'")),
        };
        match action {
            '+' => {
                on.tls12 |= tls12;
                on.tls13 |= tls13;
            }
            '-' => {
                on.tls12 &= !tls12;
                on.tls13 &= !tls13;
            }
            _ => on = TlsVersions { tls12, tls13 },
        }
    }
    if !on.tls12 && !on.tls13 {
        return Err("SSLProtocol leaves neither TLSv1.2 nor TLSv1.3 on".to_owned());
    }
    Ok((on, warnings))
}

/// `SSLCipherSuite`'s list mapped onto [`SUITES`]: named suites (OpenSSL or IANA names)
/// in the order given; OpenSSL's class keywords (`HIGH`, `ECDHE`, `!aNULL`, …) select
/// every suite rustls has (all of them are `HIGH`, authenticated, with forward secrecy).
/// A leading `TLSv1.3` / `SSL` protocol argument (httpd 2.4.36's form) is accepted.
/// Returns the IANA names, in order, and warnings for names rustls does not have.
pub fn cipher_suites(spec: &str) -> Result<(Vec<&'static str>, Vec<String>), String> {
    let mut named = Vec::new();
    let mut warnings = Vec::new();
    let mut keyword = false;
    let mut words: Vec<&str> = spec.split_whitespace().collect();
    if words.len() > 1 && matches!(words[0].to_ascii_lowercase().as_str(), "tlsv1.3" | "ssl") {
        words.remove(0);
    }
    for token in words.iter().flat_map(|w| w.split([':', ','])) {
        let token = token.trim();
        if token.is_empty() {
            continue;
        }
        let (excluded, name) = match token.as_bytes()[0] {
            b'!' | b'-' => (true, &token[1..]),
            b'+' => (false, &token[1..]),
            _ => (false, token),
        };
        match SUITES.iter().find(|(iana, openssl)| {
            name.eq_ignore_ascii_case(openssl)
                || name.eq_ignore_ascii_case(iana)
                || name.eq_ignore_ascii_case(&iana.replace("TLS13_", "TLS_"))
        }) {
            Some((iana, _)) if excluded => named.retain(|n| n != iana),
            Some((iana, _)) => {
                if !named.contains(iana) {
                    named.push(*iana);
                }
            }
            None if name.contains('-') || name.starts_with("TLS_") => {
                if !excluded {
                    warnings.push(format!("cipher {name} is not offered by rustls: ignored"));
                }
            }
            None => keyword |= !excluded,
        }
    }
    if named.is_empty() {
        if keyword {
            return Ok((SUITES.iter().map(|(iana, _)| *iana).collect(), warnings));
        }
        return Err(format!(
            "SSLCipherSuite '{spec}' selects no cipher suite rustls offers"
        ));
    }
    Ok((named, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn protocol_forms() {
        let on = |s| protocols(&args(s)).map(|(v, _)| (v.tls12, v.tls13));
        assert_eq!(on("all -SSLv3"), Ok((true, true)));
        assert_eq!(on("all -TLSv1 -TLSv1.1"), Ok((true, true)));
        assert_eq!(on("-all +TLSv1.3"), Ok((false, true)));
        assert_eq!(on("TLSv1.2"), Ok((true, false)));
        assert_eq!(on("all -TLSv1.3"), Ok((true, false)));
        assert!(on("-all").is_err());
        assert!(on("TLSv9")
            .unwrap_err()
            .contains("Illegal protocol 'TLSv9'"));
        let (_, warnings) = protocols(&args("+TLSv1.1 +TLSv1.2")).unwrap();
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn cipher_lists() {
        // Debian's ssl.conf: every suite.
        assert_eq!(cipher_suites("HIGH:!aNULL").unwrap().0.len(), SUITES.len());
        let (named, _) =
            cipher_suites("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384").unwrap();
        assert_eq!(
            named,
            [
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
            ]
        );
        let (named, warnings) =
            cipher_suites("TLSv1.3 TLS_AES_128_GCM_SHA256:DES-CBC3-SHA").unwrap();
        assert_eq!(named, ["TLS13_AES_128_GCM_SHA256"]);
        assert_eq!(warnings.len(), 1);
        assert!(cipher_suites("DES-CBC3-SHA:RC4-SHA").is_err());
        assert!(cipher_suites("!HIGH").is_err());
    }
}
