//! A profiling job: every selected device works through its own queue on its own
//! thread, journaling each record before starting the next model. A device that
//! fails or disappears stops alone; the others carry on.

use super::journal::{append_json_line, Journal};
use super::layers::LayerMap;
use super::protocol::{Bench, Built, Protocol, RunStart, Staged};
use super::record::{Identity, ModelId, Record};
use crate::device_lock;
use crate::error::Chain;
use crate::runtime::{Runtime, RuntimeError};
use crate::target::{Target, TargetError};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const ERRORS_FILE: &str = "errors.jsonl";

/// Why a [`ModelSource`] could not build a model: its own error (for a space's models,
/// [`super::models::ModelError`]), kept whole for the job's failure report.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Builds the model file for a model identity (a single-layer model or a whole network).
pub trait ModelSource: Sync {
    fn build(&self, model: &ModelId) -> Result<Vec<u8>, SourceError>;

    /// The file and, for a network, which IR layer each of its tensors belongs to (for
    /// `--per-layer`); sources that cannot say give none.
    fn build_mapped(&self, model: &ModelId) -> Result<(Vec<u8>, Option<LayerMap>), SourceError> {
        Ok((self.build(model)?, None))
    }
}

/// Progress, reported as it happens (from device threads).
#[derive(Clone, Debug)]
pub enum Event {
    /// A device starts: `todo` models to measure, `done` already in the journal.
    Started {
        device: String,
        todo: usize,
        done: usize,
    },
    Measured {
        device: String,
        model: String,
        median_ms: f64,
        warnings: Vec<String>,
    },
    Failed {
        device: String,
        model: String,
        error: String,
    },
    /// The device stopped early.
    Stopped {
        device: String,
        why: String,
    },
}

/// What happened on one device.
#[derive(Clone, Debug, Default)]
pub struct DeviceReport {
    pub device: String,
    pub total: usize,
    /// Already in the journal from an earlier run.
    pub skipped: usize,
    pub measured: usize,
    pub flagged: usize,
    /// Models that failed: (model label, error).
    pub failed: Vec<(String, String)>,
    /// Why the device stopped before the end of its queue.
    pub stopped: Option<String>,
    /// Wall time, and time inside the models' own timed runs, cool-downs excluded (µs).
    pub wall_us: f64,
    pub timed_us: f64,
    pub cooldown_us: f64,
    /// Where the rest went, as the measured records report it (summed [`super::record::Phases`]).
    pub phases: super::record::Phases,
}

impl DeviceReport {
    pub fn complete(&self) -> bool {
        self.stopped.is_none() && self.failed.is_empty()
    }

    /// The share of the wall time outside the models' timed runs, and what it held: the
    /// runtime loading models (parse, optimise, plan), warming them up, waiting for the device
    /// to cool down (a fixed pause or readings outside the window), per-layer profiling runs,
    /// and the rest (building and pushing files, device checks, runtime start-up, journaling).
    pub fn overhead(&self) -> Option<Overhead> {
        if self.wall_us <= 0.0 || self.measured == 0 {
            return None;
        }
        let share = |us: f64| 100.0 * us / self.wall_us;
        let p = &self.phases;
        let outside = share(self.wall_us - self.timed_us);
        let (loading, warmup, cooldown, profile) =
            (share(p.setup_us), share(p.warmup_us), share(p.cooldown_us + self.cooldown_us), share(p.profile_us));
        Some(Overhead {
            outside,
            loading,
            warmup,
            cooldown,
            profile,
            rest: outside - loading - warmup - cooldown - profile,
        })
    }
}

/// Shares (%) of a device's wall time outside timed runs ([`DeviceReport::overhead`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Overhead {
    pub outside: f64,
    pub loading: f64,
    pub warmup: f64,
    pub cooldown: f64,
    pub profile: f64,
    pub rest: f64,
}

impl std::fmt::Display for Overhead {
    /// `8.1 % outside timed runs (loading 5.0 %, warm-up 0.9 %, …, other 2.2 %)`, parts
    /// that are zero left out.
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let mut parts = vec![format!("loading {:.1} %", self.loading), format!("warm-up {:.1} %", self.warmup)];
        if self.cooldown > 0.05 {
            parts.push(format!("cool-down {:.1} %", self.cooldown));
        }
        if self.profile > 0.05 {
            parts.push(format!("layer profiles {:.1} %", self.profile));
        }
        parts.push(format!("other {:.1} %", self.rest));
        write!(f, "{:.1} % outside timed runs ({})", self.outside, parts.join(", "))
    }
}

/// After this many failures in a row a device is given up (its runtime or storage is broken).
pub const MAX_CONSECUTIVE_FAILURES: usize = 3;

pub struct Job<'a> {
    pub runtime: &'a dyn Runtime,
    pub protocol: &'a Protocol,
    pub models: &'a [ModelId],
    pub source: &'a dyn ModelSource,
    pub out_dir: &'a Path,
}

impl Job<'_> {
    /// Runs every target's queue in parallel; returns one report per target (same order).
    /// Records go to `journal` as they finish; identities in `done` are skipped. Each device
    /// is locked (see [`device_lock`]) while its queue runs; a device another run holds is
    /// waited for up to `device_wait`, then reported as stopped, naming the holder.
    pub fn run(
        &self,
        targets: &[Box<dyn Target>],
        journal: &Journal,
        done: &HashSet<Identity>,
        device_wait: Duration,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Vec<DeviceReport> {
        std::thread::scope(|s| {
            let handles: Vec<_> = targets
                .iter()
                .map(|t| s.spawn(move || self.locked_device(t.as_ref(), journal, done, device_wait, on_event)))
                .collect();
            handles
                .into_iter()
                .zip(targets)
                .map(|(h, t)| {
                    h.join().unwrap_or_else(|_| DeviceReport {
                        device: t.id(),
                        stopped: Some("the profiling thread panicked".into()),
                        ..Default::default()
                    })
                })
                .collect()
        })
    }

    fn locked_device(
        &self,
        target: &dyn Target,
        journal: &Journal,
        done: &HashSet<Identity>,
        device_wait: Duration,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> DeviceReport {
        let start = Instant::now();
        device_lock::hold(target, device_wait, |lock| self.device(target, lock.run_dir(), journal, done, on_event))
            .unwrap_or_else(|e| {
                let why = Chain(&e).to_string();
                on_event(Event::Stopped { device: target.id(), why: why.clone() });
                DeviceReport {
                    device: target.id(),
                    total: self.models.len(),
                    stopped: Some(why),
                    wall_us: start.elapsed().as_secs_f64() * 1e6,
                    ..Default::default()
                }
            })
    }

    /// One device's queue; model files go to `run_dir`, this run's own directory on the device.
    fn device(
        &self,
        target: &dyn Target,
        run_dir: &str,
        journal: &Journal,
        done: &HashSet<Identity>,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> DeviceReport {
        let device = target.id();
        let mut report = DeviceReport { device: device.clone(), total: self.models.len(), ..Default::default() };
        let stop = |report: &mut DeviceReport, why: String| {
            on_event(Event::Stopped { device: device.clone(), why: why.clone() });
            report.stopped = Some(why);
        };
        let binary = match self.runtime.install(target) {
            Ok(b) => b,
            Err(e) => {
                stop(&mut report, format!("cannot install {}: {}", self.runtime.name(), Chain(&e)));
                return report;
            }
        };
        let staging = self.out_dir.join(".staging");
        if let Err(e) = std::fs::create_dir_all(&staging) {
            stop(&mut report, format!("cannot create {}: {e}", staging.display()));
            return report;
        }
        let start = RunStart::default();
        let bench = Bench {
            target,
            runtime: self.runtime,
            binary,
            protocol: self.protocol,
            staging: &staging,
            models_dir: format!("{run_dir}/models"),
            start: &start,
        };
        let runtime_id = bench.runtime_id();
        let todo: Vec<&ModelId> = self
            .models
            .iter()
            .filter(|m| !done.contains(&(device.clone(), (*m).clone(), runtime_id.clone())))
            .collect();
        report.skipped = self.models.len() - todo.len();
        on_event(Event::Started { device: device.clone(), todo: todo.len(), done: report.skipped });
        if !todo.is_empty() && self.runtime.takes_batches(target, &bench.binary) {
            self.batches(&bench, &todo, journal, &mut report, on_event);
            return report;
        }
        let errors = self.out_dir.join(ERRORS_FILE);
        let mut in_a_row = 0;
        let start = Instant::now();
        for (i, model) in todo.into_iter().enumerate() {
            if i > 0 {
                std::thread::sleep(self.protocol.cooldown);
                report.cooldown_us += self.protocol.cooldown.as_secs_f64() * 1e6;
            }
            let building = Instant::now();
            let result = self
                .build(model)
                .map_err(|e| RuntimeError::Setup(format!("cannot build the model file: {}", Chain(&*e))))
                .and_then(|(bytes, layers)| {
                    let build_us = building.elapsed().as_secs_f64() * 1e6;
                    bench.measure_mapped(model, &bytes, layers.as_ref()).map(|mut rec| {
                        rec.phases.build_us = build_us;
                        rec
                    })
                });
            match result {
                Ok(rec) => {
                    if let Err(why) = record_measured(journal, &mut report, on_event, &device, model, rec) {
                        stop(&mut report, why);
                        break;
                    }
                    in_a_row = 0;
                }
                Err(e) => {
                    let error = Chain(&e).to_string();
                    record_failed(&errors, &mut report, on_event, &device, model, error.clone());
                    in_a_row += 1;
                    // A vanished device fails every later model; say so once, by name, and stop.
                    if let Some(why) = lost(target, &e) {
                        stop(&mut report, format!("device disappeared ({why})"));
                        break;
                    }
                    if in_a_row >= MAX_CONSECUTIVE_FAILURES {
                        stop(&mut report, format!("{in_a_row} models failed in a row; the last: {error}"));
                        break;
                    }
                }
            }
        }
        report.wall_us = start.elapsed().as_secs_f64() * 1e6;
        report
    }
}

impl Job<'_> {
    /// A model's file, with its layer map when per-layer times are asked for and it is a network.
    fn build(&self, model: &ModelId) -> Result<(Vec<u8>, Option<LayerMap>), SourceError> {
        if self.protocol.layer_profile_runs > 0 && model.kind == super::record::Kind::Network {
            self.source.build_mapped(model)
        } else {
            self.source.build(model).map(|bytes| (bytes, None))
        }
    }

    fn build_batch(&self, models: &[&ModelId]) -> Vec<Result<Built, (ModelId, String)>> {
        models
            .iter()
            .map(|m| {
                let t = Instant::now();
                match self.build(m) {
                    Ok((bytes, layers)) => {
                        Ok(Built { model: (*m).clone(), bytes, build_us: t.elapsed().as_secs_f64() * 1e6, layers })
                    }
                    Err(e) => Err(((*m).clone(), format!("cannot build the model file: {}", Chain(&*e)))),
                }
            })
            .collect()
    }

    /// Builds a batch's files and puts them on the device (see [`Bench::stage_batch`]): the
    /// files that built, the models that did not (with why), and the staging's outcome.
    fn prepare(&self, bench: &Bench, chunk: &[&ModelId], present: &Mutex<HashSet<String>>) -> Prepared {
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        for b in self.build_batch(chunk) {
            match b {
                Ok(b) => ok.push(b),
                Err(e) => bad.push(e),
            }
        }
        let staged = if ok.is_empty() { None } else { Some(bench.stage_batch(&ok, present)) };
        Prepared { ok, bad, staged }
    }

    /// The queue in batches ([`batch_sizes`]), each timed by one runtime invocation; every
    /// record is journaled (fsynced) as its line arrives. On a phone the next batch's files are
    /// built and pushed while the current batch is timed (on `local` that would take the
    /// host's cores from the timing). A batch's files are removed once the next batch is
    /// staged, except those it uses too.
    fn batches(
        &self,
        bench: &Bench,
        todo: &[&ModelId],
        journal: &Journal,
        report: &mut DeviceReport,
        on_event: &(dyn Fn(Event) + Sync),
    ) {
        let device = bench.target.id();
        let errors = self.out_dir.join(ERRORS_FILE);
        let start = Instant::now();
        let ahead = device != crate::local::LOCAL_ID;
        let layers_only = todo.iter().all(|m| m.kind == super::record::Kind::Layer);
        let mut chunks: Vec<&[&ModelId]> = Vec::new();
        let mut rest = todo;
        for size in batch_sizes(todo.len(), layers_only, ahead) {
            let (chunk, tail) = rest.split_at(size);
            chunks.push(chunk);
            rest = tail;
        }
        // This run's models directory is created empty when the device is locked.
        let present = Mutex::new(HashSet::new());
        let mut in_a_row = 0;
        let fail = |report: &mut DeviceReport, model: &ModelId, error: String| {
            record_failed(&errors, report, on_event, &device, model, error)
        };
        let stop_after_failures = |report: &mut DeviceReport, in_a_row: usize| -> bool {
            if in_a_row < MAX_CONSECUTIVE_FAILURES {
                return false;
            }
            let last = report.failed.last().map_or(String::new(), |f| f.1.clone());
            report.stopped = Some(format!("{in_a_row} models failed in a row; the last: {last}"));
            true
        };
        std::thread::scope(|s| {
            let mut next = None;
            let mut previous: Vec<String> = Vec::new();
            for (k, chunk) in chunks.iter().enumerate() {
                let prepared = match next.take() {
                    Some(h) => {
                        std::thread::ScopedJoinHandle::join(h).unwrap_or_else(|_| self.prepare(bench, chunk, &present))
                    }
                    None => self.prepare(bench, chunk, &present),
                };
                let files: Vec<String> = match &prepared.staged {
                    Some(Ok(st)) => st.shas.iter().map(|sha| format!("{sha}.tflite")).collect(),
                    _ => Vec::new(),
                };
                let unused: Vec<String> = previous.iter().filter(|f| !files.contains(f)).cloned().collect();
                bench.remove_files(&unused, &present);
                previous = files;
                if ahead {
                    let present = &present;
                    next = chunks.get(k + 1).map(|c| s.spawn(move || self.prepare(bench, c, present)));
                }
                let Prepared { ok, bad, staged } = prepared;
                for (m, e) in bad {
                    fail(report, &m, e);
                    in_a_row += 1;
                }
                let staged = match staged {
                    None => {
                        if stop_after_failures(report, in_a_row) {
                            break;
                        }
                        continue;
                    }
                    Some(Err(e)) => {
                        for b in &ok {
                            fail(report, &b.model, Chain(&e).to_string());
                            in_a_row += 1;
                        }
                        if let Some(why) = lost(bench.target, &e) {
                            report.stopped = Some(format!("device disappeared ({why})"));
                        } else {
                            stop_after_failures(report, in_a_row);
                        }
                        if report.stopped.is_some() {
                            break;
                        }
                        continue;
                    }
                    Some(Ok(st)) => st,
                };
                if k > 0 {
                    std::thread::sleep(self.protocol.cooldown);
                }
                report.cooldown_us +=
                    self.protocol.cooldown.as_secs_f64() * 1e6 * (ok.len() - usize::from(k == 0)) as f64;
                let mut answered = vec![false; ok.len()];
                let mut stopped: Option<String> = None;
                let result = bench.measure_staged(&ok, &staged, &mut |i, r| {
                    if stopped.is_some() {
                        return;
                    }
                    match r {
                        Ok(rec) => {
                            answered[i] = true;
                            if let Err(why) = record_measured(journal, report, on_event, &device, &ok[i].model, rec) {
                                stopped = Some(why);
                                return;
                            }
                            in_a_row = 0;
                        }
                        Err(e) if i < ok.len() => {
                            answered[i] = true;
                            fail(report, &ok[i].model, Chain(&e).to_string());
                            in_a_row += 1;
                        }
                        Err(e) => {
                            let _ = append_json_line(&errors, &serde_json::json!({"device": device, "error": Chain(&e).to_string(), "timestamp_ms": now_ms()}));
                        }
                    }
                });
                if let Err(e) = &result {
                    for (b, _) in ok.iter().zip(&answered).filter(|(_, a)| !**a) {
                        fail(report, &b.model, Chain(e).to_string());
                        in_a_row += 1;
                    }
                }
                if let Some(why) = stopped {
                    report.stopped = Some(why);
                } else if let Some(why) = result.as_ref().err().and_then(|e| lost(bench.target, e)) {
                    report.stopped = Some(format!("device disappeared ({why})"));
                } else {
                    stop_after_failures(report, in_a_row);
                }
                if report.stopped.is_some() {
                    break;
                }
            }
            if report.stopped.is_none() {
                bench.remove_files(&previous, &present);
            }
        });
        if let Some(why) = &report.stopped {
            on_event(Event::Stopped { device: device.clone(), why: why.clone() });
        }
        report.wall_us = start.elapsed().as_secs_f64() * 1e6;
    }
}

/// A batch built and staged ([`Job::prepare`]).
struct Prepared {
    ok: Vec<Built>,
    bad: Vec<(ModelId, String)>,
    staged: Option<Result<Staged, RuntimeError>>,
}

/// How many models each batch of a queue of `n` holds. A layer table on `local` goes in
/// batches of [`LAYER_BATCH`]; on a phone its first batch is [`FIRST_BATCH`] models
/// (timing starts as soon as those are on the device) and the rest go in batches of
/// [`LAYER_BATCH`], each built and pushed while the one before is timed. Networks
/// (large files) go in batches of [`BATCH_MODELS`].
pub fn batch_sizes(n: usize, layers_only: bool, ahead: bool) -> Vec<usize> {
    let (first, rest) = match (layers_only, ahead) {
        (true, false) => (LAYER_BATCH, LAYER_BATCH),
        (true, true) => (FIRST_BATCH, LAYER_BATCH),
        (false, _) => (BATCH_MODELS, BATCH_MODELS),
    };
    let mut sizes = Vec::new();
    let mut left = n;
    while left > 0 {
        let size = left.min(if sizes.is_empty() { first } else { rest });
        sizes.push(size);
        left -= size;
    }
    sizes
}

/// The first batch of a layer table on a phone.
pub const FIRST_BATCH: usize = 16;

/// Models timed by one runtime invocation when the runtime takes batches: start-up, the
/// device check, the manifest push and the batch-start warm-up are paid once per this many
/// models, and on a phone the next batch is built and pushed while this one is timed.
pub const BATCH_MODELS: usize = 32;

/// Single-layer files are small, so a layer table goes up to this many models per batch: a
/// batch's fixed costs (runtime start-up, device check, manifest, the warm-up after idle)
/// are paid once for them.
pub const LAYER_BATCH: usize = 128;

/// Whether an error means the device is gone: it said so, or it no longer answers.
fn lost(target: &dyn Target, e: &RuntimeError) -> Option<String> {
    if let RuntimeError::Target(TargetError::Unreachable { why, .. }) = e {
        return Some(why.clone());
    }
    match target.info() {
        Err(TargetError::Unreachable { why, .. }) => Some(why),
        Err(e) => Some(format!("it no longer answers: {}", Chain(&e))),
        Ok(_) => None,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The identities of journaled records.
pub fn identities(records: &[Record]) -> HashSet<Identity> {
    records.iter().map(Record::identity).collect()
}

/// Journals (fsyncs) a measured record, counts it and reports it; the reason to stop when
/// the journal cannot take it. The one path of a record, one-model runs and batches alike.
fn record_measured(
    journal: &Journal,
    report: &mut DeviceReport,
    on_event: &(dyn Fn(Event) + Sync),
    device: &str,
    model: &ModelId,
    rec: Record,
) -> Result<(), String> {
    journal.append(&rec).map_err(|e| format!("measured {} but {}", model.label(), Chain(&e)))?;
    report.measured += 1;
    report.flagged += rec.flagged() as usize;
    report.timed_us += rec.timed_us;
    report.phases.add(&rec.phases);
    on_event(Event::Measured {
        device: device.to_string(),
        model: model.label(),
        median_ms: rec.summary.median_us / 1000.0,
        warnings: rec.warnings,
    });
    Ok(())
}

/// A model that failed: a line in the errors file, the event, and the report's list.
fn record_failed(
    errors: &Path,
    report: &mut DeviceReport,
    on_event: &(dyn Fn(Event) + Sync),
    device: &str,
    model: &ModelId,
    error: String,
) {
    let _ = append_json_line(
        errors,
        &serde_json::json!({"device": device, "model": model, "error": error, "timestamp_ms": now_ms()}),
    );
    on_event(Event::Failed { device: device.to_string(), model: model.label(), error: error.clone() });
    report.failed.push((model.label(), error));
}
