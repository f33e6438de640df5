//! `hwnas-adbd`, a phone simulator that speaks the device side of the ADB protocol, and
//! [`SimulatedPhone`], which starts one behind a real adb server for tests and demos.

mod command;
pub mod daemon;
pub mod message;
mod phone;
pub mod sandbox;
mod stream;
mod sync;

pub use phone::{find_daemon, free_port, AdbServer, PhoneOptions, SimError, SimulatedPhone};
