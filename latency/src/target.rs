//! Where models are timed: a phone behind an adb server, or the host itself.
//! Profiling is written against [`Target`] only, so every runtime and the
//! measurement protocol work the same on a phone, the simulator and `local`.

use std::path::Path;
use std::time::Duration;

/// What a command printed and how it ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

/// Why a target could not do what was asked. Every variant names the device.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{device}: unreachable: {why}")]
    Unreachable { device: String, why: String },
    #[error("{device}: `{command}` did not finish within {timeout:?}")]
    Timeout { device: String, command: String, timeout: Duration },
    #[error("{device}: {why}")]
    Failed { device: String, why: String },
}

/// Identity and state of a device, read before profiling and stored with every record.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeviceInfo {
    pub serial: String,
    /// `host:port` of the adb server, or `local`.
    pub server: String,
    pub model: String,
    pub soc: String,
    pub abi: String,
    pub cores: u32,
    /// Current frequency of each core in kHz (None where unreadable).
    pub cur_freq_khz: Vec<Option<u64>>,
    pub max_freq_khz: Vec<Option<u64>>,
    pub governor: Option<String>,
    /// Highest readable thermal-zone temperature in degrees Celsius.
    pub temperature_c: Option<f64>,
}

/// A device that can store files and run commands.
pub trait Target: Send + Sync {
    /// Stable identifier, e.g. the adb serial or `local`.
    fn id(&self) -> String;
    /// Runs `argv` (each argument quoted for the device shell, so no value can inject a command).
    fn run(&self, argv: &[String], timeout: Duration) -> Result<Output, TargetError>;
    /// Like [`Target::run`], and hands each complete stdout line to `on_line` as it arrives
    /// (a batch's records are journaled while the batch goes on). The default feeds the lines
    /// once the command has finished; `local` and adb stream them.
    fn run_lines(
        &self,
        argv: &[String],
        timeout: Duration,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Output, TargetError> {
        let out = self.run(argv, timeout)?;
        out.stdout.lines().for_each(&mut *on_line);
        Ok(out)
    }
    /// Copies a host file to `remote` (an absolute device path).
    fn push(&self, local: &Path, remote: &str) -> Result<(), TargetError>;
    /// Writes `bytes` to `remote` on the device. The default writes them to the host file
    /// `staging`, pushes it and removes it; `local` writes the file in place.
    fn push_bytes(&self, bytes: &[u8], staging: &Path, remote: &str) -> Result<(), TargetError> {
        std::fs::write(staging, bytes).map_err(|e| TargetError::Failed {
            device: self.id(),
            why: format!("cannot write {}: {e}", staging.display()),
        })?;
        let pushed = self.push(staging, remote);
        let _ = std::fs::remove_file(staging);
        pushed
    }
    /// A writable scratch directory on the device (e.g. /data/local/tmp/hwnas).
    fn scratch_dir(&self) -> String;
    fn info(&self) -> Result<DeviceInfo, TargetError>;
}

/// Quotes one argument for a POSIX shell: `'…'` with embedded quotes escaped.
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b)) {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// The shell command line for `argv`.
pub fn shell_line(argv: &[String]) -> String {
    argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_defeats_injection() {
        assert_eq!(shell_quote("/data/local/tmp/m.tflite"), "/data/local/tmp/m.tflite");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("x'; rm -rf /; echo '"), r"'x'\''; rm -rf /; echo '\'''");
        assert_eq!(shell_quote(""), "''");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_line(&["$(echo pwned)`id`;|&".to_string()])))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "$(echo pwned)`id`;|&");
    }
}
