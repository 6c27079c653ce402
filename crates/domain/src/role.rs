//! User roles and what each may do, as far as the rules of a run care.

use serde::{Deserialize, Serialize};

/// A user's role. Roles are not a hierarchy in general, but `admin` may do anything a
/// `release_manager` may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages users, templates and settings; may do anything.
    Admin,
    /// Creates and steers runs, waives required items, records decisions.
    ReleaseManager,
    /// Works items.
    Engineer,
    /// Signs off approval items; works items.
    Approver,
    /// Reads only.
    Viewer,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::ReleaseManager,
        Role::Engineer,
        Role::Approver,
        Role::Viewer,
    ];

    /// The wire and Markdown spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ReleaseManager => "release_manager",
            Role::Engineer => "engineer",
            Role::Approver => "approver",
            Role::Viewer => "viewer",
        }
    }

    /// Parses the wire and Markdown spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this is the admin role.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Admin)
    }
}

/// Why a user name or password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(pub &'static str);

/// The shortest password, in characters.
pub const MIN_PASSWORD_LEN: usize = 12;
/// The longest password, in characters.
pub const MAX_PASSWORD_LEN: usize = 256;

/// A password: 12 to 256 characters.
pub fn check_password(s: &str) -> Result<(), CredentialError> {
    let n = s.chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&n) {
        return Err(CredentialError("password must be 12 to 256 characters"));
    }
    if s.contains('\0') {
        return Err(CredentialError("password must not contain NUL"));
    }
    Ok(())
}

/// Whether changing a user from (`role`, `active`) to (`new_role`, `new_active`) would leave
/// no active admin, given how many *other* active admins there are. Such a change is refused:
/// nobody could manage users any more.
pub fn leaves_no_admin(
    role: Role,
    active: bool,
    new_role: Role,
    new_active: bool,
    other_active_admins: i64,
) -> bool {
    let is_admin_now = active && role == Role::Admin;
    let stays_admin = new_active && new_role == Role::Admin;
    is_admin_now && !stays_admin && other_active_admins == 0
}
