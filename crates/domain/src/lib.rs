//! Shipshape's rulebook: templates and their Markdown form, the run status machine and its
//! gates, item and decision rules, and the wire types the API and the web app share.
//!
//! Everything here is synchronous and free of IO (no database, no HTTP), so it can be tested
//! exhaustively and compiled to `wasm32-unknown-unknown` for the web app. The store and API
//! crates depend on this one; it depends on neither.

pub mod access;
pub mod announcement;
pub mod approval;
pub mod chain;
pub mod decision;
pub mod describe;
pub mod environment;
pub mod event;
pub mod insights;
pub mod item;
pub mod markdown;
pub mod outbound;
pub mod precondition;
pub mod probe;
pub mod proposal;
pub mod records;
pub mod report;
pub mod role;
pub mod run;
pub mod signin;
pub mod template;
pub mod text;
pub mod timestamp;
pub mod webhook;
pub mod wire;

pub use role::Role;

/// The built-in EduLibra template in its annotated Markdown form. Stripped of its
/// `<!-- shipshape … -->` annotations and the decision-points block it is the customer's
/// checklist verbatim (a test checks this).
pub const EDULIBRA_TEMPLATE_MD: &str = include_str!("../templates/edulibra-production.md");

/// Reads `T` from a JSON tree, with the error type of the deserializer at hand (for the
/// hand-written decoders that read an object first, then its parts).
pub(crate) fn tree<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    value: serde_json::Value,
) -> Result<T, E> {
    T::deserialize(value).map_err(E::custom)
}
