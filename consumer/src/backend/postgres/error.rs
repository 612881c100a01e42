//! PostgreSQL driver errors shown with the server's message.

/// A driver error with the server's message: `tokio_postgres::Error` shows only `db error`
/// for a refused statement; the reason (`ERROR: null value in column ...`, its SQLSTATE and
/// detail) is in its source.
pub(super) struct PgError<'a>(pub(super) &'a tokio_postgres::Error);

impl std::fmt::Display for PgError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_db_error() {
            Some(db) => {
                write!(
                    f,
                    "{}: {} (SQLSTATE {})",
                    db.severity(),
                    db.message(),
                    db.code().code()
                )?;
                if let Some(d) = db.detail() {
                    write!(f, "; {d}")?;
                }
                Ok(())
            }
            None => {
                write!(f, "{}", self.0)?;
                let mut src = std::error::Error::source(self.0);
                while let Some(e) = src {
                    write!(f, ": {e}")?;
                    src = e.source();
                }
                Ok(())
            }
        }
    }
}
