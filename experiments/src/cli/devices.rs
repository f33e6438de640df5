//! `hwnas devices`: every device on every adb server, with identity and thermal state.

use anyhow::{bail, Result};
use latency::adb::{device_problem, list_devices, AdbTarget, DeviceLine, ServerDevices, DEFAULT_SERVER};
use latency::error::Chain;
use latency::target::{DeviceInfo, Target};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// An adb server as HOST:PORT (repeatable; default: the local server 127.0.0.1:5037,
    /// which is started like `adb devices` would if it is not running).
    #[arg(long = "adb", value_name = "HOST:PORT", value_parser = latency::adb::host::check_address)]
    servers: Vec<String>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

/// One listed device and, when it is online, what it reported about itself.
struct Row {
    server: String,
    line: DeviceLine,
    info: Option<Result<DeviceInfo, String>>,
}

pub fn run(args: Args) -> Result<()> {
    let servers = if args.servers.is_empty() {
        latency::adb::host::ensure_local_server(DEFAULT_SERVER);
        vec![DEFAULT_SERVER.to_string()]
    } else {
        args.servers.clone()
    };
    let listed = list_devices(&servers);
    let rows = describe(&listed);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&to_json(&listed, &rows))?);
    } else {
        print_table(&listed, &rows);
    }
    if listed.iter().all(|s| s.devices.is_err()) {
        bail!("no adb server answered ({})", servers.join(", "));
    }
    Ok(())
}

/// Reads identity and state of every online device, all devices at once.
fn describe(listed: &[ServerDevices]) -> Vec<Row> {
    let pending: Vec<(String, DeviceLine)> = listed
        .iter()
        .filter_map(|s| s.devices.as_ref().ok().map(|d| (s.server.clone(), d.clone())))
        .flat_map(|(server, devices)| devices.into_iter().map(move |d| (server.clone(), d)))
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = pending
            .into_iter()
            .map(|(server, line)| {
                scope.spawn(move || {
                    let info = (line.state == "device").then(|| {
                        AdbTarget::new(&server, &line.serial).and_then(|t| t.info()).map_err(|e| e.to_string())
                    });
                    Row { server, line, info }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("device probe panicked")).collect()
    })
}

fn mhz(khz: Option<u64>) -> String {
    khz.map_or("-".into(), |k| format!("{}", k / 1000))
}

/// `cur` as a range over cores and the highest `max`, in MHz.
fn freq_summary(i: &DeviceInfo) -> String {
    let cur: Vec<u64> = i.cur_freq_khz.iter().flatten().copied().collect();
    let max = i.max_freq_khz.iter().flatten().copied().max();
    let cur = match (cur.iter().min(), cur.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => mhz(Some(*lo)),
        (Some(lo), Some(hi)) => format!("{}-{}", lo / 1000, hi / 1000),
        _ => "-".into(),
    };
    if cur == "-" && max.is_none() {
        return "-".into();
    }
    format!("{cur}/{} MHz", mhz(max))
}

fn print_table(listed: &[ServerDevices], rows: &[Row]) {
    let header = ["SERVER", "SERIAL", "STATE", "MODEL", "SOC", "ABI", "CORES", "FREQ cur/max", "GOVERNOR", "TEMP"];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    let mut notes = Vec::new();
    for s in listed {
        if let Err(e) = &s.devices {
            notes.push(Chain(e).to_string()); // already names the server
        } else if s.devices.as_ref().is_ok_and(|d| d.is_empty()) {
            notes.push(format!("{}: no devices attached", s.server));
        }
    }
    for r in rows {
        let mut cells = vec![r.server.clone(), r.line.serial.clone(), r.line.state.clone()];
        match &r.info {
            Some(Ok(i)) => cells.extend([
                i.model.clone(),
                i.soc.clone(),
                i.abi.clone(),
                i.cores.to_string(),
                freq_summary(i),
                i.governor.clone().unwrap_or_else(|| "-".into()),
                i.temperature_c.map_or("-".into(), |t| format!("{t:.1} C")),
            ]),
            other => {
                cells.push(r.line.model.clone().unwrap_or_else(|| "-".into()));
                cells.extend(std::iter::repeat_n("-".to_string(), 6));
                match other {
                    Some(Err(e)) => notes.push(e.clone()), // names the device
                    _ => notes.extend(
                        device_problem(&r.server, &r.line.serial, &r.line.state)
                            .map(|p| format!("{}: {p}", r.line.serial)),
                    ),
                }
            }
        }
        table.push(cells);
    }
    if table.len() > 1 {
        let widths: Vec<usize> =
            (0..header.len()).map(|c| table.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        for row in &table {
            let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            outln!("{}", line.join("  ").trim_end());
        }
    }
    for n in notes {
        outln!("{n}");
    }
}

fn to_json(listed: &[ServerDevices], rows: &[Row]) -> serde_json::Value {
    let servers: Vec<_> = listed
        .iter()
        .map(|s| {
            let devices: Vec<_> = rows
                .iter()
                .filter(|r| r.server == s.server)
                .map(|r| {
                    json!({
                        "serial": r.line.serial,
                        "state": r.line.state,
                        "problem": device_problem(&r.server, &r.line.serial, &r.line.state),
                        "product": r.line.product,
                        "transport_id": r.line.transport_id,
                        "info": r.info.as_ref().and_then(|i| i.as_ref().ok()),
                        "info_error": r.info.as_ref().and_then(|i| i.as_ref().err()),
                    })
                })
                .collect();
            let error = s.devices.as_ref().err().map(|e| Chain(e).to_string());
            json!({ "server": s.server, "error": error, "devices": devices })
        })
        .collect();
    json!({ "servers": servers })
}
