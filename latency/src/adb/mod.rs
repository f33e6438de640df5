//! Phones over ADB: [`AdbTarget`] runs commands and pushes files through an adb server,
//! [`list_devices`] discovers devices on any number of servers, and [`sim`] simulates a phone.

pub mod host;
pub mod info;
pub mod sim;
mod target;

pub use host::{
    connect, device_problem, disconnect, reconnect_advice, state_problem, AdbError, AddressError, DeviceLine,
    DEFAULT_SERVER,
};
pub use target::AdbTarget;

use std::time::Duration;

/// How long discovery waits for one server before calling it unreachable.
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// What one adb server reported.
#[derive(Debug)]
pub struct ServerDevices {
    /// `host:port` as given.
    pub server: String,
    /// The devices it lists (any state), or why the server could not be asked.
    pub devices: Result<Vec<DeviceLine>, AdbError>,
}

/// Lists the devices of every server, asking all servers at once so an unreachable
/// one costs at most [`DISCOVERY_TIMEOUT`]. Results keep the order of `servers`.
pub fn list_devices(servers: &[String]) -> Vec<ServerDevices> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = servers
            .iter()
            .map(|server| {
                scope.spawn(move || ServerDevices {
                    server: server.clone(),
                    devices: host::request(server, "host:devices-l", DISCOVERY_TIMEOUT)
                        .map(|t| host::parse_devices(&t)),
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("discovery thread panicked")).collect()
    })
}
