//! How one model is measured on one device: wait for the pinned cores and the
//! temperature to settle, push the model, run rounds until the samples are stable
//! (or a round limit is hit), reject outliers, and keep everything in a [`Record`].

use super::layers::{mean_ops, LayerMap};
use super::record::{ModelId, Phases, Record, RuntimeId};
use super::stats::{keep_mask, summarize, Summary};
use crate::runtime::{parse_mask, sha256_hex, MaskError, Runtime, RuntimeError};
use crate::target::{DeviceInfo, Target, TargetError};
use hwnas_runner::window::{Reading, Rise, Window};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// How models are timed, the one type of these settings: what one runtime invocation does
/// (threads, pinning, warm-up, samples and their time floors), when rounds stop, and the
/// device state a model may start in. `hwnas profile`'s flags map onto it, a measured search
/// job saves it (the `protocol` object of its config.json; every field may be left out, and
/// files of older builds load), and jobs and runtimes read it as it is. Counts and times
/// together, as `benchmark_model` takes them: a warm-up of at least `warmup` runs (and
/// `warmup_ms` after the device was idle), then rounds of at least `runs` samples that last at
/// least `min_time_ms` and `setup_ratio` times what loading the model cost
/// (`hwnas_runner::timing`; the runner only: benchmark_model has no such flag). Why these
/// defaults: docs/profiling.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Protocol {
    /// Runtime threads (1 for single-core numbers).
    pub threads: u32,
    /// Hex CPU mask for `taskset` (e.g. `70` = CPUs 4–6), or none to leave scheduling to the OS.
    pub affinity: Option<String>,
    /// Untimed runs before the timed ones (at least)…
    pub warmup: u32,
    /// …and, after the device was idle, at least this long (ms).
    pub warmup_ms: u64,
    /// Samples per round (at least)…
    pub runs: u32,
    /// …whose timed runs last at least this long (ms)…
    pub min_time_ms: u64,
    /// …and at least this many times the model's load (runner only; 0: off).
    pub setup_ratio: u64,
    /// Extra runs that time each op of a network, for per-layer times inside networks (0: none).
    pub layer_profile_runs: u32,
    /// A fixed pause before each model (FAI-PEP: 30 s; nn-Meter: 0.2 s). Off by default: the
    /// cool-down is triggered by the readings instead (`max_temp_rise_c`, `max_temp_c`,
    /// `expect_freq_khz`), which wait only when the device needs it. Saved as `cooldown_ms`.
    #[serde(rename = "cooldown_ms", with = "millis")]
    pub cooldown: Duration,
    /// Limit on one runtime invocation (nn-Meter: 300 s per model); overrunning kills it.
    /// Saved as `timeout_s`.
    #[serde(rename = "timeout_s", with = "secs")]
    pub timeout: Duration,
    /// Rounds continue until the kept samples' coefficient of variation is at most this…
    pub max_cv: f64,
    /// …with at least this many kept samples…
    pub min_samples: usize,
    /// …or until this many rounds, after which the record is flagged unstable.
    pub max_rounds: u32,
    /// Frequency (kHz) the pinned cores must be at before timing, if known (e.g. fixed by root).
    pub expect_freq_khz: Option<u64>,
    /// Hottest thermal zone allowed before timing, in °C.
    pub max_temp_c: Option<f64>,
    /// Wait before a model while the hottest thermal zone is more than this above its reading
    /// when the device's run began (where readable; nothing to wait for where it is not).
    pub max_temp_rise_c: Option<f64>,
    /// How long to wait for frequency and temperature to settle before timing anyway (flagged).
    /// Saved as `settle_s`.
    #[serde(rename = "settle_s", with = "secs")]
    pub settle_timeout: Duration,
    /// How often an unsettled device is read again (see [`Protocol::poll`]); not saved.
    #[serde(skip)]
    pub settle_poll: Option<Duration>,
}

/// A [`Protocol`] that cannot be followed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error(transparent)]
    Affinity(#[from] MaskError),
    #[error("runs, threads, rounds and the minimum sample count must be at least 1")]
    Counts,
    #[error("the time limit per runtime invocation (timeout_s) must be above 0")]
    Timeout,
    #[error("the CV bound must be positive, got {0}")]
    MaxCv(f64),
    #[error("the allowed temperature rise (max_temp_rise_c) must be above 0 °C, got {0}")]
    TempRise(f64),
}

impl Default for Protocol {
    fn default() -> Protocol {
        Protocol {
            threads: 1,
            affinity: None,
            warmup: 2,
            warmup_ms: 20,
            runs: 50,
            min_time_ms: 50,
            setup_ratio: 15,
            layer_profile_runs: 0,
            cooldown: Duration::ZERO,
            timeout: Duration::from_secs(300),
            max_cv: 0.05,
            min_samples: 3,
            max_rounds: 5,
            expect_freq_khz: None,
            max_temp_c: None,
            max_temp_rise_c: Some(3.0),
            settle_timeout: Duration::from_secs(60),
            settle_poll: None,
        }
    }
}

impl Protocol {
    /// Counts only: `warmup` runs, then rounds of exactly `runs` samples (no time floors, no
    /// setup ratio; the protocol before those existed, and a quick one for tests).
    pub fn counts(warmup: u32, runs: u32) -> Protocol {
        Protocol { warmup, runs, warmup_ms: 0, min_time_ms: 0, setup_ratio: 0, ..Protocol::default() }
    }

    /// Checks the settings together, naming the one that is wrong.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        self.pinned_cpus()?;
        if self.runs == 0 || self.threads == 0 || self.max_rounds == 0 || self.min_samples == 0 {
            return Err(ProtocolError::Counts);
        }
        if self.timeout.is_zero() {
            return Err(ProtocolError::Timeout);
        }
        if self.max_cv.is_nan() || self.max_cv <= 0.0 {
            return Err(ProtocolError::MaxCv(self.max_cv));
        }
        if let Some(r) = self.max_temp_rise_c.filter(|r| !(r.is_finite() && *r > 0.0)) {
            return Err(ProtocolError::TempRise(r));
        }
        Ok(())
    }

    /// The CPUs the affinity mask selects (none: scheduling is left to the OS).
    pub fn pinned_cpus(&self) -> Result<Vec<usize>, MaskError> {
        match &self.affinity {
            None => Ok(Vec::new()),
            Some(mask) => parse_mask(mask),
        }
    }

    /// How often an unsettled device is read again: `settle_poll`, else every 2 s, or every
    /// second when `settle_timeout` is shorter than that.
    pub fn poll(&self) -> Duration {
        self.settle_poll.unwrap_or_else(|| Duration::from_secs(2).min(self.settle_timeout.max(Duration::from_secs(1))))
    }

    /// The device state a model may start in; `start_c` is the device's temperature when
    /// its run began (the rise rule applies only with one).
    pub fn window(&self, start_c: Option<f64>) -> Window {
        Window {
            expect_freq_khz: self.expect_freq_khz,
            cpus: self.pinned_cpus().unwrap_or_default(),
            max_temp_c: self.max_temp_c,
            rise: self.max_temp_rise_c.zip(start_c).map(|(rise_c, start_c)| Rise { start_c, rise_c }),
        }
    }

    /// Polls the device until it is settled within the window of a run that began at `start`
    /// (its first reading, taken here if none was) or `settle_timeout` passes; returns the
    /// last reading and, if it never settled or could not be checked, the reasons (which flag
    /// the record). Conditions worth waiting for are waited for; checks that cannot be made at
    /// all (an unreadable sensor does not start working by waiting) flag the record at once.
    pub fn settle_from(&self, target: &dyn Target, start: &RunStart) -> Result<(DeviceInfo, Vec<String>), TargetError> {
        let began = Instant::now();
        loop {
            let info = target.info()?;
            let window = self.window(start.observe(&info));
            let (wait, unreadable) = window.check(&reading(&info));
            if wait.is_empty() {
                return Ok((info, unreadable));
            }
            if began.elapsed() >= self.settle_timeout {
                let waited = began.elapsed().as_secs_f64();
                let why = wait.into_iter().map(|w| format!("{w} after waiting {waited:.0} s"));
                return Ok((info, why.chain(unreadable).collect()));
            }
            std::thread::sleep(self.poll());
        }
    }

    /// Whether the samples so far are enough.
    pub fn stable(&self, s: &Summary) -> bool {
        s.n_kept >= self.min_samples && s.cv <= self.max_cv
    }
}

/// A duration saved as a number of seconds (`timeout_s`, `settle_s`): whole seconds as an
/// integer, as every build wrote them, a fraction only where one was set in code.
mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        match d.subsec_nanos() {
            0 => s.serialize_u64(d.as_secs()),
            _ => s.serialize_f64(d.as_secs_f64()),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        super::duration(f64::deserialize(d)?, 1.0, "seconds")
    }
}

/// A duration saved as a number of milliseconds (`cooldown_ms`), like [`secs`].
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        match d.as_nanos() % 1_000_000 {
            0 => s.serialize_u64(d.as_millis() as u64),
            _ => s.serialize_f64(d.as_secs_f64() * 1e3),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        super::duration(f64::deserialize(d)?, 1e-3, "milliseconds")
    }
}

/// `value` `units` of `scale` seconds each, refused unless it is a finite number ≥ 0.
fn duration<E: serde::de::Error>(value: f64, scale: f64, units: &str) -> Result<Duration, E> {
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| E::custom(format!("{value} is not a duration (a number of {units}, at least 0)")))
}

/// A device reading as the window checks it.
fn reading(info: &DeviceInfo) -> Reading {
    Reading { cur_freq_khz: info.cur_freq_khz.clone(), temperature_c: info.temperature_c }
}

/// The device's temperature when its run began: the first reading of a run, kept for the
/// rise rule of every later model.
#[derive(Debug, Default)]
pub struct RunStart(OnceLock<Option<f64>>);

impl RunStart {
    /// The run's starting temperature, `info`'s if this is the run's first reading.
    pub fn observe(&self, info: &DeviceInfo) -> Option<f64> {
        *self.0.get_or_init(|| info.temperature_c)
    }
}

/// A batch's files on the device: each model's SHA-256 (its file is `<sha>.tflite` in the
/// run's models directory) and how long pushing them took (µs).
pub struct Staged {
    pub shas: Vec<String>,
    pub push_us: f64,
}

/// A model file built for a batch, and how long building it took (µs).
pub struct Built {
    pub model: ModelId,
    pub bytes: Vec<u8>,
    pub build_us: f64,
    /// The tensor → layer map of a network built for `--per-layer`.
    pub layers: Option<LayerMap>,
}

/// The device state the runner read just before a model (`cur_freq_khz`, `temperature_c` in
/// its line), in place of the batch's check.
fn reading_of(detail: &serde_json::Value, info: &mut DeviceInfo) {
    if let Some(f) = detail.get("cur_freq_khz").and_then(|f| f.as_array()) {
        info.cur_freq_khz = f.iter().map(|v| v.as_u64()).collect();
    }
    if let Some(t) = detail.get("temperature_c").and_then(|t| t.as_f64()) {
        info.temperature_c = Some(t);
    }
}

static STAGED: AtomicUsize = AtomicUsize::new(0);

/// Everything one device needs to time models.
pub struct Bench<'a> {
    pub target: &'a dyn Target,
    pub runtime: &'a dyn Runtime,
    /// Device path of the installed runtime binary.
    pub binary: String,
    pub protocol: &'a Protocol,
    /// Host directory for model files on their way to the device.
    pub staging: &'a Path,
    /// Device directory for model files: this run's own (see [`crate::device_lock`]), so no
    /// other run deletes a model this one is timing.
    pub models_dir: String,
    /// The device's first reading in this run (the rise rule's reference).
    pub start: &'a RunStart,
}

impl Bench<'_> {
    pub fn runtime_id(&self) -> RuntimeId {
        RuntimeId {
            runtime: self.runtime.name().into(),
            flags: self.runtime.flags(self.protocol),
            binary_sha256: self.runtime.binary_sha256().into(),
        }
    }

    /// Times one model file (cool-down not included: the caller pauses between models).
    pub fn measure(&self, model: &ModelId, bytes: &[u8]) -> Result<Record, RuntimeError> {
        self.measure_mapped(model, bytes, None)
    }

    /// [`Bench::measure`] of a network whose op profile is attributed to its layers by `layers`.
    pub fn measure_mapped(
        &self,
        model: &ModelId,
        bytes: &[u8],
        layers: Option<&LayerMap>,
    ) -> Result<Record, RuntimeError> {
        let start = Instant::now();
        let (device_info, mut warnings) = self.protocol.settle_from(self.target, self.start)?;
        let settled = Instant::now();
        let sha = sha256_hex(bytes);
        // Unique per measurement: device threads may stage the same model at the same time.
        let n = STAGED.fetch_add(1, Ordering::Relaxed);
        let local = self.staging.join(format!("{}-{n}-{sha}.tflite", std::process::id()));
        let remote = format!("{}/{sha}.tflite", self.models_dir);
        self.target.push_bytes(bytes, &local, &remote)?;
        let pushed_at = Instant::now();
        let timed = self.rounds(&remote);
        let ran = Instant::now();
        // Best effort: a device that just vanished fails here too, and the timing error matters more.
        let _ = self.target.run(&["rm".into(), "-f".into(), remote.clone()], Duration::from_secs(30));
        let (samples, details, timed_us, rounds) = timed?;
        let us = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e6;
        let mut phases = Phases {
            build_us: 0.0,
            settle_us: us(start, settled),
            push_us: us(settled, pushed_at),
            rounds_us: us(pushed_at, ran),
            cleanup_us: us(ran, Instant::now()),
            ..Phases::default()
        };
        phases.add_reported(&details);
        let layer_times = self.layer_times(layers, &details, &mut warnings);
        let rec = self.record(model, bytes, &sha, device_info, warnings, samples, details, rounds, phases);
        // Each round was its own invocation, with its own runs per sample; the wall time is
        // the whole measurement's.
        Ok(Record { timed_us, layer_times, wall_us: start.elapsed().as_secs_f64() * 1e6, ..rec })
    }

    /// Puts a batch's model files on the device: each distinct file (by SHA-256) that
    /// `present` (the names already in this run's models directory) lacks is pushed once and
    /// added to it. On a phone this runs while the device times the previous batch.
    pub fn stage_batch(&self, models: &[Built], present: &Mutex<HashSet<String>>) -> Result<Staged, RuntimeError> {
        let start = Instant::now();
        let shas: Vec<String> = models.iter().map(|m| sha256_hex(&m.bytes)).collect();
        let n = STAGED.fetch_add(1, Ordering::Relaxed);
        for (m, sha) in models.iter().zip(&shas) {
            let name = format!("{sha}.tflite");
            if present.lock().unwrap_or_else(|p| p.into_inner()).contains(&name) {
                continue;
            }
            let local = self.staging.join(format!("{}-{n}-{name}", std::process::id()));
            self.target.push_bytes(&m.bytes, &local, &format!("{}/{name}", self.models_dir))?;
            present.lock().unwrap_or_else(|p| p.into_inner()).insert(name);
        }
        Ok(Staged { shas, push_us: start.elapsed().as_secs_f64() * 1e6 })
    }

    /// Removes model files (names in this run's models directory) from the device and from `present`.
    pub fn remove_files(&self, names: &[String], present: &Mutex<HashSet<String>>) {
        if names.is_empty() {
            return;
        }
        let argv = ["rm".to_string(), "-f".into()]
            .into_iter()
            .chain(names.iter().map(|n| format!("{}/{n}", self.models_dir)))
            .collect::<Vec<_>>();
        // Best effort: a device that just vanished fails here too, and the timing error matters more.
        let _ = self.target.run(&argv, Duration::from_secs(30));
        let mut present = present.lock().unwrap_or_else(|p| p.into_inner());
        for n in names {
            present.remove(n);
        }
    }

    /// Times the staged `models` in one runtime invocation (see `hwnas_runner::batch`): one
    /// device check before it (waiting to settle, as for one model), the manifest pushed, and
    /// each model's result handed to `on_result` with its index in `models` as soon as its
    /// line arrives. Before each model the runner waits while its reading is outside the
    /// protocol's window (the cool-down); a record is flagged when the batch's check, or that
    /// reading, is still outside it. An error of the whole batch (the check, the manifest, the
    /// runtime) is returned after the results that came.
    pub fn measure_staged(
        &self,
        models: &[Built],
        staged: &Staged,
        on_result: &mut dyn FnMut(usize, Result<Record, RuntimeError>),
    ) -> Result<(), RuntimeError> {
        use hwnas_runner::batch::{read_line, write_manifest, Entry, Outcome};
        let start = Instant::now();
        let (device_info, warnings) = self.protocol.settle_from(self.target, self.start)?;
        let window = self.protocol.window(self.start.observe(&device_info));
        let settled = Instant::now();
        let shas = &staged.shas;
        let n = STAGED.fetch_add(1, Ordering::Relaxed);
        let p = self.protocol;
        let entries: Vec<Entry> = shas
            .iter()
            .map(|sha| Entry {
                model: format!("{sha}.tflite"),
                warmup: p.warmup as usize,
                runs: p.runs as usize,
                threads: p.threads as usize,
                max_rounds: p.max_rounds,
                cv_bound: p.max_cv,
                min_samples: p.min_samples,
                cooldown_ms: p.cooldown.as_millis() as u64,
                warmup_ms: p.warmup_ms,
                min_time_ms: p.min_time_ms,
                setup_ratio: p.setup_ratio,
                layer_profile_runs: p.layer_profile_runs as usize,
                window: window.clone(),
                settle_ms: p.settle_timeout.as_millis() as u64,
            })
            .collect();
        let manifest = format!("{}/batch-{}-{n}.jsonl", self.models_dir, std::process::id());
        let local = self.staging.join(format!("{}-{n}-manifest.jsonl", std::process::id()));
        self.target.push_bytes(write_manifest(&entries).as_bytes(), &local, &manifest)?;
        let pushed_at = Instant::now();
        let us = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e6;
        let count = models.len() as f64;
        let (settle_us, push_us) = (us(start, settled) / count, (staged.push_us + us(settled, pushed_at)) / count);
        let mut last = pushed_at;
        let runtime = self.runtime.name().to_string();
        let timeout = p.timeout.saturating_mul(models.len() as u32);
        let argv = self.runtime.batch_argv(&self.binary, &manifest, p);
        let ran = self.target.run_lines(&argv, timeout, &mut |line| {
            let Some(read) = read_line(line) else { return };
            let now = Instant::now();
            let result = match read {
                Err(why) => {
                    on_result(
                        usize::MAX,
                        Err(RuntimeError::Malformed { runtime: runtime.clone(), why, excerpt: line.into() }),
                    );
                    return;
                }
                Ok((i, _)) if i >= models.len() => return,
                Ok((i, Outcome::Failed(e))) => (i, Err(RuntimeError::Setup(format!("{runtime}: {e}")))),
                Ok((i, Outcome::Done(r))) => {
                    let mut info = device_info.clone();
                    reading_of(&r.detail, &mut info);
                    let mut warnings = warnings.clone();
                    let (wait, _) = window.check(&reading(&info));
                    warnings.extend(wait.into_iter().map(|w| format!("{w} when this model started (batch)")));
                    let mut phases = Phases {
                        build_us: models[i].build_us,
                        settle_us,
                        push_us,
                        rounds_us: us(last, now),
                        ..Phases::default()
                    };
                    phases.add_reported(std::slice::from_ref(&r.detail));
                    let rounds = r.detail.get("rounds").and_then(|v| v.as_u64()).unwrap_or(1) as u32;
                    let details = vec![r.detail];
                    let layer_times = self.layer_times(models[i].layers.as_ref(), &details, &mut warnings);
                    let mut rec = self.record(
                        &models[i].model,
                        &models[i].bytes,
                        &shas[i],
                        info,
                        warnings,
                        r.samples_us,
                        details,
                        rounds,
                        phases,
                    );
                    rec.layer_times = layer_times;
                    (i, Ok(rec))
                }
            };
            last = now;
            on_result(result.0, result.1);
        });
        let _ = self.target.run(&["rm".into(), "-f".into(), manifest], Duration::from_secs(30));
        let out = ran?;
        if out.exit_code != 0 {
            return Err(RuntimeError::Exit { runtime, code: out.exit_code, excerpt: crate::runtime::excerpt(&out) });
        }
        Ok(())
    }

    /// A record from its samples (outliers rejected, flagged when unstable), as a batch line
    /// gives them.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        model: &ModelId,
        bytes: &[u8],
        sha: &str,
        device_info: DeviceInfo,
        mut warnings: Vec<String>,
        samples: Vec<f64>,
        detail: Vec<serde_json::Value>,
        rounds: u32,
        phases: Phases,
    ) -> Record {
        let kept = keep_mask(&samples);
        let summary = summarize(&samples, &kept).expect("at least one round with samples");
        if !self.protocol.stable(&summary) {
            warnings.push(format!(
                "unstable: CV {:.3} with {} kept samples after {rounds} rounds (bound {} with ≥ {})",
                summary.cv, summary.n_kept, self.protocol.max_cv, self.protocol.min_samples
            ));
        }
        Record {
            device: self.target.id(),
            model: model.clone(),
            runtime: self.runtime_id(),
            device_info,
            model_sha256: sha.into(),
            model_bytes: bytes.len() as u64,
            timed_us: samples.iter().sum::<f64>() * detail.first().map_or(1.0, hwnas_runner::output::runs_per_sample),
            samples_us: samples,
            kept,
            summary,
            rounds,
            warnings,
            detail,
            wall_us: phases.settle_us + phases.push_us + phases.rounds_us,
            phases,
            layer_times: None,
            timestamp_ms: SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64),
        }
    }

    /// The op profile of `details` (each round's that has one, averaged) per layer of `map`;
    /// a profile that cannot be read or attributed is a warning (the record is flagged).
    fn layer_times(
        &self,
        map: Option<&LayerMap>,
        details: &[serde_json::Value],
        warnings: &mut Vec<String>,
    ) -> Option<super::layers::LayerTimes> {
        let map = map?;
        let mut profiles = Vec::new();
        for d in details {
            match self.runtime.op_times(d) {
                Some(Ok(p)) => profiles.push(p),
                Some(Err(why)) => warnings.push(format!("per-layer: {why}")),
                None => {}
            }
        }
        if profiles.is_empty() {
            warnings.push(format!("per-layer: {} printed no op profile", self.runtime.name()));
            return None;
        }
        let times = map.attribute(&mean_ops(&profiles));
        warnings.extend(times.warning());
        Some(times)
    }

    #[allow(clippy::type_complexity)]
    fn rounds(&self, remote: &str) -> Result<(Vec<f64>, Vec<serde_json::Value>, f64, u32), RuntimeError> {
        let p = self.protocol;
        let (mut samples, mut details, mut timed_us) = (Vec::new(), Vec::new(), 0.0);
        for round in 1..=p.max_rounds {
            let r = self.runtime.run_round(self.target, &self.binary, remote, p, p.timeout)?;
            samples.extend(r.samples_us);
            details.push(r.detail);
            timed_us += r.timed_us;
            let s = summarize(&samples, &keep_mask(&samples)).expect("a round yields samples");
            if p.stable(&s) || round == p.max_rounds {
                return Ok((samples, details, timed_us, round));
            }
        }
        unreachable!("max_rounds ≥ 1 is validated")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(freqs: &[Option<u64>], temp: Option<f64>) -> DeviceInfo {
        DeviceInfo { cur_freq_khz: freqs.to_vec(), temperature_c: temp, ..Default::default() }
    }

    /// Why the device is not ready under `p`'s absolute limits: (wait, unreadable).
    fn unsettled(p: &Protocol, info: &DeviceInfo) -> (Vec<String>, Vec<String>) {
        p.window(None).check(&reading(info))
    }

    #[test]
    fn settled_means_pinned_cores_at_frequency_and_cool() {
        let p = Protocol {
            expect_freq_khz: Some(2419200),
            max_temp_c: Some(40.0),
            affinity: Some("70".into()),
            ..Default::default()
        };
        let hot = info(&[Some(300000), None, None, None, Some(2419200), Some(1785600), Some(2419200)], Some(44.5));
        assert_eq!(
            unsettled(&p, &hot).0,
            vec!["cpu5 at 1785600 kHz, expected 2419200 kHz", "temperature 44.5 °C above 40.0 °C"]
        );
        let ok = info(&[None, None, None, None, Some(2419200), Some(2419200), Some(2419200)], Some(35.0));
        assert_eq!(unsettled(&p, &ok), (vec![], vec![]));
        // Nothing readable: nothing to wait for, four reasons to flag.
        let (wait, unreadable) = unsettled(&p, &info(&[], None));
        assert!(wait.is_empty());
        assert_eq!(unreadable.len(), 4, "{unreadable:?}");
        // Nothing to check without expectations.
        assert_eq!(unsettled(&Protocol::default(), &hot), (vec![], vec![]));
    }

    #[test]
    fn validation_names_the_problem() {
        let p = Protocol { affinity: Some("zz".into()), ..Default::default() };
        assert!(p.validate().unwrap_err().to_string().contains("`zz`"));
        let p = Protocol { max_rounds: 0, ..Default::default() };
        assert!(p.validate().is_err());
        let p = Protocol { timeout: Duration::ZERO, ..Default::default() };
        assert!(p.validate().unwrap_err().to_string().contains("timeout_s"));
    }

    #[test]
    fn unknown_settings_are_refused_by_name() {
        let e: Result<Protocol, _> = serde_json::from_str(r#"{"warmpu": 3}"#);
        assert!(e.unwrap_err().to_string().contains("warmpu"));
        let e: Result<Protocol, _> = serde_json::from_str(r#"{"timeout_s": -1}"#);
        assert!(e.unwrap_err().to_string().contains("-1 is not a duration"));
    }

    /// The `protocol` object as search configs save it: the same JSON every build wrote
    /// (durations as whole seconds and milliseconds under their old names), and the files of
    /// older builds load, fields they lacked taking today's defaults.
    #[test]
    fn saved_search_configs_of_older_builds_load() {
        let saved = serde_json::to_value(Protocol::default()).unwrap();
        let expected = serde_json::json!({
            "threads": 1, "affinity": null, "warmup": 2, "warmup_ms": 20, "runs": 50, "min_time_ms": 50,
            "setup_ratio": 15, "layer_profile_runs": 0, "cooldown_ms": 0, "timeout_s": 300, "max_cv": 0.05,
            "min_samples": 3, "max_rounds": 5, "expect_freq_khz": null, "max_temp_c": null, "max_temp_rise_c": 3.0,
            "settle_s": 60
        });
        assert_eq!(saved, expected);
        let measure = |text: &str| -> crate::profile::DeviceSpec {
            let config: serde_json::Value = serde_json::from_str(text).unwrap();
            serde_json::from_value(config["latency"][0]["measure"].clone()).unwrap()
        };
        // Written by the build of issue 15 (a simulated phone over adb, hwnas-runner).
        let adb = measure(include_str!("../../tests/old_configs/search-adb-runner.json"));
        assert_eq!(adb.device, "127.0.0.1:45347");
        assert_eq!(adb.protocol, Protocol { warmup: 0, runs: 3, ..Protocol::default() });
        assert_eq!(adb.protocol.poll(), Duration::from_secs(2));
        // Written before the time floors, the setup ratio and the temperature rise existed.
        let old = measure(include_str!("../../tests/old_configs/search-litert-before-time-floors.json"));
        assert_eq!(old.protocol, Protocol { warmup: 1, runs: 5, max_cv: 1.0, ..Protocol::default() });
        // Saved again, each says what it said (now with every field).
        let again: Protocol = serde_json::from_value(serde_json::to_value(&old.protocol).unwrap()).unwrap();
        assert_eq!(again, old.protocol);
        // A duration set in code below the saved unit survives the round trip.
        let fine = Protocol {
            timeout: Duration::from_millis(500),
            cooldown: Duration::from_micros(1500),
            ..Protocol::default()
        };
        let text = serde_json::to_string(&fine).unwrap();
        assert!(text.contains(r#""timeout_s":0.5"#) && text.contains(r#""cooldown_ms":1.5"#), "{text}");
        assert_eq!(serde_json::from_str::<Protocol>(&text).unwrap(), fine);
    }
}
