//! HTTPS. The master reads every certificate and key (as root, at start and at graceful
//! restart) and makes the session ticket keys; the worker does the handshake, before the
//! switch, choosing the vhost's certificate and settings by SNI as httpd does.

use std::net::SocketAddr;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use itkd_config::model::{ServerConfig, SslSettings};
use itkd_sys::shared::SharedWords;
use ring::aead;
use ring::rand::{SecureRandom, SystemRandom};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ProducesTickets, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// What the handshake established, for routing checks, CGI and logs.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// The server (0 main, i + 1 vhost i) whose certificate the handshake used.
    pub server: usize,
    /// The SNI name, lower case.
    pub sni: Option<String>,
    /// `TLSv1.2` / `TLSv1.3`, as mod_ssl's SSL_PROTOCOL.
    pub protocol: &'static str,
    /// OpenSSL's name of the suite, as mod_ssl's SSL_CIPHER.
    pub cipher: &'static str,
}

impl TlsInfo {
    /// The request variables mod_ssl sets (`HTTPS`, `SSL_*`), for CGI and `%{…}x`.
    pub fn variables(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("HTTPS".to_owned(), "on".to_owned()),
            ("SSL_PROTOCOL".to_owned(), self.protocol.to_owned()),
            ("SSL_CIPHER".to_owned(), self.cipher.to_owned()),
        ];
        if let Some(sni) = &self.sni {
            vars.push(("SSL_TLS_SNI".to_owned(), sni.clone()));
        }
        vars
    }
}

/// Every TLS-enabled server's rustls configuration (certificate, key, versions, suites,
/// tickets), built once by the master; a worker only picks one.
#[derive(Debug, Default)]
pub struct Certificates {
    /// By server index (0 main, i + 1 vhost i); `None` without `SSLEngine on`.
    configs: Vec<Option<Arc<rustls::ServerConfig>>>,
}

fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

impl Certificates {
    /// Reads every `SSLEngine on` server's files. Errors name the file and line of the
    /// directive, as every configuration error does.
    pub fn load(
        config: &ServerConfig,
        tickets: &Arc<SharedTicketer>,
    ) -> Result<Certificates, Vec<String>> {
        let provider = provider();
        let mut errors = Vec::new();
        let mut configs = Vec::new();
        for index in 0..=config.vhosts.len() {
            let ssl = &config.server(index).ssl;
            if !ssl.engine {
                configs.push(None);
                continue;
            }
            match load_one(ssl, &provider) {
                Ok(key) => match server_config(ssl, Arc::new(key), tickets) {
                    Some(cfg) => configs.push(Some(cfg)),
                    // Not reachable with a valid SSLProtocol, but never a plain port.
                    None => {
                        errors.push("SSLEngine: rustls refused the TLS settings".to_owned());
                        configs.push(None);
                    }
                },
                Err(e) => {
                    errors.push(e);
                    configs.push(None);
                }
            }
        }
        if errors.is_empty() {
            Ok(Certificates { configs })
        } else {
            Err(errors)
        }
    }

    /// The server whose TLS settings a connection on `local` starts with: the address's
    /// default vhost, when it has `SSLEngine on`. `None`: a plain HTTP address.
    pub fn default_for(&self, config: &ServerConfig, local: SocketAddr) -> Option<usize> {
        let index = config.route_index(local.ip(), local.port(), None);
        self.configs.get(index)?.as_ref().map(|_| index)
    }

    /// The server for `sni` and its configuration, falling back to `default` when that
    /// one has no certificate.
    fn chosen(
        &self,
        config: &ServerConfig,
        local: SocketAddr,
        sni: Option<&str>,
        default: usize,
    ) -> Option<(usize, Arc<rustls::ServerConfig>)> {
        let index = config.route_index(local.ip(), local.port(), sni);
        [index, default]
            .into_iter()
            .find_map(|i| self.configs.get(i).cloned().flatten().map(|cfg| (i, cfg)))
    }
}

/// Whether servers `a` and `b` present the same certificate (httpd's "compatible SSL
/// setup" for a Host header that differs from SNI), judged from the configuration.
pub fn compatible(config: &ServerConfig, a: usize, b: usize) -> bool {
    if a == b {
        return true;
    }
    let (a, b) = (&config.server(a).ssl, &config.server(b).ssl);
    let same_paths = |x: &[(std::path::PathBuf, itkd_config::Span)],
                      y: &[(std::path::PathBuf, itkd_config::Span)]| {
        x.iter().map(|(p, _)| p).eq(y.iter().map(|(p, _)| p))
    };
    a.engine == b.engine
        && same_paths(&a.certificate_files, &b.certificate_files)
        && same_paths(&a.key_files, &b.key_files)
        && a.protocols == b.protocols
}

/// The rustls configuration of a server (its certificate, versions, suites, tickets).
fn server_config(
    ssl: &SslSettings,
    key: Arc<CertifiedKey>,
    tickets: &Arc<SharedTicketer>,
) -> Option<Arc<rustls::ServerConfig>> {
    let mut provider = provider();
    if let Some((spec, _)) = &ssl.cipher_suite {
        if let Ok((names, _)) = itkd_config::ssl::cipher_suites(spec) {
            let all = std::mem::take(&mut provider.cipher_suites);
            provider.cipher_suites = names
                .iter()
                .filter_map(|n| {
                    all.iter()
                        .find(|s| format!("{:?}", s.suite()) == *n)
                        .copied()
                })
                .collect();
        }
    }
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if ssl.protocols.tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if ssl.protocols.tls12 {
        versions.push(&rustls::version::TLS12);
    }
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .ok()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(key)));
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg.ignore_client_order = ssl.honor_cipher_order;
    // Each connection is a new process: an in-memory session cache would never hit.
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    if ssl.session_tickets {
        cfg.ticketer = tickets.clone();
    } else {
        cfg.send_tls13_tickets = 0;
    }
    Some(Arc::new(cfg))
}

fn load_one(ssl: &SslSettings, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let Some((cert_path, cert_span)) = ssl.certificate_files.first() else {
        let at = ssl.span.as_ref().map_or_else(String::new, |s| {
            format!("{}:{}: ", s.file.display(), s.line)
        });
        return Err(format!(
            "{at}SSLEngine: Server should be SSL-aware but has no certificate configured [Hint: SSLCertificateFile]"
        ));
    };
    let at = |span: &itkd_config::Span, directive: &str| {
        format!("{}:{}: {directive}:", span.file.display(), span.line)
    };
    let text = std::fs::read(cert_path).map_err(|e| {
        format!(
            "{} cannot read {}: {e}",
            at(cert_span, "SSLCertificateFile"),
            cert_path.display()
        )
    })?;
    let mut chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "{} {}: not a PEM certificate ({e})",
                at(cert_span, "SSLCertificateFile"),
                cert_path.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "{} {}: no certificate in the file",
            at(cert_span, "SSLCertificateFile"),
            cert_path.display()
        ));
    }
    if let Some((chain_path, chain_span)) = &ssl.chain_file {
        let text = std::fs::read(chain_path).map_err(|e| {
            format!(
                "{} cannot read {}: {e}",
                at(chain_span, "SSLCertificateChainFile"),
                chain_path.display()
            )
        })?;
        let more: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&text)
            .collect::<Result<_, _>>()
            .map_err(|e| {
                format!(
                    "{} {}: not PEM certificates ({e})",
                    at(chain_span, "SSLCertificateChainFile"),
                    chain_path.display()
                )
            })?;
        chain.extend(more);
    }
    // The key: SSLCertificateKeyFile, else in the certificate file itself.
    let (key_path, key_span, key_directive) = match ssl.key_files.first() {
        Some((p, s)) => (p, s, "SSLCertificateKeyFile"),
        None => (cert_path, cert_span, "SSLCertificateFile"),
    };
    let key_text = std::fs::read(key_path).map_err(|e| {
        format!(
            "{} cannot read {}: {e}",
            at(key_span, key_directive),
            key_path.display()
        )
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_text);
    // The PEM text is ours to wipe (what rustls and ring copy, they free without
    // wiping; see ARCHITECTURE.md, HTTPS).
    let mut key_text = key_text;
    key_text.iter_mut().for_each(|b| *b = 0);
    std::hint::black_box(&key_text);
    let key = key.map_err(|e| {
        format!(
            "{} {}: no usable private key ({e}; encrypted keys are not supported)",
            at(key_span, key_directive),
            key_path.display()
        )
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        format!(
            "{} {} does not match the certificate in {} ({e})",
            at(key_span, key_directive),
            key_path.display(),
            cert_path.display()
        )
    })
}

/// One certificate for every ClientHello (the vhost was chosen before).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Why a connection on a TLS address got no TLS session.
#[derive(Debug)]
pub enum NoSession {
    /// The first bytes are a plain HTTP request: answer it with httpd's 400.
    PlainHttp(tokio::net::TcpStream),
    /// Anything else (garbage, a broken or timed-out handshake): close.
    Closed,
}

/// The worker's side of the handshake on a TLS address whose default server is `default`.
pub async fn handshake(
    certs: &Certificates,
    config: &ServerConfig,
    stream: tokio::net::TcpStream,
    local: SocketAddr,
    default: usize,
) -> Result<
    (
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        TlsInfo,
    ),
    NoSession,
> {
    let deadline = tokio::time::Instant::now() + config.server(default).timeout;
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return Err(NoSession::Closed),
    }
    // A TLS handshake record starts with 22; a request line with a method's letter.
    if first[0] != 0x16 {
        return Err(if first[0].is_ascii_uppercase() {
            NoSession::PlainHttp(stream)
        } else {
            NoSession::Closed
        });
    }
    let acceptor =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let start = match tokio::time::timeout_at(deadline, acceptor).await {
        Ok(Ok(start)) => start,
        _ => return Err(NoSession::Closed),
    };
    let sni = start
        .client_hello()
        .server_name()
        .map(str::to_ascii_lowercase);
    let Some((index, cfg)) = certs.chosen(config, local, sni.as_deref(), default) else {
        return Err(NoSession::Closed);
    };
    let tls = match tokio::time::timeout_at(deadline, start.into_stream(cfg)).await {
        Ok(Ok(tls)) => tls,
        _ => return Err(NoSession::Closed),
    };
    let (_, conn) = tls.get_ref();
    let protocol = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        _ => "TLSv1.2",
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .and_then(|s| {
            let iana = format!("{:?}", s.suite());
            itkd_config::ssl::SUITES
                .iter()
                .find(|(name, _)| *name == iana)
                .map(|(_, openssl)| *openssl)
        })
        .unwrap_or("");
    Ok((
        tls,
        TlsInfo {
            server: index,
            sni,
            protocol,
            cipher,
        },
    ))
}

/// Session ticket keys in memory the master shares with every worker: a current and a
/// previous key, each a 16-byte name and a 32-byte ChaCha20-Poly1305 key, behind a
/// sequence counter (a seqlock: the master is the only writer). Any worker decrypts what
/// any other encrypted, so a client resumes though each connection is a new process.
#[derive(Debug)]
pub struct SharedTicketer {
    words: SharedWords,
}

/// Words: [0] sequence, [1..7] current (name 2, key 4), [7..13] previous.
const TICKET_WORDS: usize = 13;
/// How long a key encrypts new tickets; it still decrypts for as long again.
pub const TICKET_ROTATION: std::time::Duration = std::time::Duration::from_secs(3600);

impl SharedTicketer {
    /// Made by the master (before any fork), with a fresh current key.
    pub fn new() -> Result<SharedTicketer, String> {
        let words = SharedWords::new(TICKET_WORDS).map_err(|e| e.to_string())?;
        let t = SharedTicketer { words };
        t.rotate()?;
        t.rotate()?;
        Ok(t)
    }

    /// A new current key; the current one becomes the previous one. Master only.
    pub fn rotate(&self) -> Result<(), String> {
        let mut fresh = [0u8; 48];
        SystemRandom::new()
            .fill(&mut fresh)
            .map_err(|_| "no randomness for a ticket key".to_owned())?;
        let w = self.words.words();
        let seq = w[0].load(Ordering::Relaxed);
        w[0].store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for i in 0..6 {
            w[7 + i].store(w[1 + i].load(Ordering::Relaxed), Ordering::Relaxed);
        }
        for (i, chunk) in fresh.chunks_exact(8).enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            w[1 + i].store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
        w[0].store(seq.wrapping_add(2), Ordering::Release);
        Ok(())
    }

    /// (name, key) of the current (0) and previous (1) keys, read consistently.
    fn keys(&self) -> [([u8; 16], [u8; 32]); 2] {
        let w = self.words.words();
        loop {
            let before = w[0].load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let read = |base: usize| {
                let mut name = [0u8; 16];
                let mut key = [0u8; 32];
                for i in 0..2 {
                    name[i * 8..i * 8 + 8]
                        .copy_from_slice(&w[base + i].load(Ordering::Relaxed).to_le_bytes());
                }
                for i in 0..4 {
                    key[i * 8..i * 8 + 8]
                        .copy_from_slice(&w[base + 2 + i].load(Ordering::Relaxed).to_le_bytes());
                }
                (name, key)
            };
            let keys = [read(1), read(7)];
            fence(Ordering::Acquire);
            if w[0].load(Ordering::Relaxed) == before {
                return keys;
            }
        }
    }
}

fn sealing_key(key: &[u8; 32]) -> Option<aead::LessSafeKey> {
    aead::UnboundKey::new(&aead::CHACHA20_POLY1305, key)
        .ok()
        .map(aead::LessSafeKey::new)
}

impl ProducesTickets for SharedTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        // A ticket decrypts while its key is current or previous.
        u32::try_from(TICKET_ROTATION.as_secs()).unwrap_or(3600)
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let [(name, key), _] = self.keys();
        let mut nonce = [0u8; aead::NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(16 + nonce.len() + plain.len() + 16);
        out.extend_from_slice(&name);
        out.extend_from_slice(&nonce);
        let mut sealed = plain.to_vec();
        sealing_key(&key)?
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(name),
                &mut sealed,
            )
            .ok()?;
        out.extend_from_slice(&sealed);
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        if cipher.len() < 16 + aead::NONCE_LEN + 16 {
            return None;
        }
        let (name, rest) = cipher.split_at(16);
        let (nonce, sealed) = rest.split_at(aead::NONCE_LEN);
        let (_, key) = self.keys().into_iter().find(|(n, _)| n == name)?;
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = sealed.to_vec();
        let plain = sealing_key(&key)?
            .open_in_place(nonce, aead::Aad::from(name), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_survive_one_rotation_not_two() {
        let t = SharedTicketer::new().unwrap();
        let ticket = t.encrypt(b"session state").unwrap();
        assert_eq!(t.decrypt(&ticket).as_deref(), Some(&b"session state"[..]));
        t.rotate().unwrap();
        assert_eq!(
            t.decrypt(&ticket).as_deref(),
            Some(&b"session state"[..]),
            "previous key"
        );
        t.rotate().unwrap();
        assert_eq!(t.decrypt(&ticket), None, "two rotations later");
        let mut forged = t.encrypt(b"x").unwrap();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(t.decrypt(&forged), None);
        assert_eq!(t.decrypt(&[0u8; 10]), None);
    }
}
