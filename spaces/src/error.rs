use thiserror::Error;

/// Why an architecture could not be read or is not a member of its space. The
/// message always names the offending field.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ArchError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("field `{field}`: {problem}")]
    Field { field: String, problem: String },
    #[error("unknown space `{0}` (known: {1})")]
    UnknownSpace(String, String),
    #[error("unknown preset `{0}` (known: {1})")]
    UnknownPreset(String, String),
    #[error("{0}")]
    Other(String),
}

impl ArchError {
    pub fn field(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ArchError::Field { field: field.into(), problem: problem.into() }
    }
}
