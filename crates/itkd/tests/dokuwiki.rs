//! DokuWiki from Debian's `dokuwiki` package, as a tenant's own copy (directories 0700,
//! files 0600) under php-cgi, driven as a user drives it, with curl and a cookie jar:
//! `/` redirects to doku.php, install.php sets the wiki up, the admin logs in, edits and
//! saves a page, uploads a picture, the indexer runs (lib/exe/taskrunner.php, the
//! "web bug" every page embeds, which answers first and then works on) and the search
//! finds the page; every file the wiki wrote belongs to the tenant and its private
//! files stay private. The same flow runs first against Debian's Apache 2.4 + mpm-itk
//! with the same configuration on a copy of its own: every step must pass there (so
//! the test means what it says), and give the same status under itkd.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use common::{
    apache_present, own_tree, php_present, root, server_dir, tenant, Apache, Server, APACHE_MODULES,
};

/// The README's php-cgi recipe with DokuWiki's documented set-up (`AllowOverride All`
/// for its own .htaccess files), one vhost for the tenant's wiki. `WIKI` is the copy,
/// `LOGS` the server's own directory.
const CONFIG: &str = "
Listen 127.0.0.1:PORT
ServerName main.test
ServerRoot DIR
TypesConfig /etc/mime.types
DocumentRoot DIR/LOGS
ErrorLog DIR/LOGS/error.log
LogLevel info
PidFile DIR/LOGS/pid
User www-data
Group www-data
Timeout 60
ScriptAlias /cgi-bin/ /usr/lib/cgi-bin/
<Directory /usr/lib/cgi-bin>
    Require all granted
</Directory>
Action application/x-httpd-php /cgi-bin/php
AddHandler application/x-httpd-php .php
<Directory WIKI>
    Options +FollowSymLinks
    AllowOverride All
    Require all granted
</Directory>
<VirtualHost *:PORT>
    ServerName wiki.test
    DocumentRoot WIKI
    AssignUserID #20001 #21001
    DirectoryIndex index.php
</VirtualHost>
";

const ADMIN: &str = "admin";
const PASSWORD: &str = "correct horse battery staple";
const PAGE: &str = "itkd:notes";
/// A word in the saved page and nowhere else in the wiki.
const WORD: &str = "zanzibarquokka";
const MEDIA: &str = "/var/lib/dokuwiki/data/media/wiki/dokuwiki-128.png";
/// php-cgi's session.save_path on Debian.
const SESSIONS: &str = "/var/lib/php/sessions";
/// How long the search may take to find the page after the taskrunner answered.
const INDEX_WAIT: Duration = Duration::from_secs(20);

/// A tenant's private copy of Debian's DokuWiki at `to`, as an operator makes it: the
/// code with its symlinks resolved (lib/plugins and lib/tpl point into /var/lib), its own
/// conf/ (Debian's /etc/dokuwiki without the site files install.php writes) and data/
/// (the package's initial pages and media), and no Debian preload.php, which would
/// point the copy at the system-wide /etc/dokuwiki and /var/lib/dokuwiki/data.
fn wiki_copy(to: &Path) {
    let cp = |from: &str, to: &Path| {
        let ok = Command::new("cp")
            .args(["-rL", from])
            .arg(to)
            .status()
            .unwrap();
        assert!(ok.success(), "cp -rL {from} {}", to.display());
    };
    cp("/usr/share/dokuwiki", to);
    cp("/var/lib/dokuwiki/data", &to.join("data"));
    std::fs::remove_file(to.join("inc/preload.php")).unwrap();
    // The system wiki's own site files (its users and their password hashes) stay out.
    std::fs::create_dir(to.join("conf")).unwrap();
    for entry in std::fs::read_dir("/etc/dokuwiki").unwrap() {
        let name = entry.unwrap().file_name();
        let name = name.to_str().unwrap();
        if !["local.php", "users.auth.php", "acl.auth.php"].contains(&name) {
            cp(
                &format!("/etc/dokuwiki/{name}"),
                &to.join("conf").join(name),
            );
        }
    }
    // Debian's default keeps the data in /var/lib/dokuwiki; the copy keeps its own.
    let main = to.join("conf/dokuwiki.php");
    let text = std::fs::read_to_string(&main).unwrap();
    let debian = "$conf['savedir']     = '/var/lib/dokuwiki/data';";
    assert!(
        text.contains(debian),
        "{}: no Debian savedir",
        main.display()
    );
    std::fs::write(
        &main,
        text.replace(debian, "$conf['savedir']     = './data';"),
    )
    .unwrap();
}

/// Every file and directory under `root` with its modification time.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, SystemTime> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        }
        out.insert(path, meta.modified().unwrap());
    }
    out
}

/// One HTTP answer as curl saw it.
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// A browser: curl with a cookie jar, talking to `wiki.test` on a loopback port.
struct Browser {
    port: u16,
    dir: PathBuf,
}

impl Browser {
    fn new(dir: PathBuf, port: u16) -> Browser {
        std::fs::create_dir_all(&dir).unwrap();
        Browser { port, dir }
    }

    fn request(&self, path: &str, args: &[&str]) -> Reply {
        let (head, body, jar) = (
            self.dir.join("head"),
            self.dir.join("body"),
            self.dir.join("jar"),
        );
        let _ = std::fs::remove_file(&head);
        let _ = std::fs::remove_file(&body);
        let resolve = format!("wiki.test:{}:127.0.0.1", self.port);
        let url = format!("http://wiki.test:{}{path}", self.port);
        let out = Command::new("curl")
            .args([
                "-s",
                "-m",
                "30",
                "--resolve",
                &resolve,
                "-w",
                "%{http_code}",
            ])
            .arg("-b")
            .arg(&jar)
            .arg("-c")
            .arg(&jar)
            .arg("-D")
            .arg(&head)
            .arg("-o")
            .arg(&body)
            .args(args)
            .arg(&url)
            .output()
            .unwrap();
        Reply {
            status: String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0),
            head: std::fs::read_to_string(&head).unwrap_or_default(),
            body: std::fs::read(&body).unwrap_or_default(),
        }
    }

    /// The value of cookie `name` in the jar.
    fn cookie(&self, name: &str) -> Option<String> {
        let jar = std::fs::read_to_string(self.dir.join("jar")).ok()?;
        jar.lines().find_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields.len() == 7 && fields[5] == name).then(|| fields[6].to_owned())
        })
    }

    fn get(&self, path: &str) -> Reply {
        self.request(path, &[])
    }

    /// An urlencoded form post of `fields`.
    fn post(&self, path: &str, fields: &[(String, String)]) -> Reply {
        let args: Vec<String> = fields
            .iter()
            .flat_map(|(k, v)| ["--data-urlencode".to_owned(), format!("{k}={v}")])
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.request(path, &args)
    }
}

/// `&amp;` and friends in an attribute value.
fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&#039;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in one tag's text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let at = tag
        .match_indices(&key)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || tag[..i].ends_with(char::is_whitespace))?;
    let value = &tag[at + key.len()..];
    Some(unescape(&value[..value.find('"')?]))
}

/// The hidden fields of the form with id `id` (the `sectok` CSRF token among them).
fn hidden_fields(html: &str, id: &str) -> Vec<(String, String)> {
    let Some(form) = html.split("<form ").skip(1).find(|form| {
        attr(&form[..form.find('>').unwrap_or(form.len())], "id").as_deref() == Some(id)
    }) else {
        return Vec::new();
    };
    let form = &form[..form.find("</form>").unwrap_or(form.len())];
    form.split("<input ")
        .skip(1)
        .filter_map(|tag| {
            let tag = &tag[..tag.find('>')?];
            (attr(tag, "type")? == "hidden").then_some(())?;
            Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default()))
        })
        .collect()
}

fn field(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Whether a search result page lists `PAGE` among its full-text hits.
fn found(html: &str) -> bool {
    html.find("<dl class=\"search_results\">")
        .is_some_and(|at| {
            let results = &html[at..];
            let results = &results[..results.find("</dl>").unwrap_or(results.len())];
            results.contains(&format!("title=\"{PAGE}\""))
        })
}

/// One step of the flow: its HTTP status and whether it did what a user expects.
struct Step {
    name: &'static str,
    status: u16,
    ok: bool,
    detail: String,
}

/// What one server did with the whole flow.
struct Outcome {
    server: &'static str,
    steps: Vec<Step>,
    took: Duration,
}

impl Outcome {
    fn step(&mut self, name: &'static str, reply: &Reply, ok: bool, detail: String) {
        self.steps.push(Step {
            name,
            status: reply.status,
            ok,
            detail,
        });
    }

    fn report(&self) -> String {
        let mut out = format!("{} ({:.1} s):\n", self.server, self.took.as_secs_f64());
        for s in &self.steps {
            out.push_str(&format!(
                "  {} {:<28} {:>3}  {}\n",
                if s.ok { "ok  " } else { "FAIL" },
                s.name,
                s.status,
                s.detail
            ));
        }
        out
    }

    fn failures(&self) -> Vec<&'static str> {
        self.steps
            .iter()
            .filter(|s| !s.ok)
            .map(|s| s.name)
            .collect()
    }
}

fn snippet(reply: &Reply) -> String {
    let text = reply.text();
    let short: String = text.chars().take(300).collect();
    format!(
        "[{}] {}",
        reply.head.lines().next().unwrap_or("no answer").trim(),
        short.replace('\n', " ")
    )
}

/// The whole flow against the server on `port` serving the copy at `wiki`; `client` is
/// the browser's scratch directory, `before` the copy's files before the server started.
fn drive(
    server: &'static str,
    port: u16,
    wiki: &Path,
    client: PathBuf,
    before: &BTreeMap<PathBuf, SystemTime>,
    uid: u32,
    gid: u32,
) -> Outcome {
    let started = Instant::now();
    let mut out = Outcome {
        server,
        steps: Vec::new(),
        took: Duration::ZERO,
    };
    let browser = Browser::new(client, port);

    // `/`: DirectoryIndex runs index.php, which redirects to the start page.
    let r = browser.get("/");
    let location = r.header("Location").unwrap_or_default();
    let ok =
        r.status == 302 && location.contains("/doku.php?id=start") && !r.text().contains("<?php");
    out.step(
        "GET / redirects",
        &r,
        ok,
        format!("Location: {location:?}; {}", snippet(&r)),
    );

    // install.php: the form, then the answers (ACL on, public read, users upload).
    let r = browser.get("/install.php");
    let ok = r.status == 200 && r.text().contains("name=\"d[superuser]\"");
    out.step("install form", &r, ok, snippet(&r));
    let r = browser.post(
        "/install.php",
        &owned(&[
            ("l", "en"),
            ("d[title]", "Tenant wiki"),
            ("d[acl]", "on"),
            ("d[superuser]", ADMIN),
            ("d[fullname]", "Wiki Admin"),
            ("d[email]", "admin@wiki.test"),
            ("d[password]", PASSWORD),
            ("d[confirm]", PASSWORD),
            ("d[policy]", "1"),
            ("d[license]", "cc-by-sa"),
            ("submit", "Save"),
        ]),
    );
    let ok = r.status == 200
        && r.text()
            .contains("The configuration was finished successfully")
        && wiki.join("conf/users.auth.php").exists();
    out.step("install", &r, ok, snippet(&r));

    // Log in with the form's security token.
    let r = browser.get("/doku.php?id=start&do=login");
    let mut fields = hidden_fields(&r.text(), "dw__login");
    // (Before log-in the token is empty: there is no user to bind it to yet.)
    let ok = r.status == 200 && field(&fields, "sectok").is_some();
    out.step("login form", &r, ok, format!("hidden fields {fields:?}"));
    fields.extend(owned(&[("u", ADMIN), ("p", PASSWORD)]));
    let r = browser.post("/doku.php?id=start", &fields);
    let location = r.header("Location").unwrap_or_default();
    let ok = r.status == 302 && location.contains("id=start");
    out.step("log in", &r, ok, format!("Location: {location}"));
    let r = browser.get("/doku.php?id=start");
    let ok = r.status == 200 && r.text().contains("do=logout");
    out.step("logged in", &r, ok, snippet(&r));

    // Edit and save a new page.
    let r = browser.get(&format!("/doku.php?id={PAGE}&do=edit"));
    let mut fields = hidden_fields(&r.text(), "dw__editform");
    let ok = r.status == 200
        && field(&fields, "sectok").is_some_and(|t| !t.is_empty())
        && field(&fields, "id").as_deref() == Some(PAGE);
    out.step("edit form", &r, ok, format!("hidden fields {fields:?}"));
    let text = format!(
        "====== Tenant notes ======\n\nThe word {WORD} is on this page only.\n\n{{{{itkd:logo.png}}}}\n"
    );
    fields.extend(owned(&[
        ("wikitext", &text),
        ("summary", "first notes"),
        ("do[save]", "Save"),
    ]));
    let r = browser.post("/doku.php", &fields);
    let location = r.header("Location").unwrap_or_default();
    let saved = std::fs::read_to_string(wiki.join("data/pages/itkd/notes.txt")).unwrap_or_default();
    let ok = r.status == 302 && location.contains("id=itkd:notes") && saved.contains(WORD);
    out.step(
        "save page",
        &r,
        ok,
        format!("Location: {location}; saved {saved:?}"),
    );
    let r = browser.get(&format!("/doku.php?id={PAGE}"));
    let page = r.text();
    let ok = r.status == 200 && page.contains(WORD);
    out.step("view page", &r, ok, snippet(&r));
    // The indexer "web bug" every page embeds.
    let web_bug = page
        .split("<img ")
        .filter_map(|tag| attr(&tag[..tag.find('>').unwrap_or(tag.len())], "src"))
        .find(|src| src.contains("lib/exe/taskrunner.php"));

    // Before the indexer ran, the search does not know the page.
    let search = format!("/doku.php?id=start&do=search&q={WORD}");
    let r = browser.get(&search);
    let ok = r.status == 200 && !found(&r.text()) && r.text().contains("Nothing was found");
    out.step(
        "search before indexer",
        &r,
        ok,
        format!("found: {}", found(&r.text())),
    );

    // Upload a picture as the media manager's uploader does (multipart, with sectok).
    let r = browser.get("/doku.php?id=itkd:notes&do=media&ns=itkd&tab_files=upload");
    let sectok = hidden_fields(&r.text(), "dw__upload")
        .into_iter()
        .find(|(k, _)| k == "sectok")
        .map(|(_, v)| v)
        .unwrap_or_default();
    let ok = r.status == 200 && !sectok.is_empty();
    out.step("media manager", &r, ok, format!("sectok {sectok:?}"));
    let upload = format!("qqfile=@{MEDIA};type=image/png;filename=logo.png");
    let r = browser.request(
        "/lib/exe/ajax.php?call=mediaupload",
        &[
            "-F",
            &upload,
            "--form-string",
            "mediaid=logo.png",
            "--form-string",
            "ns=itkd",
            "--form-string",
            &format!("sectok={sectok}"),
        ],
    );
    let original = std::fs::read(MEDIA).unwrap();
    let stored = std::fs::read(wiki.join("data/media/itkd/logo.png")).unwrap_or_default();
    let ok = r.status == 200 && r.text().contains("\"success\":true") && stored == original;
    out.step("upload media", &r, ok, snippet(&r));
    let r = browser.get("/lib/exe/fetch.php?media=itkd:logo.png");
    let ok = r.status == 200 && r.body == original;
    out.step(
        "fetch media",
        &r,
        ok,
        format!("{} bytes of {}", r.body.len(), original.len()),
    );

    // The indexer: the taskrunner answers with a 1x1 GIF first, then indexes the page.
    let r = match &web_bug {
        Some(src) => browser.get(src),
        None => browser.get("/lib/exe/taskrunner.php?id=itkd%3Anotes"),
    };
    let ok = web_bug.is_some()
        && r.status == 200
        && r.header("Content-Type").as_deref() == Some("image/gif");
    out.step("taskrunner", &r, ok, format!("web bug {web_bug:?}"));

    // The search finds the page once the indexer has run (bounded wait).
    let deadline = Instant::now() + INDEX_WAIT;
    let waited = Instant::now();
    let r = loop {
        let r = browser.get(&search);
        if found(&r.text()) || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let hit = found(&r.text());
    out.step(
        "search finds page",
        &r,
        r.status == 200 && hit,
        format!(
            "found {hit} after {:.1} s; indexer.lock {}, page.idx has page: {}",
            waited.elapsed().as_secs_f64(),
            wiki.join("data/locks/_indexer.lock").exists(),
            std::fs::read_to_string(wiki.join("data/index/page.idx"))
                .unwrap_or_default()
                .lines()
                .any(|l| l == PAGE)
        ),
    );

    // The tenant's private files stay private (DokuWiki's own .htaccess files).
    for (name, path) in [
        ("conf/ denied", "/conf/users.auth.php"),
        ("data/ denied", "/data/pages/itkd/notes.txt"),
    ] {
        let r = browser.get(path);
        let ok = r.status == 403 && !r.text().contains(WORD) && !r.text().contains(ADMIN);
        out.step(name, &r, ok, snippet(&r));
    }

    // Every file the wiki wrote, and every file of the copy, belongs to the tenant.
    let after = snapshot(wiki);
    let written: Vec<&PathBuf> = after
        .iter()
        .filter(|(path, mtime)| before.get(*path) != Some(mtime))
        .map(|(path, _)| path)
        .collect();
    let foreign: Vec<String> = after
        .keys()
        .filter_map(|path| {
            let meta = std::fs::symlink_metadata(path).ok()?;
            (meta.uid() != uid || meta.gid() != gid)
                .then(|| format!("{} {}:{}", path.display(), meta.uid(), meta.gid()))
        })
        .collect();
    let expected = [
        "conf/local.php",
        "conf/users.auth.php",
        "conf/acl.auth.php",
        "data/pages/itkd/notes.txt",
        "data/media/itkd/logo.png",
        "data/index/page.idx",
        "data/meta/itkd/notes.indexed",
    ];
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|rel| !written.contains(&&wiki.join(rel)))
        .collect();
    let no_reply = Reply {
        status: 0,
        head: String::new(),
        body: Vec::new(),
    };
    out.step(
        "wiki wrote its files",
        &no_reply,
        missing.is_empty(),
        format!(
            "{} written; expected but not written: {missing:?}",
            written.len()
        ),
    );
    out.step(
        "files owned by tenant",
        &no_reply,
        foreign.is_empty(),
        format!("not the tenant's: {foreign:?}"),
    );
    // So does its PHP session (php-cgi's session.save_path, outside the tree), which
    // the test then removes.
    let session = browser
        .cookie("DokuWiki")
        .map(|id| Path::new(SESSIONS).join(format!("sess_{id}")));
    let meta = session.as_ref().and_then(|s| std::fs::metadata(s).ok());
    out.step(
        "session owned by tenant",
        &no_reply,
        meta.as_ref()
            .is_some_and(|m| m.uid() == uid && m.gid() == gid && m.mode() & 0o077 == 0),
        format!(
            "{session:?}: {:?}",
            meta.as_ref().map(|m| (m.uid(), m.gid(), m.mode() & 0o7777))
        ),
    );
    if let Some(session) = session {
        let _ = std::fs::remove_file(session);
    }
    out.took = started.elapsed();
    out
}

#[test]
fn dokuwiki_tenant_copy_installs_edits_uploads_and_finds_as_under_apache_mpm_itk() {
    if !root() || !php_present() || !apache_present() {
        return;
    }
    let dir = server_dir();
    let base = dir.path();
    let t = tenant(base, 1, &[]);
    // The two copies side by side (copying resolves 27 MB of symlinked trees).
    std::thread::scope(|s| {
        for name in ["apache", "itkd"] {
            let wiki = t.root.join(format!("{name}-wiki"));
            s.spawn(move || wiki_copy(&wiki));
            std::fs::create_dir(base.join(format!("{name}-logs"))).unwrap();
        }
    });
    own_tree(&t.root, t.uid, t.gid);
    // One configuration for both, LoadModule lines included (itkd opens no .so; they
    // make `<IfModule mod_authz_core.c>` in DokuWiki's .htaccess files true for both).
    let config = |name: &str| {
        format!("{APACHE_MODULES}{CONFIG}")
            .replace("WIKI", &format!("DIR/{}/{name}-wiki", t.name))
            .replace("LOGS", &format!("{name}-logs"))
    };

    let reference = {
        let wiki = t.root.join("apache-wiki");
        let before = snapshot(&wiki);
        let apache = Apache::start(base, &config("apache"));
        let outcome = drive(
            "apache2 + mpm-itk",
            apache.port,
            &wiki,
            base.join("apache-client"),
            &before,
            t.uid,
            t.gid,
        );
        drop(apache);
        outcome
    };
    eprintln!("{}", reference.report());

    let ours = {
        let wiki = t.root.join("itkd-wiki");
        let before = snapshot(&wiki);
        let server = Server::start(base, &config("itkd"));
        let outcome = drive(
            "itkd",
            server.port,
            &wiki,
            base.join("itkd-client"),
            &before,
            t.uid,
            t.gid,
        );
        drop(server);
        outcome
    };
    eprintln!("{}", ours.report());
    for name in ["apache", "itkd"] {
        let log = std::fs::read_to_string(base.join(format!("{name}-logs/error.log")))
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        eprintln!("{name} error.log, newest first:\n{}\n", tail.join("\n"));
    }

    assert!(
        reference.failures().is_empty(),
        "the flow fails under Apache + mpm-itk, so the test is wrong: {:?}\n{}",
        reference.failures(),
        reference.report()
    );
    let differ: Vec<String> = reference
        .steps
        .iter()
        .zip(&ours.steps)
        .filter(|(a, b)| a.status != b.status)
        .map(|(a, b)| format!("{}: apache2 {}, itkd {}", a.name, a.status, b.status))
        .collect();
    assert!(
        ours.failures().is_empty() && differ.is_empty(),
        "itkd fails {:?}; statuses differ: {differ:?}\n{}{}",
        ours.failures(),
        reference.report(),
        ours.report()
    );
}
