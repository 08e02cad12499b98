//! The operating system, behind small typed, safe values.
//!
//! Every `unsafe` block of itkd lives in this crate, each with a `// SAFETY:` comment.
//! This crate knows nothing of HTTP or of the configuration language.

pub mod credentials;
pub mod users;
