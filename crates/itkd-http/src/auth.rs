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
    read_htpasswd(contents, user, password).verdict == Verdict::Granted
}

/// What an htpasswd file says about one user's password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Granted,
    /// The user has an entry, and the password does not match it (httpd's AH01617).
    Mismatch,
    /// No well-formed entry for the user (httpd's AH01618).
    NoSuchUser,
}

/// A line of an htpasswd file that is no `user:hash` entry itkd can check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// 1-based.
    pub line: usize,
    pub reason: &'static str,
}

/// [`Verdict`] for `user`/`password`, and every malformed line of the file. A malformed
/// line is ignored (httpd compares a line without `:` as a user name and fails a hash
/// it does not know as a mismatch, silently); itkd reports it so the owner can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtpasswdCheck {
    pub verdict: Verdict,
    pub malformed: Vec<Malformed>,
}

/// Reads an htpasswd file's text: the first well-formed entry for `user` decides.
pub fn read_htpasswd(contents: &str, user: &str, password: &str) -> HtpasswdCheck {
    let mut verdict = Verdict::NoSuchUser;
    let mut malformed = Vec::new();
    for (n, line) in contents.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let bad = |reason| Malformed {
            line: n + 1,
            reason,
        };
        let Some((name, hash)) = line.split_once(':') else {
            malformed.push(bad("no ':' between user and hash"));
            continue;
        };
        let hash = hash.trim();
        if name.is_empty() {
            malformed.push(bad("empty user name"));
            continue;
        }
        if !known_hash(hash) {
            malformed.push(bad("not a hash htpasswd makes"));
            continue;
        }
        if verdict == Verdict::NoSuchUser && name == user {
            verdict = if verify(password, hash) {
                Verdict::Granted
            } else {
                Verdict::Mismatch
            };
        }
    }
    HtpasswdCheck { verdict, malformed }
}

/// Whether `hash` has the shape of one of the hashes htpasswd writes (bcrypt, apr1,
/// SHA-1, crypt's DES and `$1$`/`$5$`/`$6$`).
fn known_hash(hash: &str) -> bool {
    const CRYPT: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let crypt_chars = |s: &str| !s.is_empty() && s.bytes().all(|b| CRYPT.contains(&b));
    if let Some(rest) = hash.strip_prefix("$apr1$") {
        return rest.split_once('$').is_some_and(|(salt, digest)| {
            salt.len() <= 8 && digest.len() == 22 && crypt_chars(digest)
        });
    }
    if let Some(encoded) = hash.strip_prefix("{SHA}") {
        return encoded.len() == 28
            && base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .is_ok_and(|d| d.len() == 20);
    }
    if ["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p)) {
        return hash.len() == 60;
    }
    if ["$1$", "$5$", "$6$"].iter().any(|p| hash.starts_with(p)) {
        return hash.split('$').count() >= 4;
    }
    hash.len() == 13 && crypt_chars(hash)
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
    fn malformed_lines_are_reported_and_skipped() {
        let text = format!(
            "# comment\n\nnocolon\n:$apr1$W0lInCec$yBFWQj4tOG2bRurNJL82x.\n\
             alice:plaintext\nalice:$2y$05$short\n{HTPASSWD}"
        );
        let check = read_htpasswd(&text, "alice", "secret");
        assert_eq!(check.verdict, Verdict::Granted);
        let lines: Vec<usize> = check.malformed.iter().map(|m| m.line).collect();
        assert_eq!(lines, [3, 4, 5, 6]);
        assert_eq!(
            read_htpasswd(&text, "alice", "nope").verdict,
            Verdict::Mismatch
        );
        assert_eq!(
            read_htpasswd(&text, "nocolon", "").verdict,
            Verdict::NoSuchUser
        );
        // Every hash kind Debian's htpasswd makes is well-formed.
        assert!(read_htpasswd(HTPASSWD, "x", "y").malformed.is_empty());
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
