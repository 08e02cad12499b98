//! Request handling: everything between "hyper parsed a request head" and "these bytes are
//! the response", as pure functions over the configuration model and the filesystem.
//!
//! It knows nothing of processes or of credential switching: the worker calls
//! the routing and identity functions before the switch (no file of a tenant is opened there)
//! and the serving functions after it.

#![forbid(unsafe_code)]

pub mod auth;
pub mod authz;
pub mod cgi;
pub mod errors;
pub mod files;
pub mod headers;
pub mod identity;
pub mod logfmt;
pub mod mapping;
pub mod walk;
