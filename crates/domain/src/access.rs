//! Who may do what: the permissions an operation needs, which roles hold them, and which API
//! token scope carries each. A request through an API token needs both: the token's owner's
//! role must hold the permission *now*, and the token must carry its scope — so a token never
//! has more power than its user, and loses power when the user does.

use serde::{Deserialize, Serialize};

use crate::Role;

/// What an API token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    /// Read runs, items, decisions, events, templates and the pending list.
    #[serde(rename = "runs:read")]
    RunsRead,
    /// Create, update and move runs; work items; manage run members; sign off.
    #[serde(rename = "runs:write")]
    RunsWrite,
    /// Record decisions.
    #[serde(rename = "decisions:write")]
    DecisionsWrite,
    /// Create templates.
    #[serde(rename = "templates:write")]
    TemplatesWrite,
    /// Manage webhook subscriptions: create, change, rotate secrets, read deliveries,
    /// redeliver.
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
    /// Manage users.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 6] = [
        Scope::RunsRead,
        Scope::RunsWrite,
        Scope::DecisionsWrite,
        Scope::TemplatesWrite,
        Scope::WebhooksWrite,
        Scope::Admin,
    ];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::RunsRead => "runs:read",
            Scope::RunsWrite => "runs:write",
            Scope::DecisionsWrite => "decisions:write",
            Scope::TemplatesWrite => "templates:write",
            Scope::WebhooksWrite => "webhooks:write",
            Scope::Admin => "admin",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A permission an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read anything but users and tokens.
    Read,
    /// Change items of runs one is a member of; claim them.
    WorkItems,
    /// Sign off approval items.
    SignOff,
    /// Create, update and move runs; manage members; waive required items; force a gate.
    SteerRuns,
    /// Record decisions.
    Decide,
    /// Create templates.
    WriteTemplates,
    /// Manage webhook subscriptions (their targets and secrets, deliveries, redelivery).
    ManageWebhooks,
    /// Manage users.
    ManageUsers,
    /// Manage environments' settings (their base URLs).
    ManageEnvironments,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 9] = [
        Permission::Read,
        Permission::WorkItems,
        Permission::SignOff,
        Permission::SteerRuns,
        Permission::Decide,
        Permission::WriteTemplates,
        Permission::ManageWebhooks,
        Permission::ManageUsers,
        Permission::ManageEnvironments,
    ];

    /// The API token scope that carries this permission.
    pub fn scope(self) -> Scope {
        match self {
            Permission::Read => Scope::RunsRead,
            Permission::WorkItems | Permission::SignOff | Permission::SteerRuns => Scope::RunsWrite,
            Permission::Decide => Scope::DecisionsWrite,
            Permission::WriteTemplates => Scope::TemplatesWrite,
            Permission::ManageWebhooks => Scope::WebhooksWrite,
            Permission::ManageUsers | Permission::ManageEnvironments => Scope::Admin,
        }
    }

    /// Words for a refusal: "… may not {what}".
    pub fn describe(self) -> &'static str {
        match self {
            Permission::Read => "read runs",
            Permission::WorkItems => "work checklist items",
            Permission::SignOff => "sign off approval items",
            Permission::SteerRuns => "create, change or move runs",
            Permission::Decide => "record decisions",
            Permission::WriteTemplates => "create templates",
            Permission::ManageWebhooks => "manage webhook subscriptions",
            Permission::ManageUsers => "manage users",
            Permission::ManageEnvironments => "manage environments",
        }
    }
}

impl Role {
    /// Whether the role holds a permission.
    pub fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::Read => true,
            Permission::WorkItems => match self {
                Role::Admin | Role::ReleaseManager | Role::Engineer | Role::Approver => true,
                Role::Viewer => false,
            },
            Permission::SignOff => match self {
                Role::Admin | Role::ReleaseManager | Role::Approver => true,
                Role::Engineer | Role::Viewer => false,
            },
            Permission::SteerRuns | Permission::Decide | Permission::ManageWebhooks => match self {
                Role::Admin | Role::ReleaseManager => true,
                Role::Engineer | Role::Approver | Role::Viewer => false,
            },
            Permission::WriteTemplates
            | Permission::ManageUsers
            | Permission::ManageEnvironments => match self {
                Role::Admin => true,
                Role::ReleaseManager | Role::Engineer | Role::Approver | Role::Viewer => false,
            },
        }
    }
}

/// Why access is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// The user's role does not hold the permission.
    #[error("a {} may not {}", role.as_str(), permission.describe())]
    Role {
        /// The caller's role.
        role: Role,
        /// What was needed.
        permission: Permission,
    },
    /// The API token does not carry the scope.
    #[error("this API token lacks the `{}` scope needed to {}", permission.scope().as_str(), permission.describe())]
    Scope {
        /// What was needed.
        permission: Permission,
    },
}

/// Checks a permission for a user, or for a token of the user with `scopes`.
pub fn authorize(
    role: Role,
    token_scopes: Option<&[Scope]>,
    permission: Permission,
) -> Result<(), AccessError> {
    if !role.allows(permission) {
        return Err(AccessError::Role { role, permission });
    }
    match token_scopes {
        Some(scopes) if !scopes.contains(&permission.scope()) => {
            Err(AccessError::Scope { permission })
        }
        Some(_) | None => Ok(()),
    }
}

/// Whether a user of `role` may put `scope` on an API token: only if the role holds some
/// permission the scope carries (a token never has more power than its user).
pub fn role_can_use_scope(role: Role, scope: Scope) -> bool {
    Permission::ALL
        .iter()
        .any(|p| p.scope() == scope && role.allows(*p))
}
