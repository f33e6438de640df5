//! Files that must never be seen half-written: job state, checkpoint pointers, datasets.

use std::io::{Error, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: to `PATH.tmp`, fsynced, then renamed over `path`,
/// so a reader (or a run resumed after a kill) sees the old file or the new one, never a
/// part. Errors name the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    let named = |what: &str, p: &Path, e: Error| Error::new(e.kind(), format!("cannot {what} {}: {e}", p.display()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write().map_err(|e| named("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| named("move into place", path, e))
}

/// `PATH.tmp` beside `path`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("hwnas-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(!tmp_path(&path).exists());
        let e = write_atomic(&dir.join("missing/state.json"), b"x").unwrap_err();
        assert!(e.to_string().contains("missing/state.json.tmp"), "{e}");
    }
}
