//! Which httpd modules itkd stands in for, and what `LoadModule` of any other one means.
//!
//! httpd decides `<IfModule>` by what is loaded. itkd does the same: the modules Debian
//! compiles into httpd statically are always there; a module whose job itkd does built in
//! counts as loaded once `LoadModule` names it (so Debian's `mods-enabled` decides, as it
//! does for httpd); any other module gets a warning and its `<IfModule>` stays false.
//! The directives of built-in modules work with or without `LoadModule`.

use apacheconf::{Host, ModuleLoad};

use crate::directives;

/// Debian's `apache2 -l`: compiled into httpd, so `<IfModule>` is true without LoadModule;
/// and itkd's own process model, which is mpm-itk on prefork whatever is loaded.
const STATIC: &[&str] = &[
    "mpm_itk",
    "mpm_prefork",
    "core",
    "so",
    "watchdog",
    "http",
    "log_config",
    "logio",
    "version",
    "unixd",
];

/// Modules whose job itkd does (their directives are in the directive table).
const PROVIDED: &[&str] = &[
    "access_compat",
    "actions",
    "auth_basic",
    "authn_core",
    "authn_file",
    "authz_groupfile",
    "authz_user",
    "alias",
    "authz_core",
    "authz_host",
    "autoindex",
    // mod_cgi and mod_cgid alike: the worker runs the script itself, as the tenant.
    "cgi",
    "cgid",
    "dir",
    "env",
    "headers",
    "mime",
    "reqtimeout",
    "socache_shmcb",
    "ssl",
];

/// Modules Debian enables by default whose `.conf` files use their directives without an
/// `<IfModule>` guard: itkd knows those directives (validated, without effect, see
/// `docs/directives.md`) so the stock configuration loads, but does not load the module.
pub const TOLERATED: &[(&str, &str)] = &[
    ("negotiation", "itkd does no content negotiation"),
    (
        "setenvif",
        "itkd does not set request variables from SetEnvIf/BrowserMatch yet",
    ),
    (
        "status",
        "itkd has no server-status page; MaxClientsVHost counts without ExtendedStatus",
    ),
];

/// Whether itkd does this module's job (it counts as loaded after `LoadModule`).
pub fn provides(id: &str) -> bool {
    PROVIDED.contains(&id) || STATIC.contains(&id)
}

/// The answer to `LoadModule id`.
pub fn load(id: &str) -> ModuleLoad {
    if provides(id) {
        return ModuleLoad::Provided;
    }
    let why = match id {
        "php" | "php5" | "php7" | "php8" => {
            "php_module is not loaded: itkd runs PHP as the tenant through php-cgi; use php-cgi via Action, see docs/directives.md".to_owned()
        }
        "mpm_event" | "mpm_worker" => {
            format!("{id}_module is not loaded: itkd is its own MPM (the itk process model)")
        }
        _ => match TOLERATED.iter().find(|(m, _)| *m == id) {
            Some((_, reason)) => format!(
                "{id}_module is not loaded: its directives are accepted without effect ({reason}); <IfModule {id}_module> sections are skipped"
            ),
            None => format!(
                "{id}_module is not supported by itkd: not loaded, and <IfModule {id}_module> sections are skipped"
            ),
        },
    };
    ModuleLoad::Skipped(why)
}

/// The [`Host`] itkd gives the configuration parser.
#[derive(Debug, Clone, Copy, Default)]
pub struct ItkdHost;

impl Host for ItkdHost {
    fn builtin_module(&self, id: &str) -> bool {
        STATIC.contains(&id)
    }

    fn load_module(&self, id: &str, _path: &str) -> ModuleLoad {
        load(id)
    }

    fn known_directive(&self, name: &str) -> bool {
        directives::lookup(name).is_some_and(|s| !s.name.starts_with('<'))
    }

    fn known_section(&self, name: &str) -> bool {
        directives::lookup_section(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_directive_module_is_provided_or_static() {
        for spec in directives::DIRECTIVES {
            assert!(
                PROVIDED.contains(&spec.module)
                    || STATIC.contains(&spec.module)
                    || TOLERATED.iter().any(|(m, _)| *m == spec.module),
                "{} belongs to {}, which itkd neither provides nor tolerates",
                spec.name,
                spec.module
            );
        }
    }

    #[test]
    fn unknown_modules_warn_with_their_name() {
        for provided in ["alias", "cgi", "cgid", "access_compat", "dir"] {
            assert_eq!(load(provided), ModuleLoad::Provided, "{provided}");
        }
        match load("php") {
            ModuleLoad::Skipped(why) => assert!(why.contains("php-cgi via Action"), "{why}"),
            other => panic!("{other:?}"),
        }
        match load("rewrite") {
            ModuleLoad::Skipped(why) => {
                assert!(why.starts_with("rewrite_module is not supported"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }
}
