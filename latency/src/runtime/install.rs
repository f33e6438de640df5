//! Pushing a runtime binary once per device: its device path contains its
//! SHA-256, so a changed binary gets a new path and an unchanged one is reused.

use super::RuntimeError;
use crate::target::Target;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_file(path: &Path) -> Result<String, RuntimeError> {
    let bytes =
        std::fs::read(path).map_err(|source| RuntimeError::File { action: "read", path: path.into(), source })?;
    Ok(sha256_hex(&bytes))
}

const SHELL_TIMEOUT: Duration = Duration::from_secs(60);

/// Installs `local` as `{scratch}/bin/{sha256}/{name}` unless it is already there.
/// The push goes to a `.part-…` file renamed into place, so a push cut short is never taken for the binary.
pub fn install_binary(target: &dyn Target, local: &Path, sha256: &str, name: &str) -> Result<String, RuntimeError> {
    install(target, sha256, name, &local.display().to_string(), |part| target.push(local, part))
}

/// [`install_binary`] of a file held in memory (a script, a launcher): written to a host
/// staging file only when the device does not have it yet.
pub fn install_bytes(target: &dyn Target, bytes: &[u8], sha256: &str, name: &str) -> Result<String, RuntimeError> {
    install(target, sha256, name, name, |part| {
        let staging = std::env::temp_dir().join(format!("hwnas-install-{}-{}-{name}", std::process::id(), nanos()));
        target.push_bytes(bytes, &staging, part)
    })
}

fn nanos() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos())
}

/// Installs what `put` pushes to a device path as `{scratch}/bin/{sha256}/{name}` unless it
/// is already there; `what` names it in errors.
fn install(
    target: &dyn Target,
    sha256: &str,
    name: &str,
    what: &str,
    put: impl FnOnce(&str) -> Result<(), crate::target::TargetError>,
) -> Result<String, RuntimeError> {
    let dir = format!("{}/bin/{sha256}", target.scratch_dir());
    let path = format!("{dir}/{name}");
    let run = |argv: &[&str]| {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        target.run(&argv, SHELL_TIMEOUT)
    };
    if run(&["test", "-x", &path])?.exit_code == 0 {
        return Ok(path);
    }
    // Unique, so hwnas processes installing the same binary at once do not trip over each other.
    let part = format!("{path}.part-{}-{}", std::process::id(), nanos());
    let mkdir = run(&["mkdir", "-p", &dir])?;
    if mkdir.exit_code != 0 {
        return Err(RuntimeError::Setup(format!("{}: cannot create {dir}: {}", target.id(), super::excerpt(&mkdir))));
    }
    put(&part)?;
    for argv in [&["chmod", "755", &part][..], &["mv", "-f", &part, &path][..]] {
        let out = run(argv)?;
        if out.exit_code != 0 {
            return Err(RuntimeError::Setup(format!(
                "{}: `{}` failed while installing {what}: {}",
                target.id(),
                argv.join(" "),
                super::excerpt(&out)
            )));
        }
    }
    Ok(path)
}
