//! Live measurement for searches: a device that times member networks on request,
//! one model at a time (two models timed at once on one phone would disturb each
//! other), journaling every record before answering. A search killed half-way, or
//! run again on the same journal, finds its earlier measurements and reuses them.

use super::dataset::{write_parquet, DATASET_FILE};
use super::journal::Journal;
use super::models::network_file;
use super::protocol::{Bench, Protocol, RunStart};
use super::record::{ModelId, Record};
use super::session::{check_precision, create, lock, read_journal, DirLock, ProfileError};
use super::settings::{connect, RuntimeSpec};
use crate::device_lock::HeldLock;
use crate::modelfile::precision::{Precision, Quantization};
use crate::runtime::Runtime;
use crate::target::Target;
use serde::{Deserialize, Serialize};
use spaces::{Genome, SearchSpace};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A device to measure on, as a search job's config stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// A serial as listed by `adb devices`, or `local` for this machine.
    pub device: String,
    /// adb servers (`HOST:PORT`) to find it on; empty: the local server.
    #[serde(default)]
    pub adb: Vec<String>,
    pub runtime: RuntimeSpec,
    #[serde(default)]
    pub protocol: Protocol,
}

/// What a meter has done since it was opened.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeterStats {
    /// Reusable measurements found in the journal when it was opened…
    pub journaled: usize,
    /// …and how many of them have been asked for since.
    pub reused: usize,
    /// Models timed on the device since.
    pub measured: usize,
    /// Of those, records flagged (unstable, unsettled device).
    pub flagged: usize,
}

struct Device {
    target: Arc<dyn Target>,
    /// The device's lock, held while the meter is open (no other run times on it meanwhile).
    lock: HeldLock,
    runtime: Box<dyn Runtime>,
    binary: String,
    protocol: Protocol,
    journal: Journal,
    last: Option<Instant>,
    /// The device's first reading since the meter opened (the cool-down's rise rule).
    start: RunStart,
}

pub struct LiveMeter {
    id: String,
    dir: PathBuf,
    /// The precision every member is written in (the search job's).
    quantization: Quantization,
    /// Median latency (ms) of every model measured with this device and runtime setup.
    cache: Mutex<HashMap<ModelId, f64>>,
    /// Models of the journal not yet asked for (to count what was reused).
    unasked: Mutex<HashSet<ModelId>>,
    device: Mutex<Device>,
    stats: Mutex<MeterStats>,
    _lock: DirLock,
}

impl LiveMeter {
    /// Connects to the device, locks it (refusing, with the holder's name, when another hwnas
    /// run is timing on it), installs the runtime and opens (or creates) the journal in
    /// `dir`. Members are written in `precision` (int8: float input and output, calibrated on
    /// the default synthetic set); a runtime that cannot time it is refused before anything
    /// is connected or pushed. Records of other devices, runtime setups or precisions in that
    /// journal are kept but not reused.
    pub fn open(spec: &DeviceSpec, dir: &Path, precision: Precision) -> Result<LiveMeter, ProfileError> {
        spec.protocol.validate()?;
        let protocol = spec.protocol.clone();
        let runtime = spec.runtime.build()?;
        check_precision(runtime.as_ref(), precision)?;
        std::fs::create_dir_all(dir).map_err(create(dir))?;
        let lock = lock(dir)?;
        let target: Arc<dyn Target> = Arc::from(connect(&spec.device, &spec.adb)?);
        let id = target.id();
        let device_lock = HeldLock::acquire(target.clone(), Duration::ZERO)?;
        let binary = runtime.install(&*target).map_err(|source| ProfileError::Install {
            runtime: runtime.name().into(),
            device: id.clone(),
            source,
        })?;
        let (journal, loaded) = Journal::open(dir)?;
        let staging = dir.join(".staging");
        std::fs::create_dir_all(&staging).map_err(create(&staging))?;
        let device = Device {
            target,
            lock: device_lock,
            runtime,
            binary,
            protocol,
            journal,
            last: None,
            start: RunStart::default(),
        };
        let runtime_id = device.bench(&staging).runtime_id();
        let cache: HashMap<ModelId, f64> = loaded
            .records
            .iter()
            .filter(|r| r.device == id && r.runtime == runtime_id)
            .map(|r| (r.model.clone(), r.summary.median_us / 1000.0))
            .collect();
        let stats = MeterStats { journaled: cache.len(), ..Default::default() };
        let unasked = cache.keys().cloned().collect();
        Ok(LiveMeter {
            id,
            dir: dir.into(),
            quantization: Quantization::of(precision),
            cache: Mutex::new(cache),
            unasked: Mutex::new(unasked),
            device: Mutex::new(device),
            stats: Mutex::new(stats),
            _lock: lock,
        })
    }

    /// The device's id (its serial, or `local`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The precision members are written and timed in.
    pub fn precision(&self) -> Precision {
        self.quantization.precision
    }

    pub fn stats(&self) -> MeterStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Median latency (ms) of member `g` of `space` at its own resolution in the meter's
    /// precision: from the journal if it was measured before, otherwise timed now (weights
    /// random, seed 0: latency does not depend on their values).
    pub fn measure(&self, space: &dyn SearchSpace, g: &Genome) -> Result<f64, ProfileError> {
        let mut g = g.clone();
        space.canonicalize(&mut g);
        let model = ModelId::network(space.name(), space.to_json(&g).to_string(), space.resolution(&g))
            .with_quantization(&self.quantization);
        if let Some(ms) = self.cached(&model) {
            return Ok(ms);
        }
        let mut device = self.device.lock().unwrap_or_else(|p| p.into_inner());
        // Another thread may have timed it while this one waited for the device.
        if let Some(ms) = self.cached(&model) {
            return Ok(ms);
        }
        let building = Instant::now();
        let bytes = network_file(space, &g, model.resolution, 0, &self.quantization)?;
        let build_us = building.elapsed().as_secs_f64() * 1e6;
        let mut rec = device.time(&model, &bytes, &self.dir.join(".staging"))?;
        rec.phases.build_us = build_us;
        let ms = rec.summary.median_us / 1000.0;
        device.journal.append(&rec).map_err(|source| ProfileError::Journaling {
            model: model.label(),
            device: self.id.clone(),
            source,
        })?;
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(model, ms);
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.measured += 1;
        stats.flagged += rec.flagged() as usize;
        Ok(ms)
    }

    fn cached(&self, model: &ModelId) -> Option<f64> {
        let ms = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(model).copied()?;
        if self.unasked.lock().unwrap_or_else(|p| p.into_inner()).remove(model) {
            self.stats.lock().unwrap_or_else(|p| p.into_inner()).reused += 1;
        }
        Some(ms)
    }

    /// Writes every journaled record (all devices and setups) to the directory's Parquet dataset.
    pub fn write_dataset(&self) -> Result<PathBuf, ProfileError> {
        let records = read_journal(&self.dir)?;
        let path = self.dir.join(DATASET_FILE);
        write_parquet(&records, &path)?;
        Ok(path)
    }
}

impl Device {
    fn bench<'a>(&'a self, staging: &'a Path) -> Bench<'a> {
        Bench {
            target: &*self.target,
            runtime: &*self.runtime,
            binary: self.binary.clone(),
            protocol: &self.protocol,
            staging,
            models_dir: format!("{}/models", self.lock.run_dir()),
            start: &self.start,
        }
    }

    /// Times one model after the protocol's cool-down since the previous one.
    fn time(&mut self, model: &ModelId, bytes: &[u8], staging: &Path) -> Result<Record, ProfileError> {
        if let Some(last) = self.last {
            std::thread::sleep(self.protocol.cooldown.saturating_sub(last.elapsed()));
        }
        let rec = self.bench(staging).measure(model, bytes);
        self.last = Some(Instant::now());
        rec.map_err(|source| ProfileError::Measure { model: model.label(), device: self.target.id(), source })
    }
}
