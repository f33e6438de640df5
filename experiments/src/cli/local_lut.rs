//! The latency source of the main example when no predictor file is given: this
//! machine's CPU (`local` device) profiled into a lookup table, cached so that the
//! profiling happens on first use only (and resumes from its journal if killed).
//!
//! The table is timed with LiteRT (XNNPACK, the kernels a phone's CPU runs) when the
//! repository's `.venv` has ai-edge-litert, else with hwnas-runner (tract, fp32 only). The
//! cache is keyed on the space, the precision, the runtime and the runtime's identity
//! (SHA-256), so a table timed by one runtime is never reused as another's.

use super::profile::Request;
use anyhow::{bail, Context, Result};
use latency::modelfile::Precision;
use latency::profile::RuntimeSpec;
use latency::runtime::litert::LitertRuntime;
use latency::runtime::runner::RunnerRuntime;
use latency::runtime::Runtime;
use predictors::train::TrainOptions;
use std::path::PathBuf;

/// `$HWNAS_CACHE`, else `$XDG_CACHE_HOME/hwnas`, else `~/.cache/hwnas`.
pub(crate) fn cache_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("HWNAS_CACHE") {
        return Ok(dir.into());
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("hwnas"));
    }
    let home = std::env::var_os("HOME").context("neither HWNAS_CACHE, XDG_CACHE_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache/hwnas"))
}

/// The runtime that times this machine's table, and how to say so.
struct LocalRuntime {
    spec: RuntimeSpec,
    /// Its name in the cache directory's name.
    tag: &'static str,
    /// Its identity (the SHA-256 its records carry).
    sha256: String,
    /// E.g. `LiteRT 2.3.0 (XNNPACK)`.
    describe: String,
}

/// LiteRT when the repository's `.venv` has it, else hwnas-runner (saying why not LiteRT).
fn local_runtime(precision: Precision) -> Result<LocalRuntime> {
    let why_not = match LitertRuntime::new(LitertRuntime::default_python()) {
        Ok(rt) => {
            return Ok(LocalRuntime {
                spec: RuntimeSpec::litert(&LitertRuntime::default_python())?,
                tag: "litert",
                sha256: rt.binary_sha256().to_string(),
                describe: format!("LiteRT {} (XNNPACK)", rt.version()),
            });
        }
        Err(e) => latency::error::Chain(&e).to_string(),
    };
    let binary = super::measure_args::default_runner()?;
    let runner = RunnerRuntime::new(&binary)?;
    if !runner.precisions().contains(&precision) {
        bail!(
            "a {precision} lookup table of this machine needs LiteRT (hwnas-runner times fp32 models only), and {why_not}"
        );
    }
    eprintln!("latency: LiteRT is not available, so hwnas-runner (tract) times this machine: {why_not}");
    Ok(LocalRuntime {
        spec: RuntimeSpec::Runner { binary: binary.display().to_string() },
        tag: "runner",
        sha256: runner.binary_sha256().to_string(),
        describe: "hwnas-runner (tract)".into(),
    })
}

/// A lookup table of this machine's CPU.
pub struct LocalTable {
    pub path: PathBuf,
    /// The runtime that timed it, e.g. `LiteRT 2.3.0 (XNNPACK)`.
    pub timed_by: String,
}

/// The cached lookup table of `space` in `precision` on this machine, over the space's
/// resolutions (or `resolutions`), profiling and fitting it first if needed; the message names
/// the runtime that timed it.
pub fn cached_local_lut(space_name: &str, resolutions: Option<&[u32]>, precision: Precision) -> Result<LocalTable> {
    let space = spaces::space(space_name)?;
    let rt = local_runtime(precision)?;
    let all = space.resolutions();
    let resolutions = resolutions.map_or(all.clone(), <[u32]>::to_vec);
    let at = if resolutions == all {
        String::new()
    } else {
        format!("-r{}", resolutions.iter().map(u32::to_string).collect::<Vec<_>>().join("_"))
    };
    let dir = cache_root()?.join(format!("local-{space_name}{at}-{precision}-{}-{}", rt.tag, &rt.sha256[..12]));
    let lut_path = dir.join("lut.json");
    if lut_path.is_file() {
        eprintln!(
            "latency: the cached {precision} lookup table of this machine's CPU, timed by {}: {}",
            rt.describe,
            lut_path.display()
        );
        return Ok(LocalTable { path: lut_path, timed_by: rt.describe });
    }
    let layers = space.layer_table(&resolutions).len();
    eprintln!(
        "latency: no predictor given, so profiling this machine's CPU with {} first: {layers} distinct layers of \
         `{space_name}` in {precision} (once; cached in {}, resumable if interrupted)",
        rt.describe,
        dir.display()
    );
    let request = Request::local_table(space_name, resolutions, precision, rt.spec, dir.clone());
    super::profile::profile(&request).context("profiling this machine for the lookup table")?;

    let data = dir.join("latency.parquet");
    let ds = predictors::dataset::load(&data, Some(space_name), "latency_ms")?;
    let entries = ds.layers.iter().map(|l| &l.key).collect::<std::collections::HashSet<_>>().len();
    // `fit` records the rows' precision in the file (a search deploying another refuses it).
    let lut = predictors::train::fit("lut", &ds, &[], &TrainOptions::default())?;
    lut.save(&lut_path).with_context(|| format!("writing {}", lut_path.display()))?;
    eprintln!(
        "latency: {} lookup table of {entries} entries, timed by {} -> {}",
        lut.precision(),
        rt.describe,
        lut_path.display()
    );
    Ok(LocalTable { path: lut_path, timed_by: rt.describe })
}
