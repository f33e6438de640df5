//! A search job: a space, latency objectives, an accuracy source, a strategy and a budget,
//! run generation by generation in its own directory:
//!
//! - `.lock`: held while a process works on the job (see [`crate::lock`]): a second
//!   process on the same directory is refused, naming the one that holds it;
//! - `config.json`: the resolved configuration, with the SHA-256 fingerprints of its input
//!   files under `inputs` (see [`crate::inputs`]): `resume` refuses an input that changed;
//! - `log.txt`: what happened, generation by generation;
//! - `state.json`: checkpoint after each completed generation (written to a temporary file
//!   and renamed, so a kill leaves either the old or the new one);
//! - `history.jsonl` while running, `history.parquet` at the end: every evaluated architecture;
//! - `pareto.json`, `best.json`, `progress.{png,svg}`, `pareto.{png,svg}` at the end.
//!
//! Each generation draws from its own generator seeded by (seed, generation), so a resumed
//! job produces exactly the history of an uninterrupted one.
//!
//! A job whose last `max_infeasible_generations` generations produced no feasible member
//! stops with [`Unreachable`] (checkpointed). Not RL: its reward trades latency for accuracy.

use crate::config::{AccuracySpec, JobConfig};
use crate::evaluate::Evaluator;
use crate::history::{self, Record};
use crate::inputs::{self, InputDigest};
use crate::lock::{lock_dir, DirLock};
use crate::min_latency::{min_latency, MinLatency};
use crate::objectives::{AccuracySource, LatencyObjective, LatencySource};
use crate::pareto::dominates;
use crate::plots;
use crate::rng::generation_rng;
use crate::strategies::{self, Ctx, Strategy};
use anyhow::{bail, Context, Result};
use latency::files::write_atomic;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use spaces::Genome;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The checkpoint: everything needed to continue after the last completed generation.
#[derive(Serialize, Deserialize)]
struct Checkpoint {
    format: u32,
    config: JobConfig,
    next_generation: usize,
    history_rows: usize,
    fastest: Genome,
    fastest_ms: f64,
    strategy: Value,
    /// Fingerprints of the input files (absent in checkpoints of older builds).
    #[serde(default)]
    inputs: Vec<InputDigest>,
    /// Generations in a row, up to `next_generation`, without a feasible member.
    #[serde(default)]
    infeasible_run: usize,
}

const FORMAT: u32 = 1;

/// What a generation reports to a progress display.
pub struct GenerationReport {
    pub generation: usize,
    pub total: usize,
    pub evaluated: usize,
    pub best: Option<f64>,
}

/// The result of a completed job.
pub struct Outcome {
    pub best: Option<Record>,
    pub front: Vec<Record>,
    pub evaluated: usize,
    pub fastest: MinLatency,
    pub accuracy_kind: String,
    pub accuracy_description: String,
    pub dir: PathBuf,
}

/// Why a job stopped early: its last generations produced no feasible member.
#[derive(Debug)]
pub struct Unreachable {
    pub message: String,
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Unreachable {}

pub struct Job {
    pub config: JobConfig,
    dir: PathBuf,
    inputs: Vec<InputDigest>,
    infeasible_run: usize,
    /// Held for the job's lifetime: no other process writes this directory meanwhile.
    _lock: DirLock,
    ev: Evaluator,
    strategy: Box<dyn Strategy>,
    next_generation: usize,
    history: Vec<Record>,
    fastest: MinLatency,
    log: File,
}

fn config_differences(a: &JobConfig, b: &JobConfig) -> Vec<String> {
    let (va, vb) = (serde_json::to_value(a).unwrap_or_default(), serde_json::to_value(b).unwrap_or_default());
    let (Some(ma), Some(mb)) = (va.as_object(), vb.as_object()) else { return vec!["config".into()] };
    ma.keys()
        .chain(mb.keys())
        .filter(|k| ma.get(*k) != mb.get(*k))
        .cloned()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect()
}

/// The job's space: the named space with its resolution gene restricted to the resolutions
/// every latency predictor covers (OFA's Note10 tables: 160–224), then the `fixed` pins. A
/// pinned resolution that a predictor does not cover is refused, naming the ones it covers.
fn job_space(config: &JobConfig, latency: &[LatencySource]) -> Result<Box<dyn spaces::SearchSpace>> {
    let mut space = spaces::space(&config.space)?;
    for (spec, source) in config.latency.iter().zip(latency) {
        let LatencySource::Predictor(p) = source else { continue };
        predictors::check_serves(p.as_ref(), &config.space)
            .with_context(|| format!("latency predictor `{}` ({})", spec.label, spec.path))?;
        let Some(covered) = p.resolutions_covered(&config.space) else { continue };
        let why = format!("latency predictor `{}` ({})", spec.label, spec.path);
        let wanted = crate::pinned::pin(spaces::space(&config.space)?, &config.fixed)?.resolutions();
        if !wanted.iter().any(|r| covered.contains(r)) {
            let list = |r: &[u32]| r.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
            bail!(
                "fixed resolution {} is not covered: {why} covers resolutions {} only",
                list(&wanted),
                list(&covered)
            );
        }
        space = crate::pinned::restrict_resolutions(space, &covered, &why)?;
    }
    crate::pinned::pin(space, &config.fixed)
}

/// Refuses latency predictors fitted on measurements of another precision than the job's
/// models (`config.precision`), naming both, unless `allow_precision_mismatch`; returns the
/// log lines of the mismatches allowed.
fn check_precisions(config: &JobConfig, latency: &[LatencySource]) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for (spec, source) in config.latency.iter().zip(latency) {
        let p = match source {
            LatencySource::Predictor(p) => p,
            LatencySource::Device(m) if m.precision() != config.precision => bail!(
                "latency `{}` times {} models on device {}, but the job deploys {} models: open the device's meter \
                 in the job's precision",
                spec.label,
                m.precision(),
                m.id(),
                config.precision
            ),
            LatencySource::Device(_) => continue,
        };
        let what = format!("latency predictor `{}` ({})", spec.label, spec.path);
        match predictors::check_precision(p.as_ref(), config.precision) {
            Ok(()) => {}
            Err(_) if config.allow_precision_mismatch => notes.push(format!(
                "WARNING: {what} was fitted on {} measurements and prices this {} job's models \
                 (allow_precision_mismatch): its latencies are not those of the deployed models",
                p.precision(),
                config.precision
            )),
            Err(e) => return Err(e.context(what)),
        }
    }
    Ok(notes)
}

/// The input files `config` reads, fingerprinted: predictor files (and the weights an MLP
/// keeps beside its JSON), the accuracy predictor or supernet checkpoint and its data. A
/// latency path that is no file (an in-memory predictor's description) is not an input.
pub fn job_inputs(config: &JobConfig) -> Result<Vec<InputDigest>> {
    let mut out = Vec::new();
    let mut add = |role: String, path: &Path, required: bool| -> Result<()> {
        if required || path.exists() {
            out.push(inputs::digest(&role, path)?);
        }
        Ok(())
    };
    for spec in config.latency.iter().filter(|s| s.measure.is_none()) {
        let path = Path::new(&spec.path);
        if path.is_file() {
            let role = format!("latency predictor `{}`", spec.label);
            add(role.clone(), path, true)?;
            add(format!("{role} weights"), &predictors::mlp::weights_path(path), false)?;
        }
    }
    match &config.accuracy {
        AccuracySpec::Predictor { path } => {
            let path = Path::new(path);
            add("accuracy predictor".into(), path, true)?;
            add("accuracy predictor weights".into(), &predictors::mlp::weights_path(path), false)?;
        }
        AccuracySpec::Supernet { path, eval } => {
            add("supernet checkpoint".into(), Path::new(path), true)?;
            if let Some(d) = inputs::data_dir(&eval.data) {
                add("accuracy data".into(), d, true)?;
            }
        }
        AccuracySpec::CapacityProxy => {}
    }
    Ok(out)
}

impl Job {
    /// Opens a job in `dir`: a new one, or with `resume` the one checkpointed there (whose
    /// configuration must equal `config`). `latency` holds one source (a predictor or a
    /// device meter) per `config.latency` entry. Fails before writing anything when the
    /// latency target is below the smallest latency the space reaches under the first one.
    pub fn open(
        mut config: JobConfig,
        latency: Vec<impl Into<LatencySource>>,
        accuracy: Arc<dyn AccuracySource>,
        dir: &Path,
        resume: bool,
    ) -> Result<Job> {
        config.resolve();
        config.validate()?;
        if latency.len() != config.latency.len() {
            bail!("config names {} latency predictors but {} were given", config.latency.len(), latency.len());
        }
        let latency: Vec<LatencySource> = latency.into_iter().map(Into::into).collect();
        let space = job_space(&config, &latency)?;
        let precision_notes = check_precisions(&config, &latency)?;
        let objectives = config
            .latency
            .iter()
            .zip(latency)
            .map(|(spec, source)| LatencyObjective::from_source(spec.label.clone(), source, &*space))
            .collect();
        let strategy = strategies::build(&config, &*space);
        let ev = Evaluator::new(space, objectives, accuracy, config.max_latency_ms);
        let inputs = job_inputs(&config)?;
        let state_path = dir.join("state.json");
        let exists = || -> Result<()> {
            if state_path.exists() && !resume {
                bail!(
                    "{} already holds a search job; pass --resume to continue it or choose another --out",
                    dir.display()
                );
            }
            Ok(())
        };
        exists()?;
        if state_path.exists() {
            let lock = lock_dir(dir, "search")?;
            return Self::resume(config, ev, strategy, dir, inputs, lock).map(|j| j.noting(precision_notes));
        }
        let fastest = min_latency(&ev, config.seed)?;
        let measured = ev.latency[0].meter().is_some();
        if fastest.latency_ms > config.max_latency_ms {
            bail!(
                "latency target {} ms is infeasible for space {} under {} `{}`: the smallest latency found is \
                 {:.4} ms ({}), by {}",
                config.max_latency_ms,
                config.space,
                if measured { "device" } else { "predictor" },
                config.latency[0].label,
                fastest.latency_ms,
                ev.space.to_json(&fastest.genome),
                MinLatency::method(measured)
            );
        }
        // Only now (the target is reachable) the directory is created and locked; a job
        // another process checkpointed there meanwhile is refused as above.
        let lock = lock_dir(dir, "search")?;
        exists()?;
        if state_path.exists() {
            return Self::resume(config, ev, strategy, dir, inputs, lock).map(|j| j.noting(precision_notes));
        }
        let config_path = dir.join("config.json");
        fs::write(&config_path, inputs::with_inputs(&config, &inputs)?)
            .with_context(|| format!("cannot write {}", config_path.display()))?;
        let _ = fs::remove_file(dir.join("history.jsonl"));
        let log = create_log(dir, false)?;
        let mut job = Job {
            config,
            dir: dir.into(),
            inputs,
            infeasible_run: 0,
            _lock: lock,
            ev,
            strategy,
            next_generation: 0,
            history: Vec::new(),
            fastest,
            log,
        };
        if let Some(n) = job._lock.takeover_note() {
            job.note(n);
        }
        job.note(format!(
            "search {} on {}, population {}, {} generations (accuracy: {}; latency: {}{}), target {} ms, seed {}",
            job.config.strategy.name(),
            job.config.space,
            job.config.population,
            job.config.generations,
            job.ev.accuracy.describe(),
            job.config.latency.iter().map(|l| format!("{} ({})", l.label, l.path)).collect::<Vec<_>>().join(", "),
            match (job.ev.latency[0].is_gene_tabulated(), job.ev.latency[0].is_tabulated()) {
                (true, _) => ", per-gene table",
                (false, true) => ", per-layer table",
                _ => "",
            },
            job.config.max_latency_ms,
            job.config.seed
        ));
        job.note(format!(
            "smallest reachable latency {:.3} ms ({} latency evaluations; {})",
            job.fastest.latency_ms,
            job.fastest.evaluations,
            MinLatency::method(measured)
        ));
        Ok(job.noting(precision_notes))
    }

    fn resume(
        config: JobConfig,
        ev: Evaluator,
        mut strategy: Box<dyn Strategy>,
        dir: &Path,
        inputs: Vec<InputDigest>,
        lock: DirLock,
    ) -> Result<Job> {
        let path = dir.join("state.json");
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let cp: Checkpoint =
            serde_json::from_str(&text).with_context(|| format!("{} is not a checkpoint", path.display()))?;
        if cp.format != FORMAT {
            bail!("{} has checkpoint format {}, this build reads {FORMAT}", path.display(), cp.format);
        }
        if cp.config != config {
            bail!(
                "cannot resume {}: its saved configuration differs in {} (resume with the same settings, or omit them)",
                dir.display(),
                config_differences(&cp.config, &config).join(", ")
            );
        }
        inputs::check_unchanged(dir, &cp.inputs, &inputs)?;
        let (history, dropped) = history::load_committed(&dir.join("history.jsonl"), cp.history_rows)?;
        strategy.restore(cp.strategy)?;
        let log = create_log(dir, true)?;
        let fastest = MinLatency { genome: cp.fastest, latency_ms: cp.fastest_ms, evaluations: 0 };
        let mut job = Job {
            config,
            dir: dir.into(),
            inputs,
            infeasible_run: cp.infeasible_run,
            _lock: lock,
            ev,
            strategy,
            next_generation: cp.next_generation,
            history,
            fastest,
            log,
        };
        if let Some(n) = job._lock.takeover_note() {
            job.note(n);
        }
        if dropped > 0 {
            job.note(format!(
                "dropped {dropped} history line(s) after the {} committed rows: generation {} was interrupted \
                 before its checkpoint and runs again",
                job.history.len(),
                job.next_generation
            ));
        }
        if cp.inputs.is_empty() && !job.inputs.is_empty() {
            job.note("this job's checkpoint had no input fingerprints; they are recorded from now on".into());
            let config_path = dir.join("config.json");
            fs::write(&config_path, inputs::with_inputs(&job.config, &job.inputs)?)
                .with_context(|| format!("cannot write {}", config_path.display()))?;
        }
        job.note(format!("resumed at generation {} with {} evaluated", job.next_generation, job.history.len()));
        Ok(job)
    }

    fn note(&mut self, line: String) {
        let _ = writeln!(self.log, "{line}");
    }

    fn noting(mut self, lines: Vec<String>) -> Job {
        for l in lines {
            self.note(l);
        }
        self
    }

    /// Generations in all, the initial population included.
    pub fn total_generations(&self) -> usize {
        self.config.generations + 1
    }

    pub fn next_generation(&self) -> usize {
        self.next_generation
    }

    /// The job's space (restricted to the covered resolutions and pinned): its genomes are the history's.
    pub fn space(&self) -> &dyn spaces::SearchSpace {
        &*self.ev.space
    }

    pub fn history(&self) -> &[Record] {
        &self.history
    }

    fn checkpoint(&self) -> Result<()> {
        let cp = Checkpoint {
            format: FORMAT,
            config: self.config.clone(),
            next_generation: self.next_generation,
            history_rows: self.history.len(),
            fastest: self.fastest.genome.clone(),
            fastest_ms: self.fastest.latency_ms,
            strategy: self.strategy.state()?,
            inputs: self.inputs.clone(),
            infeasible_run: self.infeasible_run,
        };
        Ok(write_atomic(&self.dir.join("state.json"), serde_json::to_string(&cp)?.as_bytes())?)
    }

    fn best_objective(&self) -> Option<f64> {
        best(&self.history).and_then(|r| r.eval.objective)
    }

    /// Runs the remaining generations, or only `max_generations` of them (then returns
    /// `None`, as if the process had been stopped there). `report` sees each generation.
    pub fn run(
        &mut self,
        max_generations: Option<usize>,
        report: &mut dyn FnMut(&GenerationReport),
    ) -> Result<Option<Outcome>> {
        let total = self.total_generations();
        let mut ran = 0;
        while self.next_generation < total {
            if max_generations.is_some_and(|m| ran >= m) {
                return Ok(None);
            }
            let generation = self.next_generation;
            let mut rng = generation_rng(self.config.seed, generation as u64);
            let mut notes = Vec::new();
            let mut log = |s: String| notes.push(s);
            let mut ctx = Ctx {
                ev: &self.ev,
                population: self.config.population,
                max_tries: self.config.max_tries,
                fastest: &self.fastest.genome,
                log: &mut log,
            };
            let evals = self.strategy.step(generation, &mut rng, &mut ctx)?;
            let rows: Vec<Record> = evals.into_iter().map(|eval| Record { generation, eval }).collect();
            history::append(&self.dir.join("history.jsonl"), &rows)?;
            self.history.extend(rows.iter().cloned());
            self.next_generation += 1;
            let feasible = rows.iter().filter(|r| r.eval.feasible).count();
            self.infeasible_run = if feasible == 0 { self.infeasible_run + 1 } else { 0 };
            self.checkpoint()?;
            ran += 1;
            for n in notes {
                self.note(n);
            }
            let best = self.best_objective();
            self.note(format!(
                "generation {generation}: {} evaluated ({feasible} feasible), best feasible objective {}",
                rows.len(),
                best.map_or("none".into(), |b| format!("{b:.5}"))
            ));
            report(&GenerationReport { generation, total, evaluated: self.history.len(), best });
            // RL's MnasNet reward trades latency for accuracy by design (the soft reward
            // prefers members a little over the target): infeasible generations are no sign
            // of an unreachable target there. The other strategies sample under the target.
            let limit = match self.config.strategy {
                crate::config::StrategyConfig::Rl(_) => 0,
                _ => self.config.max_infeasible_generations,
            };
            if limit > 0 && self.infeasible_run >= limit && self.next_generation < total {
                let message = self.unreachable_message();
                self.note(format!("stopped: {message}"));
                return Err(Unreachable { message }.into());
            }
        }
        self.finish().map(Some)
    }

    fn unreachable_message(&self) -> String {
        let (target, label) = (self.config.max_latency_ms, &self.config.latency[0].label);
        let n = self.infeasible_run;
        let last = self.next_generation - 1;
        let smallest = self.fastest.latency_ms;
        let why = if smallest > target {
            format!(
                "the target is unreachable with this latency source: the smallest latency it gives is {smallest:.3} ms"
            )
        } else {
            format!(
                "the smallest reachable latency is {smallest:.3} ms, so only a sliver of the space meets the target \
                 and the strategy does not find it"
            )
        };
        format!(
            "no member of generations {}..={last} met the {target} ms target under latency `{label}` ({n} generations \
             in a row, the limit max_infeasible_generations); {why}. Raise --max-latency-ms (or --max-tries), check \
             the latency predictor, or raise max_infeasible_generations in the config (0: never stop); the job is \
             checkpointed at generation {}",
            last + 1 - n,
            self.next_generation
        )
    }

    /// For each measured objective: what the device timed (and reused), and its Parquet dataset.
    pub fn measurement_notes(&self) -> Result<Vec<String>> {
        let mut notes = Vec::new();
        for (spec, obj) in self.config.latency.iter().zip(&self.ev.latency) {
            let Some(m) = obj.meter() else { continue };
            let dataset = m.write_dataset().map_err(anyhow::Error::msg)?;
            let s = m.stats();
            notes.push(format!(
                "latency `{}`: {} networks timed on {} in this run ({} flagged), {} taken from the {} records \
                 already in the journal; dataset {}",
                spec.label,
                s.measured,
                m.id(),
                s.flagged,
                s.reused,
                s.journaled,
                dataset.display()
            ));
        }
        Ok(notes)
    }

    /// Writes the final outputs (history.parquet, pareto.json, best.json, plots).
    fn finish(&mut self) -> Result<Outcome> {
        for line in self.measurement_notes()? {
            self.note(line);
        }
        let space = &*self.ev.space;
        let labels: Vec<String> = self.config.latency.iter().map(|l| l.label.clone()).collect();
        history::write_parquet(&self.dir.join("history.parquet"), &self.history, space, &labels)?;
        let front = pareto_front(&self.history);
        let acc_kind = self.ev.accuracy.kind().to_string();
        let acc_desc = self.ev.accuracy.describe();
        let entry = |r: &Record| {
            json!({
                "generation": r.generation,
                "arch": space.to_json(&r.eval.genome),
                "latency_ms": labels.iter().cloned().zip(r.eval.latency_ms.iter().map(|&v| json!(v))).collect::<serde_json::Map<String, Value>>(),
                "accuracy": r.eval.accuracy,
                "objective": r.eval.objective,
                "feasible": r.eval.feasible,
            })
        };
        let source = json!({ "kind": acc_kind, "description": acc_desc });
        let pareto = json!({
            "space": self.config.space,
            "objectives": std::iter::once("accuracy (max)".to_string())
                .chain(labels.iter().map(|l| format!("latency_ms.{l} (min)"))).collect::<Vec<_>>(),
            "max_latency_ms": self.config.max_latency_ms,
            "accuracy_source": source,
            "front": front.iter().map(entry).collect::<Vec<_>>(),
        });
        let path = self.dir.join("pareto.json");
        fs::write(&path, serde_json::to_string_pretty(&pareto)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        let best = best(&self.history).cloned();
        let best_json = json!({
            "space": self.config.space,
            "strategy": self.config.strategy.name(),
            "max_latency_ms": self.config.max_latency_ms,
            "accuracy_source": source,
            "evaluated": self.history.len(),
            "best": best.as_ref().map(entry),
        });
        let path = self.dir.join("best.json");
        fs::write(&path, serde_json::to_string_pretty(&best_json)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        let objective = match self.config.strategy {
            crate::config::StrategyConfig::Rl(_) => "MnasNet reward ACC·(LAT/T)^w".to_string(),
            _ => acc_kind.clone(),
        };
        plots::write_all(&self.dir, &self.history, &front, self.config.max_latency_ms, &objective, &acc_kind)?;
        match &best {
            Some(b) => self.note(format!(
                "done: {} evaluated; best {} at {:.3} ms, {} {:.5}",
                self.history.len(),
                space.to_json(&b.eval.genome),
                b.eval.latency_ms[0],
                acc_kind,
                b.eval.accuracy
            )),
            None => self.note(format!("done: {} evaluated; no feasible architecture", self.history.len())),
        }
        Ok(Outcome {
            best,
            front,
            evaluated: self.history.len(),
            fastest: self.fastest.clone(),
            accuracy_kind: acc_kind,
            accuracy_description: acc_desc,
            dir: self.dir.clone(),
        })
    }
}

/// The job's log, appended to (`resume`) or started afresh.
fn create_log(dir: &Path, append: bool) -> Result<File> {
    let path = dir.join("log.txt");
    let f = if append { OpenOptions::new().create(true).append(true).open(&path) } else { File::create(&path) };
    f.with_context(|| format!("cannot write {}", path.display()))
}

/// The feasible record with the highest objective (earliest on ties).
pub fn best(history: &[Record]) -> Option<&Record> {
    history.iter().filter(|r| r.eval.feasible && r.eval.objective.is_some()).fold(None, |b: Option<&Record>, r| match b
    {
        Some(b) if b.eval.objective >= r.eval.objective => Some(b),
        _ => Some(r),
    })
}

/// Non-dominated feasible records on (max accuracy, min each latency), one per
/// architecture, sorted by the constrained latency. Incremental: each record is checked
/// against the current front only, O(n · |front|).
pub fn pareto_front(history: &[Record]) -> Vec<Record> {
    let objectives = |r: &Record| -> Vec<f64> {
        std::iter::once(-r.eval.accuracy).chain(r.eval.latency_ms.iter().copied()).collect()
    };
    let mut front: Vec<(Vec<f64>, &Record)> = Vec::new();
    for r in history.iter().filter(|r| r.eval.feasible) {
        let o = objectives(r);
        if front.iter().any(|(f, _)| dominates(f, &o) || *f == o) {
            continue;
        }
        front.retain(|(f, _)| !dominates(&o, f));
        front.push((o, r));
    }
    let mut out: Vec<Record> = front.into_iter().map(|(_, r)| r.clone()).collect();
    out.sort_by(|a, b| a.eval.latency_ms[0].total_cmp(&b.eval.latency_ms[0]));
    out
}
