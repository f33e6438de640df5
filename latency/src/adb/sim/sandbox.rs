//! Where the simulated phone keeps its files, and how device paths map to host paths.
//!
//! The Android storage roots `/data`, `/sdcard`, `/storage`, `/system` and `/vendor` live
//! under the sandbox directory `ROOT`: device `/data/local/tmp/x` is host `ROOT/data/local/tmp/x`.
//! Every other path (`/sys`, `/proc`, `/dev`, `/bin`, `/tmp`, ...) is the host's own, so
//! `/sys/devices/system/cpu/*` and `/sys/class/thermal` report the real host CPUs.
//! Shell commands see the same mapping: device roots in the command text are rewritten to
//! their sandbox paths before `sh -c` runs it.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Device directories that live inside the sandbox.
pub const SANDBOXED_ROOTS: [&str; 5] = ["/data", "/sdcard", "/storage", "/system", "/vendor"];

/// The identity the simulated phone reports through `getprop` and its CNXN banner.
#[derive(Clone, Debug)]
pub struct Identity {
    pub model: String,
    /// `ro.product.name` / `ro.product.device`, shown by `adb devices -l`.
    pub product: String,
    pub board: String,
    pub soc: String,
    pub abi: String,
    pub serialno: String,
    /// Features announced in the CNXN banner; without `shell_v2` hosts fall back to the
    /// v1 shell (stderr merged into stdout, no exit code), like phones before Android 7.
    pub features: String,
    /// Extra `key=value` properties (override the ones above).
    pub props: Vec<(String, String)>,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            model: "hwnas-sim".into(),
            product: "hwnas_sim".into(),
            board: "hwnas".into(),
            soc: "simulated".into(),
            abi: host_abi().into(),
            serialno: "HWNASSIM0001".into(),
            features: "shell_v2,cmd".into(),
            props: Vec::new(),
        }
    }
}

impl Identity {
    /// All properties in `getprop` order (later entries win on lookup).
    pub fn properties(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = [
            ("ro.product.model", self.model.as_str()),
            ("ro.product.name", &self.product),
            ("ro.product.device", &self.product),
            ("ro.product.board", &self.board),
            ("ro.board.platform", &self.board),
            ("ro.soc.model", &self.soc),
            ("ro.hardware", &self.board),
            ("ro.product.cpu.abi", &self.abi),
            ("ro.product.manufacturer", "hwnas"),
            ("ro.serialno", &self.serialno),
            ("ro.build.version.release", "14"),
            ("ro.build.version.sdk", "34"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in &self.props {
            p.retain(|(key, _)| key != k);
            p.push((k.clone(), v.clone()));
        }
        p
    }

    /// The CNXN banner: the adb server shows these fields in `adb devices -l`.
    pub fn banner(&self) -> String {
        let clean = |s: &str| s.replace([';', ' ', '='], "_");
        format!(
            "device::ro.product.name={};ro.product.model={};ro.product.device={};features={}",
            clean(&self.product),
            clean(&self.model),
            clean(&self.product),
            self.features.replace([';', ' '], "")
        )
    }
}

/// The Android ABI name of the host CPU (what a phone with this CPU would report).
pub fn host_abi() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64-v8a",
        "arm" => "armeabi-v7a",
        "x86" => "x86",
        _ => "x86_64",
    }
}

/// The sandbox directory and the device-to-host path mapping.
#[derive(Clone, Debug)]
pub struct Sandbox {
    root: PathBuf,
}

impl Sandbox {
    /// Creates the sandbox layout under `root`: the storage roots, the scratch directory
    /// `/data/local/tmp`, and `/system/bin/getprop` answering from `/system/build.prop`.
    pub fn create(root: &Path, identity: &Identity) -> io::Result<Sandbox> {
        fs::create_dir_all(root)?;
        let root = fs::canonicalize(root)?;
        let root_str = root.to_str().ok_or_else(|| io::Error::other("sandbox path is not UTF-8"))?;
        if root_str.contains(['\'', '\n']) {
            return Err(io::Error::other("sandbox path must not contain quotes or newlines"));
        }
        let sandbox = Sandbox { root };
        for dir in ["/data/local/tmp", "/sdcard", "/storage/emulated/0", "/system/bin", "/vendor"] {
            fs::create_dir_all(sandbox.host_path(dir))?;
        }
        let mut props = String::new();
        for (k, v) in identity.properties() {
            writeln!(props, "{k}={v}").unwrap();
        }
        fs::write(sandbox.host_path("/system/build.prop"), props)?;
        let getprop = sandbox.host_path("/system/bin/getprop");
        fs::write(&getprop, getprop_script(&sandbox.host_path("/system/build.prop")))?;
        set_mode(&getprop, 0o755)?;
        Ok(sandbox)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of a device path (sandboxed roots inside ROOT, all else unchanged).
    pub fn host_path(&self, device: &str) -> PathBuf {
        match sandboxed_root(device) {
            Some(_) => PathBuf::from(format!("{}{}", self.root.display(), device)),
            None => PathBuf::from(device),
        }
    }

    /// True where a device path may be written through sync (only inside the sandbox).
    pub fn writable(&self, device: &str) -> bool {
        sandboxed_root(device).is_some() && !device.split('/').any(|c| c == "..")
    }

    /// Rewrites device storage paths in a command line to their sandbox paths.
    /// A root matches only at the start of a path word: after start of text, whitespace,
    /// a quote, `=`, `:`, `(`, `;`, `|`, `&`, `<` or `>`; and only as a whole component.
    pub fn map_command(&self, command: &str) -> String {
        let root = self.root.to_str().expect("checked UTF-8 at creation");
        let bytes = command.as_bytes();
        let mut out = String::with_capacity(command.len());
        let mut i = 0;
        while i < bytes.len() {
            let boundary = i == 0 || b" \t\n'\"=:(;|&<>".contains(&bytes[i - 1]);
            if boundary && bytes[i] == b'/' {
                if let Some(r) = sandboxed_root(&command[i..]) {
                    out.push_str(root);
                    out.push_str(r);
                    i += r.len();
                    continue;
                }
            }
            let ch = command[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }
}

/// The sandboxed root a path starts with, as a whole component.
fn sandboxed_root(path: &str) -> Option<&'static str> {
    SANDBOXED_ROOTS.into_iter().find(|r| {
        path.starts_with(r)
            && path[r.len()..].chars().next().is_none_or(|c| !(c.is_alphanumeric() || "_.-".contains(c)))
    })
}

fn getprop_script(build_prop: &Path) -> String {
    format!(
        r#"#!/bin/sh
# getprop of the hwnas-adbd phone simulator: answers from {props}
if [ $# -eq 0 ]; then
  awk '{{ i = index($0, "="); if (i > 0) printf "[%s]: [%s]\n", substr($0, 1, i - 1), substr($0, i + 1) }}' '{props}'
  exit 0
fi
awk -v key="$1" -v dflt="${{2-}}" '
  {{ i = index($0, "="); if (i > 0 && substr($0, 1, i - 1) == key) v = substr($0, i + 1); }}
  END {{ if (v == "") v = dflt; print v }}' '{props}'
"#,
        props = build_prop.display()
    )
}

pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> Sandbox {
        Sandbox { root: PathBuf::from("/r") }
    }

    #[test]
    fn paths_map_by_whole_component() {
        let s = sandbox();
        assert_eq!(s.host_path("/data/local/tmp/m.tflite"), PathBuf::from("/r/data/local/tmp/m.tflite"));
        assert_eq!(s.host_path("/data"), PathBuf::from("/r/data"));
        assert_eq!(s.host_path("/database/x"), PathBuf::from("/database/x"));
        assert_eq!(s.host_path("/sys/class/thermal"), PathBuf::from("/sys/class/thermal"));
        assert!(s.writable("/sdcard/a") && !s.writable("/sys/x") && !s.writable("/data/../etc/passwd"));
    }

    #[test]
    fn commands_are_rewritten_only_at_path_starts() {
        let s = sandbox();
        assert_eq!(
            s.map_command("cd /data/local/tmp && ./b --graph=/data/local/tmp/m.tflite >'/sdcard/o' 2>/dev/null"),
            "cd /r/data/local/tmp && ./b --graph=/r/data/local/tmp/m.tflite >'/r/sdcard/o' 2>/dev/null"
        );
        assert_eq!(s.map_command("cat /sys/x /home/data/y /datax"), "cat /sys/x /home/data/y /datax");
        assert_eq!(s.map_command("ls /system"), "ls /r/system");
    }

    #[test]
    fn banner_and_properties() {
        let id = Identity {
            model: "Pixel 4".into(),
            props: vec![("ro.soc.model".into(), "SM8150".into())],
            ..Default::default()
        };
        assert!(id.banner().contains("ro.product.model=Pixel_4;"));
        let props = id.properties();
        assert_eq!(props.iter().filter(|(k, _)| k == "ro.soc.model").count(), 1);
        assert!(props.contains(&("ro.soc.model".into(), "SM8150".into())));
    }
}
