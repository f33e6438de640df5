//! The device state a model may start in: the pinned cores at an expected frequency, the
//! hottest thermal zone at most a limit. hwnas checks it before each batch (and before each
//! model timed one per invocation); inside a batch the runner checks it before each model and
//! waits while it is not met: the cool-down is triggered by the readings, not a fixed sleep.
//! Both sides use [`Window::check`], so they agree on what is out of the window.

use serde::{Deserialize, Serialize};

/// Frequencies and temperature read from sysfs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    /// Each core's current frequency (kHz), `None` where unreadable.
    pub cur_freq_khz: Vec<Option<u64>>,
    /// The hottest readable thermal zone (°C).
    pub temperature_c: Option<f64>,
}

/// What a model may start in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// The frequency the checked cores must run at (kHz).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_freq_khz: Option<u64>,
    /// The cores whose frequency is checked; empty: every core.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<usize>,
    /// An absolute temperature limit (°C); an unreadable temperature flags the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_temp_c: Option<f64>,
    /// A relative one: at most `rise` °C above `start`, the device's temperature when the run
    /// began (so the table's models see the same thermal state). Applies where readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rise: Option<Rise>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rise {
    pub start_c: f64,
    pub rise_c: f64,
}

impl Window {
    /// Whether anything is checked at all.
    pub fn is_open(&self) -> bool {
        self.expect_freq_khz.is_none() && self.max_temp_c.is_none() && self.rise.is_none()
    }

    /// Why a model should not start now: conditions worth waiting for, and checks that
    /// cannot be made (an unreadable sensor does not start working by waiting, so those flag
    /// the record at once). Both empty when it may start.
    pub fn check(&self, r: &Reading) -> (Vec<String>, Vec<String>) {
        let (mut wait, mut unreadable) = (Vec::new(), Vec::new());
        if let Some(want) = self.expect_freq_khz {
            let cpus: Vec<usize> =
                if self.cpus.is_empty() { (0..r.cur_freq_khz.len()).collect() } else { self.cpus.clone() };
            if cpus.is_empty() {
                unreadable.push(format!("no CPU frequency readable, expected {want} kHz"));
            }
            for c in cpus {
                match r.cur_freq_khz.get(c).copied().flatten() {
                    Some(f) if f == want => {}
                    Some(f) => wait.push(format!("cpu{c} at {f} kHz, expected {want} kHz")),
                    None => unreadable.push(format!("cpu{c} frequency unreadable, expected {want} kHz")),
                }
            }
        }
        if let Some(limit) = self.max_temp_c {
            match r.temperature_c {
                Some(t) if t > limit => wait.push(format!("temperature {t:.1} °C above {limit:.1} °C")),
                Some(_) => {}
                None => unreadable.push(format!("temperature unreadable (limit {limit:.1} °C)")),
            }
        }
        if let (Some(rise), Some(t)) = (self.rise, r.temperature_c) {
            let limit = rise.start_c + rise.rise_c;
            let over_absolute = self.max_temp_c.is_some_and(|m| t > m);
            if t > limit && !over_absolute {
                wait.push(format!(
                    "temperature {t:.1} °C, more than {:.1} °C above the run's start ({:.1} °C)",
                    rise.rise_c, rise.start_c
                ));
            }
        }
        (wait, unreadable)
    }
}

/// The cool-down before a model: reads the device (`read`) and, while the reading is outside
/// `window`, sleeps `poll` and reads again, for at most `limit`. The reading the model starts
/// with, and how long it waited (zero when the first reading was inside the window).
pub fn wait_for(
    window: &Window,
    limit: std::time::Duration,
    poll: std::time::Duration,
    mut read: impl FnMut() -> Reading,
    mut sleep: impl FnMut(std::time::Duration),
) -> (Reading, std::time::Duration) {
    let mut r = read();
    let mut waited = std::time::Duration::ZERO;
    while !window.check(&r).0.is_empty() && waited < limit {
        sleep(poll);
        waited += poll;
        r = read();
    }
    (r, waited)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_cool_down_waits_while_hot_and_gives_up_at_the_limit() {
        let w = Window { rise: Some(Rise { start_c: 38.0, rise_c: 3.0 }), ..Default::default() };
        let temps = std::cell::RefCell::new(vec![44.0, 43.0, 42.0, 40.5, 39.0].into_iter());
        let read = || Reading { cur_freq_khz: vec![], temperature_c: temps.borrow_mut().next() };
        let slept = std::cell::Cell::new(0);
        let (r, waited) =
            wait_for(&w, Duration::from_secs(60), Duration::from_millis(100), read, |_| slept.set(slept.get() + 1));
        assert_eq!((r.temperature_c, waited, slept.get()), (Some(40.5), Duration::from_millis(300), 3));
        // Cool already: no wait at all.
        let (_, waited) =
            wait_for(&w, Duration::from_secs(60), Duration::from_millis(100), || reading(&[], Some(30.0)), |_| {});
        assert_eq!(waited, Duration::ZERO);
        // Never cools: it stops at the limit, with the last (hot) reading for the host to flag.
        let (r, waited) =
            wait_for(&w, Duration::from_millis(250), Duration::from_millis(100), || reading(&[], Some(50.0)), |_| {});
        assert_eq!((r.temperature_c, waited), (Some(50.0), Duration::from_millis(300)));
        assert!(!w.check(&r).0.is_empty());
    }

    fn reading(freqs: &[Option<u64>], temp: Option<f64>) -> Reading {
        Reading { cur_freq_khz: freqs.to_vec(), temperature_c: temp }
    }

    #[test]
    fn pinned_cores_at_frequency_and_cool() {
        let w = Window { expect_freq_khz: Some(2419200), cpus: vec![4, 5, 6], max_temp_c: Some(40.0), rise: None };
        let hot = reading(&[Some(300000), None, None, None, Some(2419200), Some(1785600), Some(2419200)], Some(44.5));
        assert_eq!(
            w.check(&hot).0,
            vec!["cpu5 at 1785600 kHz, expected 2419200 kHz", "temperature 44.5 °C above 40.0 °C"]
        );
        let ok = reading(&[None, None, None, None, Some(2419200), Some(2419200), Some(2419200)], Some(35.0));
        assert_eq!(w.check(&ok), (vec![], vec![]));
        let (wait, unreadable) = w.check(&reading(&[], None));
        assert!(wait.is_empty());
        assert_eq!(unreadable.len(), 4, "{unreadable:?}");
        assert_eq!(Window::default().check(&hot), (vec![], vec![]));
        assert!(Window::default().is_open());
    }

    #[test]
    fn the_rise_rule_waits_where_readable_and_never_flags_an_unreadable_sensor() {
        let w = Window { rise: Some(Rise { start_c: 38.0, rise_c: 3.0 }), ..Default::default() };
        assert_eq!(w.check(&reading(&[], Some(41.0))), (vec![], vec![]));
        assert_eq!(
            w.check(&reading(&[], Some(41.5))).0,
            vec!["temperature 41.5 °C, more than 3.0 °C above the run's start (38.0 °C)"]
        );
        assert_eq!(w.check(&reading(&[], None)), (vec![], vec![]));
        // With an absolute limit too, one reason is given for one temperature.
        let both = Window { max_temp_c: Some(40.0), ..w };
        assert_eq!(both.check(&reading(&[], Some(42.0))).0, vec!["temperature 42.0 °C above 40.0 °C"]);
    }

    #[test]
    fn windows_round_trip_through_a_manifest() {
        let w = Window {
            expect_freq_khz: Some(1),
            cpus: vec![3],
            max_temp_c: None,
            rise: Some(Rise { start_c: 30.0, rise_c: 3.0 }),
        };
        let text = serde_json::to_string(&w).unwrap();
        assert!(!text.contains("max_temp_c"), "{text}");
        assert_eq!(serde_json::from_str::<Window>(&text).unwrap(), w);
    }
}
