use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use serde_json::json;
use spaces::ir::{Network, Op};
use spaces::{presets, Arch};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum ArchCommand {
    /// MACs, params and the layer table of one architecture.
    Stats(StatsArgs),
    /// Print N uniformly sampled valid architectures as JSON lines.
    Sample(SampleArgs),
    /// An OFA network's `net.config` (e.g. one of OFA's published specialized networks) as
    /// its OFA space and arch JSON.
    Import(ImportArgs),
}

/// Which architecture: a preset, or a file in a space's encoding (shared by every command that takes one).
#[derive(clap::Args)]
pub struct ArchArgs {
    /// The space (optional with --preset; `blocks` for free-form block-string networks).
    #[arg(long)]
    space: Option<String>,
    /// A published network: mobilenetv2, mobilenetv3-large, mnasnet-a1, mnasnet-b1, spnasnet, fbnet-a, fbnet-b, fbnet-c.
    #[arg(long, conflicts_with = "arch", required_unless_present = "arch")]
    preset: Option<String>,
    /// An architecture file in the space's JSON encoding.
    #[arg(long)]
    arch: Option<PathBuf>,
}

impl ArchArgs {
    pub fn load(&self) -> Result<Arch> {
        load(self.space.as_deref(), self.preset.as_deref(), self.arch.as_ref())
    }
}

#[derive(clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    arch: ArchArgs,
    /// Evaluate at this input resolution instead of the architecture's own.
    #[arg(long, value_parser = super::numeric::resolution)]
    resolution: Option<u32>,
    /// Print one JSON object (macs, params, layers, ...).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct SampleArgs {
    #[arg(long)]
    space: String,
    #[arg(short = 'n', long, default_value_t = 1)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// OFA's net.config JSON.
    #[arg(long)]
    ofa_net_config: PathBuf,
    /// OFA's run.config beside it, for the input size (`image_size`).
    #[arg(long, required_unless_present = "resolution")]
    run_config: Option<PathBuf>,
    /// Input resolution, overriding run.config's (e.g. to import a network OFA ran at a size
    /// outside the space's 128-224).
    #[arg(long, value_parser = super::numeric::resolution)]
    resolution: Option<u32>,
    /// Write the arch JSON here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(cmd: ArchCommand) -> Result<()> {
    match cmd {
        ArchCommand::Stats(a) => stats(a),
        ArchCommand::Sample(a) => sample(a),
        ArchCommand::Import(a) => import(a),
    }
}

/// Reads `--preset` or `--space` + `--arch` into an architecture.
pub fn load(space: Option<&str>, preset: Option<&str>, arch: Option<&PathBuf>) -> Result<Arch> {
    match (preset, arch) {
        (Some(name), _) => {
            let p = presets::preset(name)?;
            if let Some(s) = space {
                if s != p.space {
                    bail!("preset {name} belongs to space `{}`, not `{s}`", p.space);
                }
            }
            Ok(p.arch())
        }
        (None, Some(path)) => {
            let space = space.context("--space is required with --arch")?;
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let member = job_result_member(space, &text)
                .with_context(|| format!("{} is a search job's best.json of another space", path.display()))?;
            Arch::parse(space, member.as_deref().unwrap_or(&text))
                .with_context(|| format!("{} is not a valid `{space}` architecture", path.display()))
        }
        (None, None) => bail!("give --preset or --arch"),
    }
}

/// A search job's `best.json` (`{"space", "best": {"arch"}}` from evolution and RL,
/// `{"strategy", "arch"}` from a differentiable job) stands for its best member, so
/// `--arch runs/demo/best.json` works as given. `None` for any other file (parsed as
/// the member itself); an error when the job searched another space.
fn job_result_member(space: &str, text: &str) -> Result<Option<String>> {
    let Ok(serde_json::Value::Object(doc)) = serde_json::from_str::<serde_json::Value>(text) else {
        return Ok(None);
    };
    let member = match (doc.get("best").and_then(|b| b.get("arch")), doc.get("strategy"), doc.get("arch")) {
        (Some(arch), _, _) => arch,
        (None, Some(_), Some(arch)) => arch,
        _ => return Ok(None),
    };
    if let Some(job_space) = doc.get("space").and_then(|s| s.as_str()) {
        if job_space != space {
            bail!("the job searched `{job_space}`, not `{space}`");
        }
    }
    Ok(Some(member.to_string()))
}

fn describe(op: &Op) -> String {
    match op {
        Op::Conv(c) => format!(
            "conv {}x{} s{}{}{}",
            c.kernel,
            c.kernel,
            c.stride,
            if c.se.is_some() { " SE" } else { "" },
            if c.bn { "" } else { " no-BN" }
        ),
        Op::MbConv(m) => format!(
            "mbconv k{} s{} mid {}{}{}{} {}",
            m.kernel,
            m.stride,
            m.mid,
            if m.groups > 1 { format!(" g{}", m.groups) } else { String::new() },
            if m.se.is_some() { " SE" } else { "" },
            if m.shortcut != spaces::ir::Shortcut::None { " +res" } else { "" },
            m.act.name()
        ),
        Op::Identity => "identity".into(),
        Op::GlobalAvgPool => "global avg pool".into(),
        Op::Dropout { p } => format!("dropout {p}"),
        Op::Linear(l) => format!("linear{}", if l.bias { " +bias" } else { "" }),
    }
}

fn print_table(net: &Network) {
    outln!("{:<18} {:<34} {:>13} {:>13} {:>13} {:>10}", "layer", "op", "input", "output", "MACs", "params");
    for l in &net.layers {
        outln!(
            "{:<18} {:<34} {:>13} {:>13} {:>13} {:>10}",
            l.name,
            describe(&l.op),
            l.input.to_string(),
            l.output.to_string(),
            l.macs(),
            l.params()
        );
    }
}

fn stats(a: StatsArgs) -> Result<()> {
    let arch = a.arch.load()?;
    let net = arch.network(a.resolution);
    super::numeric::check_network(&net, "--resolution")?;
    if a.json {
        let layers: Vec<_> = net
            .layers
            .iter()
            .map(|l| json!({"name": l.name, "key": l.key(), "input": l.input, "output": l.output, "macs": l.macs(), "params": l.params()}))
            .collect();
        let out = json!({
            "space": arch.space_name(),
            "arch": arch.to_json(),
            "resolution": net.resolution(),
            "macs": net.macs(),
            "params": net.params(),
            "layers": layers,
        });
        outln!("{out}");
    } else {
        outln!("space {}  resolution {}  classes {}", arch.space_name(), net.resolution(), net.num_classes());
        print_table(&net);
        outln!(
            "total: {} MACs ({:.1}M), {} params ({:.2}M)",
            net.macs(),
            net.macs() as f64 / 1e6,
            net.params(),
            net.params() as f64 / 1e6
        );
    }
    Ok(())
}

fn sample(a: SampleArgs) -> Result<()> {
    let space = spaces::space(&a.space)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
    for _ in 0..a.n {
        let g = space.sample(&mut rng);
        outln!("{}", space.to_json(&g));
    }
    Ok(())
}

fn read_json(path: &PathBuf) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

fn import(a: ImportArgs) -> Result<()> {
    let config = read_json(&a.ofa_net_config)?;
    let (resolution, source) = match (a.resolution, &a.run_config) {
        (Some(r), _) => (r, "--resolution".to_string()),
        (None, Some(path)) => {
            let size = read_json(path)?.get("image_size").and_then(serde_json::Value::as_u64);
            let size = size.with_context(|| format!("{}: no integer `image_size`", path.display()))?;
            (size as u32, format!("`image_size` of {}; --resolution R overrides it", path.display()))
        }
        (None, None) => bail!("give --run-config or --resolution (net.config has no input size)"),
    };
    let (name, genome) = spaces::spaces::ofa_net_config::from_net_config(&config, resolution).with_context(|| {
        format!("cannot import {} at resolution {resolution} ({source})", a.ofa_net_config.display())
    })?;
    let arch = Arch::Member { space: spaces::space(name)?, genome };
    let mut doc = arch.to_json();
    doc["space"] = json!(name);
    let text = format!("{doc}\n");
    match &a.out {
        Some(path) => std::fs::write(path, &text).with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{text}"),
    }
    let net = arch.network(None);
    eprintln!(
        "{name} at resolution {resolution}: {} MACs ({:.1}M), {} params ({:.2}M)",
        net.macs(),
        net.macs() as f64 / 1e6,
        net.params(),
        net.params() as f64 / 1e6
    );
    Ok(())
}
