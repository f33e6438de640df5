//! A sampling search job: a space, latency objectives, an accuracy source, a strategy and a
//! budget, run generation by generation in its job directory ([`crate::jobdir`]: lock,
//! config.json with input fingerprints, atomic `state.json` after each completed
//! generation, `history.jsonl`, `log.txt`), which at the end also holds `history.parquet`
//! (every evaluated architecture), `pareto.json`, `best.json`, `progress.{png,svg}` and
//! `pareto.{png,svg}`.
//!
//! Each generation draws from its own generator seeded by (seed, generation), so a resumed
//! job produces exactly the history of an uninterrupted one.
//!
//! A job whose last `max_infeasible_generations` generations produced no feasible member
//! stops with [`Unreachable`] (checkpointed). Not RL: its reward trades latency for accuracy.

use crate::config::{invalid, JobConfig, SamplingConfig, StrategyConfig};
use crate::evaluate::Evaluator;
use crate::history::{self, Record};
use crate::jobdir::{check_predictor_precision, job_inputs, JobDir, Opened, Progress};
pub use crate::jobdir::{JobError, Unreachable};
use crate::min_latency::{min_latency, MinLatency};
use crate::objectives::{AccuracySource, LatencyObjective, LatencySource};
use crate::pareto::dominates;
use crate::plots;
use crate::rng::generation_rng;
use crate::strategies::{self, Ctx, Strategy};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use spaces::Genome;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A sampling job's progress in its checkpoint: everything needed to continue after the last
/// completed generation.
#[derive(Serialize, Deserialize)]
struct Generations {
    next_generation: usize,
    history_rows: usize,
    fastest: Genome,
    fastest_ms: f64,
    strategy: Value,
    /// Generations in a row, up to `next_generation`, without a feasible member.
    #[serde(default)]
    infeasible_run: usize,
}

impl Progress for Generations {
    fn history_rows(&self) -> usize {
        self.history_rows
    }
    fn next_step(&self) -> (&'static str, usize) {
        ("generation", self.next_generation)
    }
}

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

/// A sampling job in its directory.
pub struct Job {
    pub config: JobConfig,
    /// Predictors used although fitted on another precision (`allow_precision_mismatch`),
    /// also in the log.
    pub warnings: Vec<String>,
    dir: JobDir,
    infeasible_run: usize,
    ev: Evaluator,
    strategy: Box<dyn Strategy>,
    next_generation: usize,
    history: Vec<Record>,
    fastest: MinLatency,
}

/// The sampling settings of a configuration handed to a sampling job.
fn sampling(config: &JobConfig) -> Result<&SamplingConfig, JobError> {
    config.sampling_config().ok_or_else(|| {
        invalid(
            "strategy",
            format!("{} is a differentiable search: open it with search::dnas::DnasJob", config.strategy_name()),
        )
        .into()
    })
}

/// The job's space: the named space with its resolution gene restricted to the resolutions
/// every latency predictor covers (OFA's Note10 tables: 160–224), then the `fixed` pins. A
/// pinned resolution that a predictor does not cover is refused, naming the ones it covers.
fn job_space(config: &JobConfig, latency: &[LatencySource]) -> Result<Box<dyn spaces::SearchSpace>, JobError> {
    let fixed = &sampling(config)?.fixed;
    let named = || spaces::space(&config.space);
    let mut space = named()?;
    for (spec, source) in config.latency.iter().zip(latency) {
        let LatencySource::Predictor(p) = source else { continue };
        predictors::check_serves(p.as_ref(), &config.space).map_err(|e| JobError::predictor(spec, e))?;
        let Some(covered) = p.resolutions_covered(&config.space) else { continue };
        let why = format!("latency predictor `{}` ({})", spec.label, spec.path);
        let wanted = crate::pinned::pin(named()?, fixed)?.resolutions();
        if !wanted.iter().any(|r| covered.contains(r)) {
            let list = |r: &[u32]| r.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
            return Err(JobError::Uncovered { wanted: list(&wanted), why, covered: list(&covered) });
        }
        space = crate::pinned::restrict_resolutions(space, &covered, &why)?;
    }
    Ok(crate::pinned::pin(space, fixed)?)
}

/// Refuses latency predictors fitted on measurements of another precision than the job's
/// models (`config.precision`), naming both, unless `allow_precision_mismatch`; returns the
/// warnings about the mismatches allowed.
fn check_precisions(config: &JobConfig, latency: &[LatencySource]) -> Result<Vec<String>, JobError> {
    let mut warnings = Vec::new();
    for (spec, source) in config.latency.iter().zip(latency) {
        let p = match source {
            LatencySource::Predictor(p) => p,
            LatencySource::Device(m) if m.precision() != config.precision => {
                return Err(invalid(
                    "precision",
                    format!(
                        "latency `{}` times {} models on device {}, but the job deploys {} models: open the device's \
                         meter in the job's precision",
                        spec.label,
                        m.precision(),
                        m.id(),
                        config.precision
                    ),
                )
                .into())
            }
            LatencySource::Device(_) => continue,
        };
        warnings.extend(check_predictor_precision(config, spec, p.as_ref())?);
    }
    Ok(warnings)
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
    ) -> Result<Job, JobError> {
        config.resolve();
        config.validate()?;
        if latency.len() != config.latency.len() {
            return Err(invalid(
                "latency",
                format!("config names {} latency predictors but {} were given", config.latency.len(), latency.len()),
            )
            .into());
        }
        let latency: Vec<LatencySource> = latency.into_iter().map(Into::into).collect();
        let space = job_space(&config, &latency)?;
        let warnings = check_precisions(&config, &latency)?;
        let objectives = config
            .latency
            .iter()
            .zip(latency)
            .map(|(spec, source)| LatencyObjective::from_source(spec.label.clone(), source, &*space))
            .collect();
        let strategy = strategies::build(sampling(&config)?, config.max_latency_ms, &*space);
        let ev = Evaluator::new(space, objectives, accuracy, config.max_latency_ms);
        let inputs = job_inputs(&config)?;
        // A new job checks that its target is reachable before it creates anything.
        let fastest = if JobDir::checkpointed(dir, resume)? { None } else { Some(Self::reachable(&config, &ev)?) };
        let mut job = match JobDir::open::<Generations, Record>(dir, &config, inputs, resume)? {
            Opened::Resumed { dir, checkpoint, history } => {
                let p = checkpoint.progress;
                let mut strategy = strategy;
                strategy.restore(p.strategy)?;
                let fastest = MinLatency { genome: p.fastest, latency_ms: p.fastest_ms, evaluations: 0 };
                let mut job = Job {
                    config,
                    warnings,
                    dir,
                    infeasible_run: p.infeasible_run,
                    ev,
                    strategy,
                    next_generation: p.next_generation,
                    history,
                    fastest,
                };
                job.note(format!(
                    "resumed at generation {} with {} evaluated",
                    job.next_generation,
                    job.history.len()
                ))?;
                job
            }
            Opened::New(dir) => {
                let fastest = match fastest {
                    Some(f) => f,
                    // Another process checkpointed a job here since the check above.
                    None => Self::reachable(&config, &ev)?,
                };
                let mut job = Job {
                    config,
                    warnings,
                    dir,
                    infeasible_run: 0,
                    ev,
                    strategy,
                    next_generation: 0,
                    history: Vec::new(),
                    fastest,
                };
                job.note_start()?;
                job
            }
        };
        for w in &job.warnings {
            job.dir.note(&format!("WARNING: {w}"))?;
        }
        Ok(job)
    }

    /// The smallest latency the job's space reaches, or an error when it is above the target.
    fn reachable(config: &JobConfig, ev: &Evaluator) -> Result<MinLatency, JobError> {
        let fastest = min_latency(ev, config.seed)?;
        let measured = ev.latency[0].meter().is_some();
        if fastest.latency_ms > config.max_latency_ms {
            return Err(JobError::Infeasible(Box::new(crate::jobdir::Infeasible {
                target_ms: config.max_latency_ms,
                space: config.space.clone(),
                source_kind: if measured { "device" } else { "predictor" },
                label: config.latency[0].label.clone(),
                smallest_ms: fastest.latency_ms,
                arch: ev.space.to_json(&fastest.genome).to_string(),
                method: MinLatency::method(measured),
            })));
        }
        Ok(fastest)
    }

    fn note_start(&mut self) -> Result<(), JobError> {
        let s = self.settings();
        let line = format!(
            "search {} on {}, population {}, {} generations (accuracy: {}; latency: {}{}), target {} ms, seed {}",
            s.strategy.name(),
            self.config.space,
            s.population,
            s.generations,
            self.ev.accuracy.describe(),
            self.config.latency.iter().map(|l| format!("{} ({})", l.label, l.path)).collect::<Vec<_>>().join(", "),
            match (self.ev.latency[0].is_gene_tabulated(), self.ev.latency[0].is_tabulated()) {
                (true, _) => ", per-gene table",
                (false, true) => ", per-layer table",
                _ => "",
            },
            self.config.max_latency_ms,
            self.config.seed
        );
        self.note(line)?;
        let measured = self.ev.latency[0].meter().is_some();
        self.note(format!(
            "smallest reachable latency {:.3} ms ({} latency evaluations; {})",
            self.fastest.latency_ms,
            self.fastest.evaluations,
            MinLatency::method(measured)
        ))
    }

    /// The job's sampling settings (a sampling job has them: checked when it opened).
    fn settings(&self) -> &SamplingConfig {
        self.config.sampling_config().expect("a sampling job's configuration")
    }

    fn note(&mut self, line: String) -> Result<(), JobError> {
        self.dir.note(&line)
    }

    /// Generations in all, the initial population included.
    pub fn total_generations(&self) -> usize {
        self.settings().generations + 1
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

    fn checkpoint(&self) -> Result<(), JobError> {
        self.dir.checkpoint(Generations {
            next_generation: self.next_generation,
            history_rows: self.history.len(),
            fastest: self.fastest.genome.clone(),
            fastest_ms: self.fastest.latency_ms,
            strategy: self.strategy.state()?,
            infeasible_run: self.infeasible_run,
        })
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
    ) -> Result<Option<Outcome>, JobError> {
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
            let (population, max_tries) = (self.settings().population, self.settings().max_tries);
            let mut ctx = Ctx { ev: &self.ev, population, max_tries, fastest: &self.fastest.genome, log: &mut log };
            let evals = self.strategy.step(generation, &mut rng, &mut ctx)?;
            let rows: Vec<Record> = evals.into_iter().map(|eval| Record { generation, eval }).collect();
            self.dir.append_history(&rows)?;
            self.history.extend(rows.iter().cloned());
            self.next_generation += 1;
            let feasible = rows.iter().filter(|r| r.eval.feasible).count();
            self.infeasible_run = if feasible == 0 { self.infeasible_run + 1 } else { 0 };
            self.checkpoint()?;
            ran += 1;
            for n in notes {
                self.note(n)?;
            }
            let best = self.best_objective();
            self.note(format!(
                "generation {generation}: {} evaluated ({feasible} feasible), best feasible objective {}",
                rows.len(),
                best.map_or("none".into(), |b| format!("{b:.5}"))
            ))?;
            report(&GenerationReport { generation, total, evaluated: self.history.len(), best });
            // RL's MnasNet reward trades latency for accuracy by design (the soft reward
            // prefers members a little over the target): infeasible generations are no sign
            // of an unreachable target there. The other strategies sample under the target.
            let limit = match self.settings().strategy {
                StrategyConfig::Rl(_) => 0,
                _ => self.settings().max_infeasible_generations,
            };
            if limit > 0 && self.infeasible_run >= limit && self.next_generation < total {
                let message = self.unreachable_message();
                self.note(format!("stopped: {message}"))?;
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
    pub fn measurement_notes(&self) -> Result<Vec<String>, JobError> {
        let mut notes = Vec::new();
        for (spec, obj) in self.config.latency.iter().zip(&self.ev.latency) {
            let Some(m) = obj.meter() else { continue };
            let dataset = m
                .write_dataset()
                .map_err(|e| JobError::Measurements { label: spec.label.clone(), source: e.into() })?;
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
    fn finish(&mut self) -> Result<Outcome, JobError> {
        for line in self.measurement_notes()? {
            self.note(line)?;
        }
        let space = &*self.ev.space;
        let dir = self.dir.path().to_path_buf();
        let labels: Vec<String> = self.config.latency.iter().map(|l| l.label.clone()).collect();
        history::write_parquet(&dir.join("history.parquet"), &self.history, space, &labels)?;
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
        self.dir.write_file("pareto.json", (pretty(&pareto)? + "\n").as_bytes())?;
        let best = best(&self.history).cloned();
        let strategy = &self.settings().strategy;
        let best_json = json!({
            "space": self.config.space,
            "strategy": strategy.name(),
            "max_latency_ms": self.config.max_latency_ms,
            "accuracy_source": source,
            "evaluated": self.history.len(),
            "best": best.as_ref().map(entry),
        });
        let objective = match strategy {
            StrategyConfig::Rl(_) => "MnasNet reward ACC·(LAT/T)^w".to_string(),
            _ => acc_kind.clone(),
        };
        self.dir.write_file("best.json", (pretty(&best_json)? + "\n").as_bytes())?;
        plots::write_all(&dir, &self.history, &front, self.config.max_latency_ms, &objective, &acc_kind)?;
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
        }?;
        Ok(Outcome {
            best,
            front,
            evaluated: self.history.len(),
            fastest: self.fastest.clone(),
            accuracy_kind: acc_kind,
            accuracy_description: acc_desc,
            dir,
        })
    }
}

fn pretty(v: &Value) -> Result<String, JobError> {
    serde_json::to_string_pretty(v).map_err(|source| JobError::Serialize { what: "a result file", source })
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
