use anyhow::Result;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object per space instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    for s in spaces::all_spaces() {
        let res = s.resolutions();
        let res_text = match (res.first(), res.last()) {
            (Some(a), Some(b)) if a != b => format!("{a}-{b} ({} sizes)", res.len()),
            (Some(a), _) => a.to_string(),
            _ => "-".into(),
        };
        if args.json {
            let genes: Vec<_> = s.genes().iter().map(|g| json!({"name": g.name, "choices": g.choices})).collect();
            outln!(
                "{}",
                json!({"name": s.name(), "description": s.description(), "size": s.size(), "resolutions": res, "genes": genes})
            );
        } else {
            outln!("{:<20} {:>9.3e} members  {:>3} genes  resolution {res_text}", s.name(), s.size(), s.genes().len());
            outln!("    {}", s.description());
        }
    }
    if !args.json {
        outln!(
            "{:<20} free-form MnasNet block-string networks (presets that no space expresses exactly)",
            spaces::BLOCKS
        );
    }
    Ok(())
}
