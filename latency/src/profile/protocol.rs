//! How one model is measured on one device: wait for the pinned cores and the
//! temperature to settle, push the model, run rounds until the samples are stable
//! (or a round limit is hit), reject outliers, and keep everything in a [`Record`].

use super::record::{ModelId, Phases, Record, RuntimeId};
use super::stats::{keep_mask, summarize, Summary};
use crate::runtime::{sha256_hex, RunConfig, Runtime, RuntimeError};
use crate::target::{DeviceInfo, Target, TargetError};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Protocol {
    pub run: RunConfig,
    /// Pause before each model so the device sheds the heat of the last one (FAI-PEP: 30 s).
    pub cooldown: Duration,
    /// Limit on one runtime invocation (nn-Meter: 300 s per model); overrunning kills it.
    pub timeout: Duration,
    /// Rounds continue until the kept samples' coefficient of variation is at most this…
    pub cv_bound: f64,
    /// …with at least this many kept samples…
    pub min_samples: usize,
    /// …or until this many rounds, after which the record is flagged unstable.
    pub max_rounds: u32,
    /// Frequency (kHz) the pinned cores must be at before timing, if known (e.g. fixed by root).
    pub expected_freq_khz: Option<u64>,
    /// Hottest thermal zone allowed before timing, in °C.
    pub max_temp_c: Option<f64>,
    /// How long to wait for frequency and temperature to settle before timing anyway (flagged).
    pub settle_timeout: Duration,
    pub settle_poll: Duration,
}

impl Default for Protocol {
    fn default() -> Protocol {
        Protocol {
            run: RunConfig { threads: 1, warmup: 10, runs: 50, affinity: None },
            cooldown: Duration::from_millis(200),
            timeout: Duration::from_secs(300),
            cv_bound: 0.05,
            min_samples: 3,
            max_rounds: 5,
            expected_freq_khz: None,
            max_temp_c: None,
            settle_timeout: Duration::from_secs(60),
            settle_poll: Duration::from_secs(2),
        }
    }
}

impl Protocol {
    pub fn validate(&self) -> Result<(), String> {
        self.run.pinned_cpus()?;
        if self.run.runs == 0 || self.run.threads == 0 || self.max_rounds == 0 || self.min_samples == 0 {
            return Err("runs, threads, rounds and the minimum sample count must be at least 1".into());
        }
        if self.timeout.is_zero() {
            return Err("the time limit per runtime invocation (timeout_s) must be above 0".into());
        }
        if self.cv_bound.is_nan() || self.cv_bound <= 0.0 {
            return Err(format!("the CV bound must be positive, got {}", self.cv_bound));
        }
        Ok(())
    }

    /// Why the device is not ready to time a model now: conditions worth waiting for,
    /// and checks that cannot be made at all (an unreadable sensor does not start working
    /// by waiting, so those flag the record at once). Both empty when it is ready.
    pub fn unsettled(&self, info: &DeviceInfo) -> (Vec<String>, Vec<String>) {
        let (mut wait, mut unreadable) = (Vec::new(), Vec::new());
        if let Some(want) = self.expected_freq_khz {
            let cpus = self.run.pinned_cpus().unwrap_or_default();
            let cpus = if cpus.is_empty() { (0..info.cur_freq_khz.len()).collect() } else { cpus };
            if cpus.is_empty() {
                unreadable.push(format!("no CPU frequency readable, expected {want} kHz"));
            }
            for c in cpus {
                match info.cur_freq_khz.get(c).copied().flatten() {
                    Some(f) if f == want => {}
                    Some(f) => wait.push(format!("cpu{c} at {f} kHz, expected {want} kHz")),
                    None => unreadable.push(format!("cpu{c} frequency unreadable, expected {want} kHz")),
                }
            }
        }
        if let Some(limit) = self.max_temp_c {
            match info.temperature_c {
                Some(t) if t > limit => wait.push(format!("temperature {t:.1} °C above {limit:.1} °C")),
                Some(_) => {}
                None => unreadable.push(format!("temperature unreadable (limit {limit:.1} °C)")),
            }
        }
        (wait, unreadable)
    }

    /// Polls the device until it is settled or `settle_timeout` passes; returns the last
    /// reading and, if it never settled or could not be checked, the reasons (which flag the record).
    pub fn settle(&self, target: &dyn Target) -> Result<(DeviceInfo, Vec<String>), TargetError> {
        let start = Instant::now();
        loop {
            let info = target.info()?;
            let (wait, unreadable) = self.unsettled(&info);
            if wait.is_empty() {
                return Ok((info, unreadable));
            }
            if start.elapsed() >= self.settle_timeout {
                let waited = start.elapsed().as_secs_f64();
                let why = wait.into_iter().map(|w| format!("{w} after waiting {waited:.0} s"));
                return Ok((info, why.chain(unreadable).collect()));
            }
            std::thread::sleep(self.settle_poll);
        }
    }

    /// Whether the samples so far are enough.
    pub fn stable(&self, s: &Summary) -> bool {
        s.n_kept >= self.min_samples && s.cv <= self.cv_bound
    }
}

/// A model file built for a batch, and how long building it took (µs).
pub struct Built {
    pub model: ModelId,
    pub bytes: Vec<u8>,
    pub build_us: f64,
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
}

impl Bench<'_> {
    pub fn runtime_id(&self) -> RuntimeId {
        RuntimeId {
            runtime: self.runtime.name().into(),
            flags: self.runtime.flags(&self.protocol.run),
            binary_sha256: self.runtime.binary_sha256().into(),
        }
    }

    /// Times one model file (cool-down not included: the caller pauses between models).
    pub fn measure(&self, model: &ModelId, bytes: &[u8]) -> Result<Record, RuntimeError> {
        let start = Instant::now();
        let (device_info, mut warnings) = self.protocol.settle(self.target)?;
        let settled = Instant::now();
        let sha = sha256_hex(bytes);
        // Unique per measurement: device threads may stage the same model at the same time.
        let n = STAGED.fetch_add(1, Ordering::Relaxed);
        let local = self.staging.join(format!("{}-{n}-{sha}.tflite", std::process::id()));
        std::fs::write(&local, bytes)
            .map_err(|e| RuntimeError::Setup(format!("cannot write {}: {e}", local.display())))?;
        let remote = format!("{}/{sha}.tflite", self.models_dir);
        let pushed = self.target.push(&local, &remote);
        let _ = std::fs::remove_file(&local);
        pushed?;
        let pushed_at = Instant::now();
        let timed = self.rounds(&remote);
        let ran = Instant::now();
        // Best effort: a device that just vanished fails here too, and the timing error matters more.
        let _ = self.target.run(&["rm".into(), "-f".into(), remote.clone()], Duration::from_secs(30));
        let (samples, details, timed_us, rounds) = timed?;
        let us = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e6;
        let phases = Phases {
            build_us: 0.0,
            settle_us: us(start, settled),
            push_us: us(settled, pushed_at),
            rounds_us: us(pushed_at, ran),
            cleanup_us: us(ran, Instant::now()),
        };
        let kept = keep_mask(&samples);
        let summary = summarize(&samples, &kept).expect("at least one round with samples");
        if !self.protocol.stable(&summary) {
            warnings.push(format!(
                "unstable: CV {:.3} with {} kept samples after {rounds} rounds (bound {} with ≥ {})",
                summary.cv, summary.n_kept, self.protocol.cv_bound, self.protocol.min_samples
            ));
        }
        Ok(Record {
            device: self.target.id(),
            model: model.clone(),
            runtime: self.runtime_id(),
            device_info,
            model_sha256: sha,
            model_bytes: bytes.len() as u64,
            samples_us: samples,
            kept,
            summary,
            rounds,
            warnings,
            detail: details,
            timed_us,
            phases,
            wall_us: start.elapsed().as_secs_f64() * 1e6,
            timestamp_ms: SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64),
        })
    }

    /// Times `models` in one runtime invocation (see `hwnas_runner::batch`): one device check
    /// before it (waiting to settle as for one model), each distinct file pushed once (and not
    /// at all when this run's directory on the device already holds it), and each model's
    /// result handed to `on_result` with its index in `models` as soon as its line arrives.
    /// A record is flagged when the batch's check, or the reading the runner took just before
    /// that model (frequencies, temperature), is outside the protocol's window. An error of the
    /// whole batch (the check, a push, the runtime) is returned after the results that came.
    pub fn measure_batch(
        &self,
        models: &[Built],
        on_result: &mut dyn FnMut(usize, Result<Record, RuntimeError>),
    ) -> Result<(), RuntimeError> {
        use hwnas_runner::batch::{read_line, write_manifest, Entry, Outcome};
        let start = Instant::now();
        let (device_info, warnings) = self.protocol.settle(self.target)?;
        let settled = Instant::now();
        let shas: Vec<String> = models.iter().map(|m| sha256_hex(&m.bytes)).collect();
        let listed = self.target.run(&["ls".into(), "-1".into(), self.models_dir.clone()], Duration::from_secs(30))?;
        let mut present: std::collections::HashSet<String> =
            listed.stdout.lines().map(|l| l.trim().to_string()).collect();
        let n = STAGED.fetch_add(1, Ordering::Relaxed);
        let mut pushed = Vec::new();
        let stage = |name: &str, bytes: &[u8], remote: &str| -> Result<(), RuntimeError> {
            let local = self.staging.join(format!("{}-{n}-{name}", std::process::id()));
            std::fs::write(&local, bytes)
                .map_err(|e| RuntimeError::Setup(format!("cannot write {}: {e}", local.display())))?;
            let r = self.target.push(&local, remote);
            let _ = std::fs::remove_file(&local);
            Ok(r?)
        };
        for (m, sha) in models.iter().zip(&shas) {
            let name = format!("{sha}.tflite");
            if present.insert(name.clone()) {
                let remote = format!("{}/{name}", self.models_dir);
                stage(&name, &m.bytes, &remote)?;
                pushed.push(remote);
            }
        }
        let p = self.protocol;
        let entries: Vec<Entry> = shas
            .iter()
            .map(|sha| Entry {
                model: format!("{sha}.tflite"),
                warmup: p.run.warmup as usize,
                runs: p.run.runs as usize,
                threads: p.run.threads as usize,
                max_rounds: p.max_rounds,
                cv_bound: p.cv_bound,
                min_samples: p.min_samples,
                cooldown_ms: p.cooldown.as_millis() as u64,
            })
            .collect();
        let manifest = format!("{}/batch-{}-{n}.jsonl", self.models_dir, std::process::id());
        stage("manifest.jsonl", write_manifest(&entries).as_bytes(), &manifest)?;
        pushed.push(manifest.clone());
        let pushed_at = Instant::now();
        let us = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e6;
        let count = models.len() as f64;
        let (settle_us, push_us) = (us(start, settled) / count, us(settled, pushed_at) / count);
        let mut last = pushed_at;
        let runtime = self.runtime.name().to_string();
        let timeout = p.timeout.saturating_mul(models.len() as u32);
        let argv = self.runtime.batch_argv(&self.binary, &manifest, &p.run);
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
                    let (wait, _) = p.unsettled(&info);
                    warnings.extend(wait.into_iter().map(|w| format!("{w} when this model started (batch)")));
                    let phases = Phases {
                        build_us: models[i].build_us,
                        settle_us,
                        push_us,
                        rounds_us: us(last, now),
                        cleanup_us: 0.0,
                    };
                    let rounds = r.detail.get("rounds").and_then(|v| v.as_u64()).unwrap_or(1) as u32;
                    (
                        i,
                        Ok(self.record(
                            &models[i].model,
                            &models[i].bytes,
                            &shas[i],
                            info,
                            warnings,
                            r.samples_us,
                            vec![r.detail],
                            rounds,
                            phases,
                        )),
                    )
                }
            };
            last = now;
            on_result(result.0, result.1);
        });
        let _ = self
            .target
            .run(&["rm".into(), "-f".into()].into_iter().chain(pushed).collect::<Vec<_>>(), Duration::from_secs(30));
        let out = ran?;
        if out.exit_code != 0 {
            return Err(RuntimeError::Exit { runtime, code: out.exit_code, excerpt: crate::runtime::excerpt(&out) });
        }
        Ok(())
    }

    /// A record from its samples (outliers rejected, flagged when unstable).
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
        let summary = summarize(&samples, &kept).expect("a batch line holds samples");
        if !self.protocol.stable(&summary) {
            warnings.push(format!(
                "unstable: CV {:.3} with {} kept samples after {rounds} rounds (bound {} with ≥ {})",
                summary.cv, summary.n_kept, self.protocol.cv_bound, self.protocol.min_samples
            ));
        }
        Record {
            device: self.target.id(),
            model: model.clone(),
            runtime: self.runtime_id(),
            device_info,
            model_sha256: sha.into(),
            model_bytes: bytes.len() as u64,
            timed_us: samples.iter().sum(),
            samples_us: samples,
            kept,
            summary,
            rounds,
            warnings,
            detail,
            wall_us: phases.settle_us + phases.push_us + phases.rounds_us,
            phases,
            timestamp_ms: SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64),
        }
    }

    #[allow(clippy::type_complexity)]
    fn rounds(&self, remote: &str) -> Result<(Vec<f64>, Vec<serde_json::Value>, f64, u32), RuntimeError> {
        let p = self.protocol;
        let (mut samples, mut details, mut timed_us) = (Vec::new(), Vec::new(), 0.0);
        for round in 1..=p.max_rounds {
            let r = self.runtime.run_round(self.target, &self.binary, remote, &p.run, p.timeout)?;
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

    #[test]
    fn settled_means_pinned_cores_at_frequency_and_cool() {
        let mut p = Protocol { expected_freq_khz: Some(2419200), max_temp_c: Some(40.0), ..Default::default() };
        p.run.affinity = Some("70".into());
        let hot = info(&[Some(300000), None, None, None, Some(2419200), Some(1785600), Some(2419200)], Some(44.5));
        assert_eq!(
            p.unsettled(&hot).0,
            vec!["cpu5 at 1785600 kHz, expected 2419200 kHz", "temperature 44.5 °C above 40.0 °C"]
        );
        let ok = info(&[None, None, None, None, Some(2419200), Some(2419200), Some(2419200)], Some(35.0));
        assert_eq!(p.unsettled(&ok), (vec![], vec![]));
        // Nothing readable: nothing to wait for, four reasons to flag.
        let (wait, unreadable) = p.unsettled(&info(&[], None));
        assert!(wait.is_empty());
        assert_eq!(unreadable.len(), 4, "{unreadable:?}");
        // Nothing to check without expectations.
        assert_eq!(Protocol::default().unsettled(&hot), (vec![], vec![]));
    }

    #[test]
    fn validation_names_the_problem() {
        let mut p = Protocol::default();
        p.run.affinity = Some("zz".into());
        assert!(p.validate().unwrap_err().contains("`zz`"));
        let p = Protocol { max_rounds: 0, ..Default::default() };
        assert!(p.validate().is_err());
        let p = Protocol { timeout: Duration::ZERO, ..Default::default() };
        assert!(p.validate().unwrap_err().contains("timeout_s"));
    }
}
