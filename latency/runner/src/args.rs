//! `hwnas-runner --model FILE.tflite --warmup N --runs N [--threads T]`.

use std::path::PathBuf;

pub const USAGE: &str =
    "usage: hwnas-runner --model FILE.tflite --warmup N --runs N [--threads T] | --batch MANIFEST | --capabilities";

/// One timing job: untimed `warmup` runs, then `runs` timed ones on `threads` threads.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    pub model: PathBuf,
    pub warmup: usize,
    pub runs: usize,
    pub threads: usize,
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
        ]
    }

    /// Reads the flags (program name excluded); `--threads` defaults to 1. The error names
    /// the offending flag; `-h`/`--help` answers with [`USAGE`].
    pub fn parse(argv: &[String]) -> Result<Args, String> {
        let (mut model, mut warmup, mut runs, mut threads) = (None, None, None, 1);
        let mut it = argv.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            let count = |v: &String| v.parse::<usize>().map_err(|_| format!("{flag} needs a whole number, got `{v}`"));
            match flag.as_str() {
                "--model" => model = Some(PathBuf::from(value()?)),
                "--warmup" => warmup = Some(count(value()?)?),
                "--runs" => runs = Some(count(value()?)?),
                "--threads" => threads = count(value()?)?,
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
        };
        if args.runs == 0 {
            return Err("--runs must be at least 1".into());
        }
        if args.threads == 0 {
            return Err("--threads must be at least 1".into());
        }
        Ok(args)
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
        let a = Args { model: "/data/local/tmp/m 1.tflite".into(), warmup: 0, runs: 7, threads: 4 };
        assert_eq!(Args::parse(&a.to_argv()), Ok(a));
    }

    #[test]
    fn threads_default_to_one() {
        let a = Args::parse(&argv("--runs 3 --model m.tflite --warmup 2")).unwrap();
        assert_eq!(a, Args { model: "m.tflite".into(), warmup: 2, runs: 3, threads: 1 });
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
            ("--help", USAGE),
        ] {
            assert_eq!(Args::parse(&argv(line)).unwrap_err(), want, "{line}");
        }
    }
}
