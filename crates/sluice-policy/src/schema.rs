//! The built-in Cedar schema and the names it defines.
//!
//! Owns: the schema text (`sluice.cedarschema`, shipped also as
//! `policies/sluice.cedarschema`), the action per statement kind, and the
//! entity type names built once at load.
//! Does not: validate policies (see `load`).

use crate::PolicyError;
use cedar_policy::{EntityId, EntityTypeName, EntityUid, Schema};
use sluice_model::{PrincipalKind, StatementKind};
use std::str::FromStr;

pub(crate) const SCHEMA_TEXT: &str = include_str!("sluice.cedarschema");

/// The SQL actions, in the order of `action_index`.
pub(crate) const SQL_ACTIONS: [&str; 7] =
    ["sql:read", "sql:transaction", "sql:session", "sql:utility", "sql:write", "sql:ddl", "sql:admin"];

/// The action of a statement kind.
pub fn action_for(kind: StatementKind) -> &'static str {
    SQL_ACTIONS[action_index(kind)]
}

pub(crate) fn action_index(kind: StatementKind) -> usize {
    match kind {
        StatementKind::Read => 0,
        StatementKind::Transaction => 1,
        StatementKind::Session => 2,
        StatementKind::Utility => 3,
        StatementKind::Write => 4,
        StatementKind::Ddl => 5,
        StatementKind::Admin => 6,
    }
}

pub(crate) fn kind_index(kind: PrincipalKind) -> usize {
    match kind {
        PrincipalKind::Agent => 0,
        PrincipalKind::Human => 1,
        PrincipalKind::Service => 2,
    }
}

/// Names resolved once, so `decide` never parses one.
#[derive(Debug)]
pub(crate) struct Names {
    pub principal_types: [EntityTypeName; 3],
    pub group: EntityTypeName,
    pub connection: EntityTypeName,
    pub actions: Vec<EntityUid>,
}

pub(crate) fn build() -> Result<(Schema, Names), PolicyError> {
    let (schema, _warnings) =
        Schema::from_cedarschema_str(SCHEMA_TEXT).map_err(|e| PolicyError::Schema(e.to_string()))?;
    let ty = |name: &str| EntityTypeName::from_str(name).map_err(|e| PolicyError::Schema(e.to_string()));
    let action_type = ty("Sluice::Action")?;
    let names = Names {
        principal_types: [ty("Sluice::Agent")?, ty("Sluice::Human")?, ty("Sluice::Service")?],
        group: ty("Sluice::Group")?,
        connection: ty("Sluice::Connection")?,
        actions: SQL_ACTIONS
            .iter()
            .map(|a| EntityUid::from_type_name_and_id(action_type.clone(), EntityId::new(a)))
            .collect(),
    };
    Ok((schema, names))
}
