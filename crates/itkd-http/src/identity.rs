//! Who a request runs as (mpm-itk's rules): `AssignUserID` of the innermost section that
//! sets one, else `User`/`Group`; `AssignUserIDExpr` then overrides the uid (and names the
//! user whose groups are used), `AssignGroupIDExpr` the gid. Evaluated before the switch;
//! a result outside `LimitUIDRange`/`LimitGIDRange` is refused here (mpm-itk: 500).

use itkd_config::dirconf::DirConfig;
use itkd_config::expr::{StringExpr, Var};
use itkd_config::model::ServerConfig;

/// The identity one request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// The name for `initgroups`; `None` for a `#n` uid without passwd entry.
    pub user_name: Option<String>,
    pub nice: Option<i32>,
}

/// Name lookups at request time (only for `AssignUserIDExpr`/`AssignGroupIDExpr`).
pub trait Lookup {
    /// `(uid, name)` for a user name or `#n`.
    fn user(&self, name: &str) -> Option<(u32, Option<String>)>;
    /// The gid for a group name or `#n`.
    fn group(&self, name: &str) -> Option<u32>;
}

/// What an expression may ask about the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExprContext<'a> {
    pub http_host: Option<&'a str>,
    pub server_name: &'a str,
    pub request_uri: &'a str,
    pub request_env: &'a [(String, String)],
}

impl ExprContext<'_> {
    fn value(&self, var: &Var) -> Option<String> {
        match var {
            Var::HttpHost => self.http_host.map(str::to_owned),
            Var::ServerName => Some(self.server_name.to_owned()),
            Var::RequestUri => Some(self.request_uri.to_owned()),
            Var::ReqEnv(name) | Var::Env(name) => self
                .request_env
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
        }
    }
}

/// Why no identity could be given: the request gets a 500, and the log says this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("AssignUserIDExpr {expr} gave '{value}', which is no user")]
    UnknownUser { expr: String, value: String },
    #[error("AssignGroupIDExpr {expr} gave '{value}', which is no group")]
    UnknownGroup { expr: String, value: String },
    #[error("uid {0} is outside LimitUIDRange")]
    UidOutOfRange(u32),
    #[error("gid {0} is outside LimitGIDRange")]
    GidOutOfRange(u32),
}

pub fn identity(
    config: &ServerConfig,
    dir: &DirConfig,
    ctx: &ExprContext<'_>,
    lookup: &dyn Lookup,
) -> Result<Identity, IdentityError> {
    let (mut uid, mut gid, mut user_name) = match &dir.assign {
        Some(a) => (a.user.uid, a.group.gid, a.user.name.clone()),
        None => (config.user.uid, config.group.gid, config.user.name.clone()),
    };
    if let Some(expr) = &dir.user_expr {
        let value = eval(expr, ctx);
        let (u, name) = lookup
            .user(&value)
            .ok_or_else(|| IdentityError::UnknownUser {
                expr: expr.to_string(),
                value: value.clone(),
            })?;
        uid = u;
        user_name = name;
    }
    if let Some(expr) = &dir.group_expr {
        let value = eval(expr, ctx);
        gid = lookup
            .group(&value)
            .ok_or_else(|| IdentityError::UnknownGroup {
                expr: expr.to_string(),
                value,
            })?;
    }
    let in_range = |id: u32, (lo, hi): (u32, u32)| (lo..=hi).contains(&id);
    if !in_range(uid, config.itk.limit_uid) {
        return Err(IdentityError::UidOutOfRange(uid));
    }
    if !in_range(gid, config.itk.limit_gid) {
        return Err(IdentityError::GidOutOfRange(gid));
    }
    Ok(Identity {
        uid,
        gid,
        user_name,
        nice: dir.nice,
    })
}

fn eval(expr: &StringExpr, ctx: &ExprContext<'_>) -> String {
    expr.eval(|v| ctx.value(v))
}
