//! One finished measurement, as journaled (a JSON line) and exported (a Parquet row).

use super::stats::Summary;
use crate::modelfile::precision::{Precision, Quantization};
use crate::target::DeviceInfo;

/// Whether a model is one layer (a lookup-table entry) or a whole network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Layer,
    Network,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Layer => "layer",
            Kind::Network => "network",
        }
    }
}

/// What was timed: a layer (by its lookup key) or a network (by its architecture JSON).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ModelId {
    pub kind: Kind,
    pub space: String,
    /// Layer key (`spaces::ir::Layer::key`); empty for networks.
    pub key: String,
    /// Canonical architecture JSON; empty for layers.
    pub arch: String,
    pub resolution: u32,
    /// The model file's precision: part of the identity, so a record of another precision is
    /// never reused. Journals written before precisions existed have none: fp32.
    #[serde(default)]
    pub precision: Precision,
    /// An int8 model with int8 input/output tensors (`--int8-io`); absent: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub int8_io: bool,
}

impl ModelId {
    pub fn layer(space: &str, key: String, resolution: u32) -> ModelId {
        ModelId {
            kind: Kind::Layer,
            space: space.into(),
            key,
            arch: String::new(),
            resolution,
            precision: Precision::Fp32,
            int8_io: false,
        }
    }
    pub fn network(space: &str, arch: String, resolution: u32) -> ModelId {
        ModelId {
            kind: Kind::Network,
            space: space.into(),
            key: String::new(),
            arch,
            resolution,
            precision: Precision::Fp32,
            int8_io: false,
        }
    }
    /// The same model written in precision `q` asks for.
    pub fn with_quantization(mut self, q: &Quantization) -> ModelId {
        self.precision = q.precision;
        self.int8_io = q.precision == Precision::Int8 && q.int8_io;
        self
    }
    /// Short human-readable name for progress and error messages.
    pub fn label(&self) -> String {
        let base = match self.kind {
            Kind::Layer => format!("layer {}", self.key),
            Kind::Network => format!("network {} @{}", self.arch, self.resolution),
        };
        match (self.precision, self.int8_io) {
            (Precision::Fp32, _) => base,
            (Precision::Int8, true) => format!("{base} (int8, int8 io)"),
            (p, _) => format!("{base} ({p})"),
        }
    }
}

/// How the measurement was taken: identical settings give comparable numbers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct RuntimeId {
    pub runtime: String,
    /// Every argument, with `{binary}` and `{model}` standing for the device paths.
    pub flags: Vec<String>,
    pub binary_sha256: String,
}

/// The identity under which a record is never measured twice.
pub type Identity = (String, ModelId, RuntimeId);

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// `Target::id()` of the device.
    pub device: String,
    pub model: ModelId,
    pub runtime: RuntimeId,
    /// Device state read just before timing (frequencies, temperature).
    pub device_info: DeviceInfo,
    pub model_sha256: String,
    pub model_bytes: u64,
    /// Every sample in µs, in the order measured, and which survived outlier rejection.
    pub samples_us: Vec<f64>,
    pub kept: Vec<bool>,
    pub summary: Summary,
    pub rounds: u32,
    /// Why the measurement is suspect (hot device, unsettled frequency, unstable samples); empty if none.
    pub warnings: Vec<String>,
    /// Per-round runtime statistics as printed.
    pub detail: Vec<serde_json::Value>,
    /// Time the model spent in timed runs, and the wall time of the whole measurement, in µs.
    pub timed_us: f64,
    pub wall_us: f64,
    /// Where the wall time went, to show the profiling overhead.
    #[serde(default)]
    pub phases: Phases,
    /// A network's per-op profile per IR layer (`--per-layer`); the dataset's
    /// `layer-in-network` rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_times: Option<super::layers::LayerTimes>,
    /// Unix time in milliseconds when the measurement finished.
    pub timestamp_ms: i64,
}

impl Record {
    pub fn identity(&self) -> Identity {
        (self.device.clone(), self.model.clone(), self.runtime.clone())
    }
    pub fn flagged(&self) -> bool {
        !self.warnings.is_empty()
    }
}

/// Wall time of each step of one measurement, in µs.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Phases {
    /// Building the model file on the host (not part of `wall_us`).
    pub build_us: f64,
    /// Reading device state and waiting for frequency/temperature to settle.
    pub settle_us: f64,
    /// Writing the model file and pushing it to the device.
    pub push_us: f64,
    /// The runtime invocations: start-up, model loading, warm-up and the timed runs.
    pub rounds_us: f64,
    /// Deleting the model from the device.
    pub cleanup_us: f64,
    /// Of `rounds_us`, what the runtime reported: loading the model (parse, optimise, plan),
    /// its warm-up, waiting for the device to cool down, and per-layer profiling runs.
    #[serde(default)]
    pub setup_us: f64,
    #[serde(default)]
    pub warmup_us: f64,
    #[serde(default)]
    pub cooldown_us: f64,
    #[serde(default)]
    pub profile_us: f64,
}

impl Phases {
    /// Adds `other`'s times to these.
    pub fn add(&mut self, other: &Phases) {
        self.build_us += other.build_us;
        self.settle_us += other.settle_us;
        self.push_us += other.push_us;
        self.rounds_us += other.rounds_us;
        self.cleanup_us += other.cleanup_us;
        self.setup_us += other.setup_us;
        self.warmup_us += other.warmup_us;
        self.cooldown_us += other.cooldown_us;
        self.profile_us += other.profile_us;
    }

    /// The runtime's own report of where its time went, summed over `details` (one per
    /// invocation or batch line): `init_us`, `warmup_us`, `cooldown_us`, `layer_profile.total_us`.
    pub fn add_reported(&mut self, details: &[serde_json::Value]) {
        let get = |d: &serde_json::Value, k: &str| d.get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
        for d in details {
            self.setup_us += get(d, "init_us");
            self.warmup_us += get(d, "warmup_us");
            self.cooldown_us += get(d, "cooldown_us");
            self.profile_us += d.get("layer_profile").map_or(0.0, |p| get(p, "total_us"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_written_before_precisions_read_as_fp32() {
        // A model id as journals wrote it before issue 16 (no precision field).
        let old = r#"{"kind":"layer","space":"fbnet-cifar100","key":"k","arch":"","resolution":32}"#;
        let id: ModelId = serde_json::from_str(old).unwrap();
        assert_eq!((id.precision, id.int8_io), (Precision::Fp32, false));
        assert_eq!(id, ModelId::layer("fbnet-cifar100", "k".into(), 32));
        let int8 = id.clone().with_quantization(&Quantization::of(Precision::Int8));
        assert_ne!(int8, id, "another precision is another identity");
        let text = serde_json::to_string(&int8).unwrap();
        assert!(text.contains(r#""precision":"int8""#), "{text}");
        assert_eq!(serde_json::from_str::<ModelId>(&text).unwrap(), int8);
    }
}
