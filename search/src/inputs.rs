//! Fingerprints of a job's input files (latency and accuracy predictors, datasets,
//! checkpoints): SHA-256 digests saved with the job, so that `--resume` refuses to continue
//! on an input that changed since the job started (results would mix two predictors).
//!
//! A file is digested whole (`sha256sum` gives the same digest). A directory (a dataset, a
//! supernet checkpoint) is digested as the SHA-256 of its listing of `path\tbytes\tsha256`
//! lines, hidden files (such as the job lock) left out; one whose files exceed
//! [`DIRECTORY_CONTENT_LIMIT`] in all (an ImageNet folder) lists `path\tbytes\tmtime` instead,
//! and says so in `method`.

use latency::runtime::sha256_hex;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Why an input could not be fingerprinted, or why a job cannot continue on its inputs.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{role}: cannot read {path}")]
    Read {
        role: String,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An input of the saved job that the configuration given no longer has.
    #[error(
        "cannot resume {dir}: its {role} ({path}) is no longer an input of the job (resume with the same settings)"
    )]
    Gone { dir: std::path::PathBuf, role: String, path: String },
    /// An input whose contents changed since the job started.
    #[error(transparent)]
    Changed(Box<ChangedInput>),
}

/// An input whose contents changed since the job started: both digests (first 12 hex
/// digits) and sizes.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot resume {dir}: {role} {file} changed since the job started (sha256 {then}… then, {now}… now; \
     {bytes_then} bytes then, {bytes_now} now). Put the original back to continue this job, or start a new job \
     with another --out: continuing would mix results of two different inputs"
)]
pub struct ChangedInput {
    pub dir: std::path::PathBuf,
    pub role: String,
    /// The path, and where it was if it moved.
    pub file: String,
    pub then: String,
    pub now: String,
    pub bytes_then: u64,
    pub bytes_now: u64,
}

/// Directories with more bytes than this are fingerprinted by sizes and modification times.
pub const DIRECTORY_CONTENT_LIMIT: u64 = 4 << 30;

/// One input of a job and its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDigest {
    /// What the job uses it for, e.g. "latency predictor `pixel3`".
    pub role: String,
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    /// `file`, `directory` (contents digested) or `directory-listing` (sizes and times).
    pub method: String,
}

type Listing = Vec<(String, std::path::PathBuf, std::fs::Metadata)>;

/// `role`'s file or directory `path` could not be read.
fn read_err(role: &str, path: &Path, source: std::io::Error) -> InputError {
    InputError::Read { role: role.into(), path: path.into(), source }
}

fn files_under(role: &str, root: &Path, dir: &Path, out: &mut Listing) -> Result<(), InputError> {
    for e in std::fs::read_dir(dir).map_err(|e| read_err(role, dir, e))? {
        let e = e.map_err(|e| read_err(role, dir, e))?;
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let p = e.path();
        let meta = std::fs::metadata(&p).map_err(|e| read_err(role, &p, e))?;
        if meta.is_dir() {
            files_under(role, root, &p, out)?;
        } else {
            let rel = p.strip_prefix(root).unwrap_or(&p).to_string_lossy().replace('\\', "/");
            out.push((rel, p, meta));
        }
    }
    Ok(())
}

/// The digest of the file or directory at `path`.
pub fn digest(role: &str, path: &Path) -> Result<InputDigest, InputError> {
    let meta = std::fs::metadata(path).map_err(|e| read_err(role, path, e))?;
    let (sha256, bytes, method) = if meta.is_dir() {
        let mut files = Vec::new();
        files_under(role, path, path, &mut files)?;
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let total: u64 = files.iter().map(|f| f.2.len()).sum();
        let by_content = total <= DIRECTORY_CONTENT_LIMIT;
        let mut listing = String::new();
        for (rel, p, m) in &files {
            let what = if by_content {
                let bytes = std::fs::read(p).map_err(|e| read_err(role, p, e))?;
                sha256_hex(&bytes)
            } else {
                let t = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                format!("{}", t.map_or(0, |t| t.as_nanos()))
            };
            listing.push_str(&format!("{rel}\t{}\t{what}\n", m.len()));
        }
        (sha256_hex(listing.as_bytes()), total, if by_content { "directory" } else { "directory-listing" })
    } else {
        let bytes = std::fs::read(path).map_err(|e| read_err(role, path, e))?;
        (sha256_hex(&bytes), bytes.len() as u64, "file")
    };
    Ok(InputDigest { role: role.into(), path: path.display().to_string(), sha256, bytes, method: method.into() })
}

/// The directory of a data source string (`cifar10:DIR`, `cifar100:DIR`, `imagefolder:DIR`);
/// `None` for the synthetic source.
pub fn data_dir(data: &str) -> Option<&Path> {
    let (kind, rest) = data.split_once(':')?;
    matches!(kind, "cifar10" | "cifar100" | "imagefolder").then(|| Path::new(rest))
}

/// Refuses to continue `dir`'s job when an input saved as `saved` differs from it `now`,
/// naming the file and both digests. Inputs are matched by role, so a file moved elsewhere
/// with the same contents is accepted. A job saved before fingerprints were kept (`saved`
/// empty) is accepted.
pub fn check_unchanged(dir: &Path, saved: &[InputDigest], now: &[InputDigest]) -> Result<(), InputError> {
    for old in saved {
        let Some(new) = now.iter().find(|n| n.role == old.role) else {
            return Err(InputError::Gone { dir: dir.into(), role: old.role.clone(), path: old.path.clone() });
        };
        if new.sha256 != old.sha256 {
            let file = if new.path == old.path { new.path.clone() } else { format!("{} (was {})", new.path, old.path) };
            return Err(InputError::Changed(Box::new(ChangedInput {
                dir: dir.into(),
                role: old.role.clone(),
                file,
                then: old.sha256[..12.min(old.sha256.len())].to_string(),
                now: new.sha256[..12.min(new.sha256.len())].to_string(),
                bytes_then: old.bytes,
                bytes_now: new.bytes,
            })));
        }
    }
    Ok(())
}

/// Takes the `inputs` key off a saved job config (config.json holds the fingerprints beside
/// the configuration), so that the rest reads back as the configuration.
pub fn strip(config: &mut serde_json::Value) -> Option<serde_json::Value> {
    config.as_object_mut()?.remove("inputs")
}

/// `config`'s JSON with the fingerprints under `inputs` (for config.json).
pub fn with_inputs(config: &impl Serialize, inputs: &[InputDigest]) -> serde_json::Result<String> {
    let mut v = serde_json::to_value(config)?;
    if let Some(m) = v.as_object_mut() {
        m.insert("inputs".into(), serde_json::to_value(inputs)?);
    }
    Ok(serde_json::to_string_pretty(&v)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_or_directory_is_refused_naming_it_and_both_digests() {
        let dir = std::env::temp_dir().join(format!("hwnas-inputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data/sub")).unwrap();
        let file = dir.join("lut.json");
        std::fs::write(&file, "abc").unwrap();
        let a = digest("latency predictor `x`", &file).unwrap();
        // `printf abc | sha256sum`
        assert_eq!(a.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        std::fs::write(dir.join("data/sub/b.bin"), "1").unwrap();
        std::fs::write(dir.join("data/.lock"), "owner").unwrap();
        let d = digest("accuracy data", &dir.join("data")).unwrap();
        std::fs::write(dir.join("data/.lock"), "other owner").unwrap();
        assert_eq!(digest("accuracy data", &dir.join("data")).unwrap(), d, "hidden files are not inputs");
        check_unchanged(&dir, &[a.clone(), d.clone()], &[a.clone(), d.clone()]).unwrap();
        std::fs::write(&file, "abd").unwrap();
        let b = digest("latency predictor `x`", &file).unwrap();
        let err = check_unchanged(&dir, std::slice::from_ref(&a), std::slice::from_ref(&b)).unwrap_err().to_string();
        assert!(err.contains(&file.display().to_string()) && err.contains("latency predictor `x`"), "{err}");
        assert!(err.contains(&a.sha256[..12]) && err.contains(&b.sha256[..12]), "{err}");
        std::fs::write(dir.join("data/sub/b.bin"), "2").unwrap();
        let e = digest("accuracy data", &dir.join("data")).unwrap();
        assert!(check_unchanged(&dir, &[d], &[e]).is_err());
        assert!(check_unchanged(&dir, &[], &[b]).is_ok(), "jobs saved without fingerprints resume");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
