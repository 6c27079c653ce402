//! The app's screens, one module per route.

pub mod dashboard;
pub mod login;
pub mod new_run;
pub mod run;
pub mod templates;
pub mod tokens;
pub mod users;
