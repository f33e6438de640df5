//! Reading a phone's identity and thermal/frequency state in one shell round trip.

use crate::target::DeviceInfo;

/// Prints `key=value` lines: properties, one `cpuN=cur max governor` line per core,
/// and one `temp=` line per thermal zone (values in millidegrees Celsius).
pub const INFO_SCRIPT: &str = r#"for p in ro.product.model ro.soc.model ro.board.platform ro.product.board ro.hardware ro.product.cpu.abi; do printf '%s=%s\n' "$p" "$(getprop "$p")"; done
for c in /sys/devices/system/cpu/cpu[0-9]*; do printf '%s=%s %s %s\n' "${c##*/}" "$(cat "$c/cpufreq/scaling_cur_freq" 2>/dev/null || echo -)" "$(cat "$c/cpufreq/cpuinfo_max_freq" 2>/dev/null || echo -)" "$(cat "$c/cpufreq/scaling_governor" 2>/dev/null || echo -)"; done
for z in /sys/class/thermal/thermal_zone*/temp; do [ -r "$z" ] && printf 'temp=%s\n' "$(cat "$z" 2>/dev/null)"; done
true"#;

/// One `cpuN=` line: index, current and maximum frequency (kHz), governor.
type CpuLine = (u32, Option<u64>, Option<u64>, Option<String>);

/// Builds [`DeviceInfo`] from [`INFO_SCRIPT`]'s output.
pub fn parse_info(serial: &str, server: &str, text: &str) -> DeviceInfo {
    let mut props = std::collections::HashMap::new();
    let mut cpus: Vec<CpuLine> = Vec::new();
    let mut temps = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = value.trim();
        if let Some(idx) = key.strip_prefix("cpu").and_then(|n| n.parse::<u32>().ok()) {
            let mut f = value.split_whitespace();
            let num = |s: Option<&str>| s.and_then(|s| s.parse::<u64>().ok());
            let (cur, max) = (num(f.next()), num(f.next()));
            let gov = f.next().filter(|g| *g != "-").map(str::to_string);
            cpus.push((idx, cur, max, gov));
        } else if key == "temp" {
            if let Ok(v) = value.parse::<i64>() {
                temps.push(millidegrees_to_celsius(v));
            }
        } else {
            props.insert(key.to_string(), value.to_string());
        }
    }
    cpus.sort_by_key(|c| c.0);
    let prop = |k: &str| props.get(k).filter(|v| !v.is_empty()).cloned();
    let mut governors: Vec<String> = Vec::new();
    for g in cpus.iter().filter_map(|c| c.3.clone()) {
        if !governors.contains(&g) {
            governors.push(g);
        }
    }
    DeviceInfo {
        serial: serial.to_string(),
        server: server.to_string(),
        model: prop("ro.product.model").unwrap_or_default(),
        // Android 12+ names the SoC itself; older phones only the platform or board.
        soc: ["ro.soc.model", "ro.board.platform", "ro.product.board", "ro.hardware"]
            .iter()
            .find_map(|k| prop(k))
            .unwrap_or_default(),
        abi: prop("ro.product.cpu.abi").unwrap_or_default(),
        cores: cpus.len() as u32,
        cur_freq_khz: cpus.iter().map(|c| c.1).collect(),
        max_freq_khz: cpus.iter().map(|c| c.2).collect(),
        governor: (!governors.is_empty()).then(|| governors.join(",")),
        temperature_c: temps.into_iter().filter(|t| t.is_finite()).reduce(f64::max),
    }
}

/// Thermal zones report millidegrees; a few older kernels report whole degrees.
fn millidegrees_to_celsius(v: i64) -> f64 {
    if v.abs() >= 1000 {
        v as f64 / 1000.0
    } else {
        v as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_pixel_like_answer() {
        let text = "ro.product.model=Pixel 4\nro.soc.model=\nro.board.platform=msmnile\nro.product.board=flame\n\
                    ro.hardware=flame\nro.product.cpu.abi=arm64-v8a\n\
                    cpu10=- - -\ncpu0=1785600 1785600 schedutil\ncpu1=300000 1785600 schedutil\n\
                    cpu2=- 2419200 performance\ntemp=36500\ntemp=41200\ntemp=-273000\ntemp=\n";
        let i = parse_info("s", "127.0.0.1:5037", text);
        assert_eq!(i.model, "Pixel 4");
        assert_eq!(i.soc, "msmnile");
        assert_eq!(i.abi, "arm64-v8a");
        assert_eq!(i.cores, 4);
        assert_eq!(i.cur_freq_khz, vec![Some(1785600), Some(300000), None, None]);
        assert_eq!(i.max_freq_khz[2], Some(2419200));
        assert_eq!(i.governor.as_deref(), Some("schedutil,performance"));
        assert_eq!(i.temperature_c, Some(41.2));
    }

    #[test]
    fn script_runs_in_a_posix_shell() {
        // The host has /sys too; getprop may be missing (empty values), the script must still succeed.
        let out = std::process::Command::new("sh").arg("-c").arg(INFO_SCRIPT).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("ro.product.model="));
        let i = parse_info("s", "x", &text);
        assert!(i.cores >= 1, "{text}");
    }
}
