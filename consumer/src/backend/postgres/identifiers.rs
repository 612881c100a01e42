//! PostgreSQL's identifier limit: a schema, table or column name longer than
//! [`MAX_IDENTIFIER_BYTES`] is refused (an error naming the table) rather than silently
//! truncated by PostgreSQL into another name.

use crate::backend::{downstream_error, Unit};
use crate::ddl::DdlOp;
use crate::error::Result;
use cdc_common::TableDef;

/// PostgreSQL's identifier length (NAMEDATALEN - 1 bytes). It truncates longer identifiers
/// silently, so two long names sharing their first 63 bytes would be one object: such names
/// are refused instead.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The schema, table and column names of a definition, each with the table for errors.
fn def_names<'a>(d: &'a TableDef, names: &mut Vec<(&'a str, String)>) {
    let t = d.name().to_string();
    names.push((d.schema.as_str(), t.clone()));
    names.push((d.table.as_str(), t.clone()));
    for c in &d.columns {
        names.push((c.name.as_str(), t.clone()));
    }
}

/// Refuses a unit naming a schema, table or column PostgreSQL would truncate.
pub(super) fn check_identifiers(unit: &Unit<'_>) -> Result<()> {
    let mut names: Vec<(&str, String)> = Vec::new();
    if let Some(d) = unit.table {
        def_names(d, &mut names);
    }
    for op in unit.ddl {
        let t = op.target();
        match op {
            DdlOp::CreateSchema(s) | DdlOp::DropSchema { schema: s, .. } => {
                names.push((s.as_str(), t))
            }
            DdlOp::CreateTable(d) => def_names(d, &mut names),
            DdlOp::DropTable(n) | DdlOp::TruncateTable(n) => {
                names.push((n.schema.as_str(), t.clone()));
                names.push((n.table.as_str(), t));
            }
            DdlOp::RenameTable { from, to } => {
                for n in [from, to] {
                    names.push((n.schema.as_str(), t.clone()));
                    names.push((n.table.as_str(), t.clone()));
                }
            }
            DdlOp::AddColumn { column, .. } | DdlOp::ModifyColumn { column, .. } => {
                names.push((column.name.as_str(), t))
            }
            DdlOp::DropColumn { column, .. } => names.push((column.as_str(), t)),
            DdlOp::RenameColumn { from, to, .. } => {
                names.push((from.as_str(), t.clone()));
                names.push((to.as_str(), t));
            }
        }
    }
    match names
        .into_iter()
        .find(|(n, _)| n.len() > MAX_IDENTIFIER_BYTES)
    {
        Some((n, table)) => Err(downstream_error(
            &table,
            unit.file,
            "identifier",
            format!(
                "`{}` is {} bytes, longer than PostgreSQL's {MAX_IDENTIFIER_BYTES}-byte \
                 identifiers (PostgreSQL would truncate it and could merge it with another name)",
                n.escape_debug(),
                n.len()
            ),
        )),
        None => Ok(()),
    }
}
