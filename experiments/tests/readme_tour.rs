//! The README's tour, run as written: every `$ ` line between `<!-- tour:begin -->` and
//! `<!-- tour:end -->` is run with bash from the repository root (with `hwnas` and
//! `hwnas-runner` first on PATH, as the README tells users to set it), and what it prints
//! (stdout and stderr together, trailing blank lines aside) must be what the README shows. A line that is only `…`
//! stands for any number of lines; `…` inside a line for any text. Needs `../shared`.

use crate::runner_binary;

use std::path::{Path, PathBuf};
use std::process::Command;

const ELLIPSIS: &str = "…";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

/// One `$ command` of the tour and the lines shown after it.
#[derive(Debug)]
struct Step {
    command: String,
    expected: Vec<String>,
}

/// The tour's steps, from the ```console blocks between the markers.
fn tour(readme: &str) -> Vec<Step> {
    let start = readme.find("<!-- tour:begin -->").expect("README has <!-- tour:begin -->");
    let end = readme.find("<!-- tour:end -->").expect("README has <!-- tour:end -->");
    let mut steps: Vec<Step> = Vec::new();
    let mut in_block = false;
    for line in readme[start..end].lines() {
        if line.starts_with("```") {
            in_block = line == "```console";
            continue;
        }
        if !in_block {
            continue;
        }
        match line.strip_prefix("$ ") {
            Some(command) => steps.push(Step { command: command.into(), expected: Vec::new() }),
            None => steps.last_mut().expect("a console block starts with a command").expected.push(line.into()),
        }
    }
    steps
}

/// Whether `text` matches `pattern`, in which each `…` stands for any text.
fn line_matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split(ELLIPSIS).collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `lines` match `pattern`, in which a line `…` stands for any number of lines.
fn lines_match(pattern: &[String], lines: &[&str]) -> bool {
    match pattern.split_first() {
        None => lines.is_empty(),
        Some((p, rest)) if p == ELLIPSIS => (0..=lines.len()).any(|skip| lines_match(rest, &lines[skip..])),
        Some((p, rest)) => lines.first().is_some_and(|l| line_matches(p, l)) && lines_match(rest, &lines[1..]),
    }
}

#[test]
fn matching_rules_can_fail() {
    assert!(line_matches("a … c … e", "a b c d e"));
    assert!(!line_matches("a … c", "a b d"));
    assert!(!line_matches("ab…ba", "aba"));
    let pattern: Vec<String> = ["x", ELLIPSIS, "z"].map(String::from).to_vec();
    assert!(lines_match(&pattern, &["x", "z"]));
    assert!(lines_match(&pattern, &["x", "y", "y", "z"]));
    assert!(!lines_match(&pattern, &["x", "y"]));
    let steps = tour("<!-- tour:begin -->\n```console\n$ a\nout\n$ b\n```\n```\n$ not run\n```\n<!-- tour:end -->");
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].expected, ["out"]);
}

#[test]
fn the_readme_tour_prints_what_the_readme_shows() {
    let root = repo();
    assert!(
        root.join("../shared/data").is_dir(),
        "the tour reads ../shared/data beside the repository ({}); CI has it there",
        root.join("../shared/data").display()
    );
    let hwnas = PathBuf::from(env!("CARGO_BIN_EXE_hwnas"));
    let bin_dir = hwnas.parent().expect("hwnas has a directory").to_path_buf();
    let runner = runner_binary::hwnas_runner();
    assert_eq!(runner.parent(), Some(bin_dir.as_path()), "hwnas finds hwnas-runner beside itself");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());

    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let steps = tour(&readme);
    assert!(steps.len() >= 8, "the tour has its commands ({} found)", steps.len());
    let _ = std::fs::remove_dir_all(root.join("runs/tour"));
    // Its own `local` device lock and scratch, so the tour's profiling never waits for (or is
    // refused by) another test timing on this machine.
    let scratch = std::env::temp_dir().join(format!("hwnas-readme-tour-{}", std::process::id()));
    for step in &steps {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("{} 2>&1", step.command))
            .current_dir(&root)
            .env("PATH", &path)
            .env("HWNAS_LOCAL_SCRATCH", &scratch)
            .output()
            .expect("bash runs");
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "`{}` failed:\n{printed}", step.command);
        let lines: Vec<&str> = printed.trim_end().lines().collect();
        assert!(
            lines_match(&step.expected, &lines),
            "`{}` printed\n{printed}\nbut the README shows\n{}",
            step.command,
            step.expected.join("\n")
        );
    }
}
