//! The latency source of the main example when no predictor file is given: this
//! machine's CPU (`local` device) profiled into a lookup table, cached so that the
//! profiling happens on first use only (and resumes from its journal if killed).

use anyhow::{Context, Result};
use clap::Parser;
use predictors::train::{fit_lut, TrainOptions};
use predictors::LatencyPredictor;
use std::path::PathBuf;

/// `hwnas profile`'s own flags and defaults, so this path and the command never drift apart.
#[derive(Parser)]
struct ProfileCommand {
    #[command(flatten)]
    args: super::profile::Args,
}

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

/// The cached lookup table of `space` on this machine, profiling and fitting it first if needed.
pub fn cached_local_lut(space_name: &str) -> Result<PathBuf> {
    let space = spaces::space(space_name)?;
    let dir = cache_root()?.join(format!("local-{space_name}"));
    let lut_path = dir.join("lut.json");
    if lut_path.is_file() {
        eprintln!("latency: the cached lookup table of this machine's CPU, {}", lut_path.display());
        return Ok(lut_path);
    }
    let resolutions = space.resolutions();
    let layers = space.layer_table(&resolutions).len();
    eprintln!(
        "latency: no predictor given, so profiling this machine's CPU first: {layers} distinct layers of `{space_name}` \
         (once; cached in {}, resumable if interrupted)",
        dir.display()
    );
    let res: Vec<String> = resolutions.iter().map(u32::to_string).collect();
    let argv = ["profile", "--device", "local", "--space", space_name, "--table", "--resolutions", &res.join(",")];
    let out = dir.display().to_string();
    let cmd = ProfileCommand::try_parse_from(argv.iter().copied().chain(["--out", &out]))?;
    super::profile::run(cmd.args).context("profiling this machine for the lookup table")?;

    let data = dir.join("latency.parquet");
    let ds = predictors::dataset::load(&data, Some(space_name), "latency_ms")?;
    let lut = fit_lut(&ds, &[], &TrainOptions::default())?;
    lut.save(&lut_path).with_context(|| format!("writing {}", lut_path.display()))?;
    eprintln!("latency: lookup table of {} entries -> {}", lut.entries().len(), lut_path.display());
    Ok(lut_path)
}
