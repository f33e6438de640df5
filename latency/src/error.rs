//! Errors are `thiserror` enums, one per area (`ProfileError`, `JournalError`, `AdbError`,
//! `DeviceLockError`, `RuntimeError`, `TargetError`, …), each keeping the error it comes from
//! (io, serde, polars, another area's) as its `source()` and not repeating that text in its
//! own message. [`Chain`] writes the whole chain where an error becomes text inside the
//! library (a record's failure in `errors.jsonl`, why a device stopped).

use std::error::Error;
use std::fmt;

/// An error and its sources, `outer: inner: innermost` (as `anyhow` prints `{:#}`).
pub struct Chain<'a>(pub &'a (dyn Error + 'a));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write {0}")]
    struct Outer(&'static str, #[source] std::io::Error);

    #[test]
    fn chains_name_every_source_once() {
        let e = Outer("a.json", std::io::Error::other("disk full"));
        assert_eq!(e.to_string(), "cannot write a.json");
        assert_eq!(Chain(&e).to_string(), "cannot write a.json: disk full");
    }
}
