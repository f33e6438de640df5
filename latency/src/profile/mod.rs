//! The measurement protocol and `hwnas profile`: jobs over devices, records,
//! the resumable journal and the Parquet dataset.

pub mod dataset;
pub mod job;
pub mod journal;
pub mod layers;
pub mod live;
pub mod models;
pub mod protocol;
pub mod record;
pub mod session;
pub mod settings;
pub mod stats;

pub use dataset::{write_parquet, DatasetError, DATASET_FILE};
pub use job::{DeviceReport, Event, Job, ModelSource, SourceError};
pub use journal::{Journal, JournalError, JOURNAL_FILE};
pub use layers::{LayerMap, LayerTimes};
pub use live::{DeviceSpec, LiveMeter, MeterStats};
pub use models::ModelError;
pub use protocol::{Bench, Protocol, ProtocolError, RunStart};
pub use record::{Identity, Kind, ModelId, Record, RuntimeId};
pub use session::ProfileError;
pub use settings::{connect, ConnectError, RuntimeSpec};
