//! The operating system, behind small typed, safe values.
//!
//! Every `unsafe` block of itkd lives in this crate, each with a `// SAFETY:` comment.
//! This crate knows nothing of HTTP or of the configuration language.
//!
//! Who calls what, in the itk process model (see ARCHITECTURE.md):
//! - master: [`hugecode::move_code_to_huge_pages`] first, [`scoreboard::Scoreboard::new`], [`signals::install`],
//!   [`process::set_child_subreaper`], [`process::fork`] for each pool child.
//! - pool child, once, while still root: [`credentials::drop_bounding_set`] happens inside
//!   [`process::drop_to_pool_identity`], which comes after [`seccomp::confine_id_changes`]
//!   (the filter needs CAP_SYS_ADMIN to go in without NO_NEW_PRIVS).
//! - worker, per connection: [`signals::reset_to_default`], [`process::set_pdeathsig`],
//!   [`scoreboard::Scoreboard::try_enter_vhost`], [`credentials::switch_to`]; for each CGI
//!   script, [`rlimit::set_in_child`] before the spawn and [`pidfd::AsyncPidFd::open`]
//!   after it.

pub mod credentials;
pub mod error;
pub mod fileio;
pub mod hugecode;
pub mod pidfd;
pub mod process;
pub mod rlimit;
pub mod scoreboard;
pub mod seccomp;
pub mod shared;
pub mod signals;
pub mod users;

pub use error::{Error, Result};
