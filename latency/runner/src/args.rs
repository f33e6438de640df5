//! `hwnas-runner --model FILE.tflite --warmup N --runs N [--threads T] [--warmup-ms MS]
//! [--min-time-ms MS] [--setup-ratio K] [--layer-profile-runs N]`.

use std::path::PathBuf;

pub const USAGE: &str = "usage: hwnas-runner --model FILE.tflite --warmup N --runs N [--threads T] [--warmup-ms MS] \
     [--min-time-ms MS] [--setup-ratio K] [--layer-profile-runs N] | --batch MANIFEST | --capabilities";

/// One timing job: a warm-up of at least `warmup` runs and `warmup_ms`, then timed runs on
/// `threads` threads: at least `runs` samples lasting at least `min_time_ms` and
/// `setup_ratio` times the model's setup (see [`crate::timing`]). With
/// `layer_profile_runs` > 0, that many further runs time every node of the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    pub model: PathBuf,
    pub warmup: usize,
    pub runs: usize,
    pub threads: usize,
    pub warmup_ms: u64,
    pub min_time_ms: u64,
    pub setup_ratio: u64,
    pub layer_profile_runs: usize,
}

impl Args {
    /// The flags that [`Args::parse`] reads back (the binary's path not included).
    pub fn to_argv(&self) -> Vec<String> {
        vec![
            "--model".into(),
            self.model.display().to_string(),
            "--warmup".into(),
            self.warmup.to_string(),
            "--runs".into(),
            self.runs.to_string(),
            "--threads".into(),
            self.threads.to_string(),
            "--warmup-ms".into(),
            self.warmup_ms.to_string(),
            "--min-time-ms".into(),
            self.min_time_ms.to_string(),
            "--setup-ratio".into(),
            self.setup_ratio.to_string(),
            "--layer-profile-runs".into(),
            self.layer_profile_runs.to_string(),
        ]
    }

    /// Reads the flags (program name excluded); `--threads` defaults to 1, the time floors,
    /// the setup ratio and the layer profile to 0 (counts alone, as before they existed). The
    /// error names the offending flag; `-h`/`--help` answers with [`USAGE`].
    pub fn parse(argv: &[String]) -> Result<Args, String> {
        let (mut model, mut warmup, mut runs, mut threads) = (None, None, None, 1);
        let (mut warmup_ms, mut min_time_ms, mut setup_ratio, mut layer_profile_runs) = (0, 0, 0, 0);
        let mut it = argv.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            let count = |v: &String| v.parse::<usize>().map_err(|_| format!("{flag} needs a whole number, got `{v}`"));
            match flag.as_str() {
                "--model" => model = Some(PathBuf::from(value()?)),
                "--warmup" => warmup = Some(count(value()?)?),
                "--runs" => runs = Some(count(value()?)?),
                "--threads" => threads = count(value()?)?,
                "--warmup-ms" => warmup_ms = count(value()?)? as u64,
                "--min-time-ms" => min_time_ms = count(value()?)? as u64,
                "--setup-ratio" => setup_ratio = count(value()?)? as u64,
                "--layer-profile-runs" => layer_profile_runs = count(value()?)?,
                "-h" | "--help" => return Err(USAGE.into()),
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        let need = |name: &str| format!("{name} is required");
        let args = Args {
            model: model.ok_or_else(|| need("--model"))?,
            warmup: warmup.ok_or_else(|| need("--warmup"))?,
            runs: runs.ok_or_else(|| need("--runs"))?,
            threads,
            warmup_ms,
            min_time_ms,
            setup_ratio,
            layer_profile_runs,
        };
        if args.runs == 0 {
            return Err("--runs must be at least 1".into());
        }
        if args.threads == 0 {
            return Err("--threads must be at least 1".into());
        }
        Ok(args)
    }

    /// How the model is timed (one round: the stop rule is the caller's).
    pub fn plan(&self) -> crate::timing::Plan {
        crate::timing::Plan {
            warmup: self.warmup,
            warmup_ms: self.warmup_ms,
            runs: self.runs,
            min_time_ms: self.min_time_ms,
            setup_ratio: self.setup_ratio,
            max_rounds: 1,
            cv_bound: f64::INFINITY,
            min_samples: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn what_hwnas_writes_the_binary_reads() {
        let a = Args {
            model: "/data/local/tmp/m 1.tflite".into(),
            warmup: 0,
            runs: 7,
            threads: 4,
            warmup_ms: 3,
            min_time_ms: 40,
            setup_ratio: 12,
            layer_profile_runs: 5,
        };
        assert_eq!(Args::parse(&a.to_argv()), Ok(a));
    }

    #[test]
    fn threads_default_to_one() {
        let a = Args::parse(&argv("--runs 3 --model m.tflite --warmup 2")).unwrap();
        let counts = Args {
            model: "m.tflite".into(),
            warmup: 2,
            runs: 3,
            threads: 1,
            warmup_ms: 0,
            min_time_ms: 0,
            setup_ratio: 0,
            layer_profile_runs: 0,
        };
        assert_eq!(a, counts);
    }

    #[test]
    fn bad_flags_are_named() {
        for (line, want) in [
            ("--warmup 1 --runs 1", "--model is required"),
            ("--model m --runs 1", "--warmup is required"),
            ("--model m --warmup 1", "--runs is required"),
            ("--model m --warmup x --runs 1", "--warmup needs a whole number, got `x`"),
            ("--model m --warmup 1 --runs -2", "--runs needs a whole number, got `-2`"),
            ("--model m --warmup 1 --runs 0", "--runs must be at least 1"),
            ("--model m --warmup 1 --runs 1 --threads 0", "--threads must be at least 1"),
            ("--model m --warmup 1 --runs 1 --threads", "--threads needs a value"),
            ("--model m --warmup 1 --runs 1 --fast", "unknown argument `--fast`"),
            ("--model m --warmup 1 --runs 1 --min-time-ms 0.5", "--min-time-ms needs a whole number, got `0.5`"),
            ("--help", USAGE),
        ] {
            assert_eq!(Args::parse(&argv(line)).unwrap_err(), want, "{line}");
        }
    }
}
