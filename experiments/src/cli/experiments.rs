//! `hwnas experiments list|run NAME`: reproductions of the papers' tables and figures, each
//! composed from the library (spaces, predictors, search) and written as a Markdown table
//! plus PNG/SVG plots into an output directory.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

mod common;
mod fbnet_fronts;
mod fronts_plot;
mod ofa_specialization;
mod ofa_tutorial;
mod precision_study;
mod predictor_study;
mod spnas_latency;

#[derive(clap::Subcommand)]
pub enum Command {
    /// The experiments, what each reproduces and what it needs.
    List,
    /// Run one experiment: prints its table and writes table.md and plots into --out.
    Run(Box<RunArgs>),
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// The experiment (see `hwnas experiments list`).
    name: String,
    /// Output directory [default: runs/experiments/NAME].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The shared data directory (holding data/) [default: ../shared beside the repository or the cwd].
    #[arg(long)]
    shared: Option<PathBuf>,
    /// Search budget: population (each experiment states its default).
    #[arg(long)]
    population: Option<usize>,
    /// Search budget: generations after the initial population.
    #[arg(long)]
    generations: Option<usize>,
    /// Seed of every split and search.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// predictor-study: also study a dataset profiled by hwnas (`hwnas profile … --out DIR` → DIR/latency.parquet).
    #[arg(long)]
    data: Option<PathBuf>,
    /// predictor-study: a single-layer table of the same device as --data (`hwnas profile --table …
    /// --out DIR` → DIR/latency.parquet), compared with the table of layers timed inside --data's networks.
    #[arg(long, requires = "data")]
    layer_table: Option<PathBuf>,
    /// predictor-study: training-set sizes in architectures, comma-separated [default: 10,20,50,100,200,1000].
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<usize>>,
    /// predictor-study: how many seeds (--seed, --seed + 1, …) each size is averaged over [default: 3].
    #[arg(long)]
    seeds: Option<u64>,
    /// predictor-study: the columns to fit, comma-separated (e.g. auto,flops,flops+memory) [default: every family].
    #[arg(long, value_delimiter = ',')]
    families: Option<Vec<String>>,
}

/// Everything an experiment gets.
pub struct Setup {
    pub shared: PathBuf,
    pub out: PathBuf,
    pub population: Option<usize>,
    pub generations: Option<usize>,
    pub seed: u64,
    pub data: Option<PathBuf>,
    pub layer_table: Option<PathBuf>,
    pub sizes: Option<Vec<usize>>,
    pub seeds: Option<u64>,
    pub families: Option<Vec<String>>,
}

type Runner = fn(&Setup) -> Result<String>;

/// (name, what it reproduces, runner).
const EXPERIMENTS: &[(&str, &str, Runner)] = &[
    (
        "spnas-latency",
        "Single-Path NAS Pixel 1 runtime model: the paper's network (79 ms) and extremes, then evolution in `singlepath` under 80 ms",
        spnas_latency::run,
    ),
    (
        "fbnet-fronts",
        "FBNet on HW-NAS-Bench Pixel 3 / Raspberry Pi 4 tables: evolution and NSGA-II Pareto fronts with FBNet-A/B/C placed on the same axes",
        fbnet_fronts::run,
    ),
    (
        "predictor-study",
        "learning curves of every latency-predictor family on every real latency dataset (HW-NAS-Bench, HELP phones, HELP OFA GPUs at batch 32/64; optional --data): held-out Spearman, τ, MAPE, ±10 % at 10-1000 training networks, 3 seeds",
        predictor_study::run,
    ),
    (
        "ofa-specialization",
        "OFA-MobileNetV3 w1.0: one constrained evolution per latency target on this CPU's lookup table (profiled once at 128), fronts plotted",
        ofa_specialization::run,
    ),
    (
        "ofa-tutorial",
        "OFA's tutorial on its real data: ofa-mbv3-w1.2, OFA's Note10 tables and accuracy predictor, 15/20/25/30 ms (25 ms over 5 seeds), OFA's published Note10 networks on the same plot",
        ofa_tutorial::run,
    ),
    (
        "precision-study",
        "fbnet-cifar100 and ofa-mbv3-w1.0 (r 160) tables profiled on this CPU with LiteRT in fp32/fp16/int8 (journaled): int8/fp32 ratio per layer kind, Kendall τ of member latencies across precisions, whether the picks under a target differ (--population: members priced)",
        precision_study::run,
    ),
];

pub fn run(c: Command) -> Result<()> {
    match c {
        Command::List => {
            for (name, what, _) in EXPERIMENTS {
                println!("{name:<19} {what}");
            }
            Ok(())
        }
        Command::Run(a) => {
            let a = *a;
            let Some((name, _, runner)) = EXPERIMENTS.iter().find(|(n, _, _)| *n == a.name) else {
                let known: Vec<&str> = EXPERIMENTS.iter().map(|e| e.0).collect();
                bail!("unknown experiment `{}` (known: {})", a.name, known.join(", "));
            };
            let shared = match a.shared {
                Some(s) => s,
                None => default_shared()?,
            };
            if !shared.join("data").is_dir() {
                bail!("{} has no data/ directory: give --shared DIR (the directory holding data/)", shared.display());
            }
            let out = a.out.unwrap_or_else(|| Path::new("runs/experiments").join(name));
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let cx = Setup {
                shared: shared.canonicalize().unwrap_or(shared),
                out: out.clone(),
                population: a.population,
                generations: a.generations,
                seed: a.seed,
                data: a.data,
                layer_table: a.layer_table,
                sizes: a.sizes,
                seeds: a.seeds,
                families: a.families,
            };
            let table = runner(&cx)?;
            let path = out.join("table.md");
            std::fs::write(&path, &table).with_context(|| format!("writing {}", path.display()))?;
            print!("{table}");
            eprintln!("wrote {} and plots in {}", path.display(), out.display());
            Ok(())
        }
    }
}

/// `../shared` beside the repository (found from the executable's location) or beside the cwd.
fn default_shared() -> Result<PathBuf> {
    let mut candidates = vec![PathBuf::from("../shared"), PathBuf::from("shared")];
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/hwnas → repository root is three levels up.
        if let Some(root) = exe.ancestors().nth(3) {
            candidates.insert(0, root.join("../shared"));
        }
    }
    candidates
        .into_iter()
        .find(|c| c.join("data").is_dir())
        .with_context(|| "no shared data found at ../shared (beside the repository or the cwd): give --shared DIR")
}
