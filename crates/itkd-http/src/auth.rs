//! HTTP Basic authentication against htpasswd files (mod_auth_basic + mod_authn_file) and
//! group files (mod_authz_groupfile). The files are read by the worker as the tenant.
//!
//! Hashes, as Debian's `htpasswd` writes them: bcrypt (`$2y$`), apr1 MD5 (`$apr1$`),
//! SHA-1 (`{SHA}`), and crypt(3) (DES, and `$1$`/`$5$`/`$6$` when present).

use base64::Engine;
use md5::{Digest, Md5};
use sha1::Sha1;

/// `Authorization: Basic …` → (user, password).
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// Whether `user`:`password` matches an entry of an htpasswd file's text.
pub fn check_htpasswd(contents: &str, user: &str, password: &str) -> bool {
    contents
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .find(|(u, _)| *u == user)
        .is_some_and(|(_, hash)| verify(password, hash.trim()))
}

/// One htpasswd hash.
pub fn verify(password: &str, hash: &str) -> bool {
    if let Some(rest) = hash.strip_prefix("$apr1$") {
        let salt = rest.split('$').next().unwrap_or("");
        return constant_time_eq(apr1(password, salt).as_bytes(), hash.as_bytes());
    }
    if let Some(encoded) = hash.strip_prefix("{SHA}") {
        let digest = Sha1::digest(password.as_bytes());
        let mine = base64::engine::general_purpose::STANDARD.encode(digest);
        return constant_time_eq(mine.as_bytes(), encoded.as_bytes());
    }
    pwhash::unix::verify(password, hash)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// APR's MD5 crypt (`$apr1$`): the FreeBSD MD5-crypt algorithm with APR's magic.
pub fn apr1(password: &str, salt: &str) -> String {
    const MAGIC: &[u8] = b"$apr1$";
    let pw = password.as_bytes();
    let salt = &salt.as_bytes()[..salt.len().min(8)];
    let mut ctx = Md5::new();
    ctx.update(pw);
    ctx.update(MAGIC);
    ctx.update(salt);
    let alt = Md5::new()
        .chain_update(pw)
        .chain_update(salt)
        .chain_update(pw)
        .finalize();
    let mut left = pw.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alt[..n]);
        left -= n;
    }
    let mut i = pw.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..1]);
        }
        i >>= 1;
    }
    let mut digest = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(pw);
        } else {
            c.update(digest);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(pw);
        }
        if round & 1 == 1 {
            c.update(digest);
        } else {
            c.update(pw);
        }
        digest = c.finalize();
    }
    let f = digest;
    let mut out = String::from("$apr1$");
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        to64(
            &mut out,
            (u32::from(f[a]) << 16) | (u32::from(f[b]) << 8) | u32::from(f[c]),
            4,
        );
    }
    to64(&mut out, u32::from(f[11]), 2);
    out
}

fn to64(out: &mut String, mut v: u32, n: usize) {
    const ITOA64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for _ in 0..n {
        out.push(char::from(ITOA64[(v & 0x3f) as usize]));
        v >>= 6;
    }
}

/// The groups of `user` in an AuthGroupFile's text (`group: user user …`).
pub fn groups_of(contents: &str, user: &str) -> Vec<String> {
    contents
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .filter(|(_, members)| members.split_whitespace().any(|m| m == user))
        .map(|(g, _)| g.trim().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by Debian's `htpasswd -nb{m,B,s,d}` on this machine.
    const HTPASSWD: &str = "alice:$apr1$W0lInCec$yBFWQj4tOG2bRurNJL82x.\n\
bob:$2y$05$ImHYn37KVH7keP0d0K.7peYgUUrhoiweFJreWLCSkY8Vwct3pDvhW\n\
carol:{SHA}Z/q5KhbWJGlg/C2XbiLEJnMKKr8=\n\
dave:ojdMv4yWwNRwg\n";

    #[test]
    fn every_htpasswd_hash_kind() {
        for (user, good) in [
            ("alice", "secret"),
            ("bob", "pw2"),
            ("carol", "pw3"),
            ("dave", "pw4"),
        ] {
            assert!(check_htpasswd(HTPASSWD, user, good), "{user}");
            assert!(
                !check_htpasswd(HTPASSWD, user, "wrong"),
                "{user} wrong password"
            );
        }
        assert!(!check_htpasswd(HTPASSWD, "mallory", "secret"));
        assert_eq!(
            apr1("secret", "W0lInCec"),
            "$apr1$W0lInCec$yBFWQj4tOG2bRurNJL82x."
        );
    }

    #[test]
    fn basic_header_and_groups() {
        assert_eq!(
            basic_credentials("Basic YWxpY2U6c2VjcmV0"),
            Some(("alice".into(), "secret".into()))
        );
        assert_eq!(basic_credentials("Bearer x"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(
            groups_of("admins: alice bob\nstaff:carol\n", "alice"),
            ["admins"]
        );
    }
}
