//! `itkd`: the command line. Today it reads and checks configurations (`-t`, `-S`); the
//! master / pool / worker roles come with the server itself.

#![forbid(unsafe_code)]

mod cgi;
mod dump;
mod logs;
mod master;
mod pool;
mod reqtimeout;
mod system;
mod tls;
mod worker;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use itkd_config::{load, LoadOptions, Loaded};

/// Where itkd looks without `-d`/`-f` (httpd: HTTPD_ROOT and SERVER_CONFIG_FILE).
const DEFAULT_SERVER_ROOT: &str = "/etc/itkd";
const DEFAULT_CONFIG_FILE: &str = "itkd.conf";

/// httpd-style flags, so `apache2ctl` habits carry over.
#[derive(Debug, Parser)]
#[command(
    name = "itkd",
    version,
    disable_version_flag = true,
    about = "A web server for many tenants: every virtual host served as its own Unix user (the Apache mpm-itk model). Reads Apache httpd configuration."
)]
struct Cli {
    /// The configuration file (relative to -d when -d is given, else to the current directory).
    #[arg(short = 'f', value_name = "FILE")]
    config_file: Option<PathBuf>,

    /// The ServerRoot (default: the directory of -f, else /etc/itkd).
    #[arg(short = 'd', value_name = "SERVERROOT")]
    server_root: Option<PathBuf>,

    /// Define a name for <IfDefine NAME> (repeatable).
    #[arg(short = 'D', value_name = "NAME")]
    defines: Vec<String>,

    /// Check the configuration: "Syntax OK" and exit 0, or every error and exit 1.
    #[arg(short = 't')]
    test: bool,

    /// Show the virtual host table and run settings (like `apachectl -S`), with each
    /// virtual host's effective user and group.
    #[arg(short = 'S')]
    show: bool,

    /// List every directive itkd knows: module, contexts, .htaccess class, support.
    #[arg(short = 'L')]
    list_directives: bool,

    /// Signal the running server (via PidFile): start, stop, restart, graceful, graceful-stop.
    #[arg(short = 'k', value_name = "COMMAND")]
    command: Option<String>,

    /// Show the version.
    #[arg(short = 'v')]
    version: bool,

    /// Show the version and build settings.
    #[arg(short = 'V')]
    build_settings: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version || cli.build_settings {
        println!("Server version: itkd/{} (Unix)", env!("CARGO_PKG_VERSION"));
        if cli.build_settings {
            println!("Server MPM:     itk (built in: one process per connection, each request as its vhost's user)");
            println!("Configuration:  Apache httpd 2.4 syntax, mpm-itk directives");
            println!(" -D HTTPD_ROOT=\"{DEFAULT_SERVER_ROOT}\"");
            println!(" -D SERVER_CONFIG_FILE=\"{DEFAULT_CONFIG_FILE}\"");
        }
        return ExitCode::SUCCESS;
    }
    if cli.list_directives {
        print!("{}", dump::directives());
        return ExitCode::SUCCESS;
    }
    let mut options = load_options(&cli);
    if cli.show {
        // httpd's -S is -t -D DUMP_VHOSTS -D DUMP_RUN_CFG, and <IfDefine> sees both.
        for name in ["DUMP_VHOSTS", "DUMP_RUN_CFG"] {
            options.defines.push(name.to_owned());
        }
    }
    if !cli.test && !cli.show {
        return serve(&cli, &options);
    }
    let loaded = load(&options, &system::RealSystem);
    report(&loaded);
    match (&loaded.config, cli.show) {
        (None, _) => ExitCode::FAILURE,
        (Some(config), true) => {
            print!("{}", dump::show(config));
            ExitCode::SUCCESS
        }
        (Some(_), false) => {
            eprintln!("Syntax OK");
            ExitCode::SUCCESS
        }
    }
}

/// `-d` and `-f` as httpd resolves them, but a relative `-f` without `-d` is taken from
/// the current directory (and its directory is the ServerRoot), which is what a user
/// typing `itkd -t -f examples/itkd.conf` means.
fn load_options(cli: &Cli) -> LoadOptions {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let (server_root, config_file) = match (&cli.server_root, &cli.config_file) {
        (Some(root), file) => {
            let root = cwd.join(root);
            let file = file
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
            (root.clone(), root.join(file))
        }
        (None, Some(file)) => {
            let file = cwd.join(file);
            let root = file
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
            (root, file)
        }
        (None, None) => {
            let root = PathBuf::from(DEFAULT_SERVER_ROOT);
            (root.clone(), root.join(DEFAULT_CONFIG_FILE))
        }
    };
    LoadOptions {
        config_file,
        server_root,
        defines: cli.defines.clone(),
    }
}

/// Every diagnostic, one per line, on stderr: `file:line: Directive: message`.
fn report(loaded: &Loaded) {
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    let errors = loaded.errors().count();
    if errors > 0 {
        eprintln!(
            "itkd: {errors} error{} in the configuration",
            if errors == 1 { "" } else { "s" }
        );
    }
}

/// Starts the server (`-k start` or no -k), or signals the running one.
fn serve(cli: &Cli, options: &LoadOptions) -> ExitCode {
    use nix::sys::signal::Signal;
    let signal = match cli.command.as_deref() {
        None | Some("start") => None,
        Some("stop") => Some(Signal::SIGTERM),
        Some("restart") => Some(Signal::SIGHUP),
        Some("graceful") => Some(Signal::SIGUSR1),
        Some("graceful-stop") => Some(Signal::SIGWINCH),
        Some(other) => {
            eprintln!("itkd: -k {other}: use start, stop, restart, graceful or graceful-stop");
            return ExitCode::from(2);
        }
    };
    match signal {
        None => {
            let foreground = options.defines.iter().any(|d| d == "FOREGROUND");
            master::run(options, foreground)
        }
        Some(signal) => {
            let loaded = load(options, &system::RealSystem);
            report(&loaded);
            let Some(config) = loaded.config else {
                return ExitCode::FAILURE;
            };
            match master::signal_running(&config.pid_file, signal) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("itkd: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
