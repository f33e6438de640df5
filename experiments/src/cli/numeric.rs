//! Parsers and checks for numeric options, so that a bad number is refused when the command
//! line is parsed, with a message naming the option, instead of failing later (a division by
//! zero, a 0×0 model, serde's "invalid type: null" for NaN).
//!
//! Use as `#[arg(long, value_parser = numeric::positive_f64)]`; clap reports the option:
//! `invalid value 'nan' for '--max-latency-ms <MS>': must be a finite number greater than 0`.

use anyhow::{bail, Result};
use std::ops::RangeInclusive;

/// Input resolutions any command accepts: from a few pixels per stride-32 feature map to
/// far beyond every space's own (128–224 for OFA, 32 for CIFAR, 224 for the others).
pub const RESOLUTIONS: RangeInclusive<u32> = 8..=2048;

fn float(s: &str) -> Result<f64, String> {
    s.trim().parse::<f64>().map_err(|_| format!("`{s}` is not a number"))
}

/// A finite number > 0 (latency targets, learning rates, timeouts).
pub fn positive_f64(s: &str) -> Result<f64, String> {
    match float(s)? {
        v if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err("must be a finite number greater than 0".into()),
    }
}

/// A finite number ≥ 0 (weight decay, loss weights).
pub fn non_negative_f64(s: &str) -> Result<f64, String> {
    match float(s)? {
        v if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("must be a finite number, 0 or more".into()),
    }
}

/// A finite number in [0, 1) (label smoothing).
pub fn unit_fraction(s: &str) -> Result<f64, String> {
    match float(s)? {
        v if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err("must be a number in [0, 1)".into()),
    }
}

/// A finite number in (0, 1] (keep probabilities).
pub fn probability(s: &str) -> Result<f64, String> {
    match float(s)? {
        v if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err("must be a number in (0, 1]".into()),
    }
}

/// An integer ≥ 1 (batch sizes, epochs, counts).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(v) => Ok(v),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

/// An integer ≥ 2 (a population, classes).
pub fn at_least_two(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(v) if v >= 2 => Ok(v),
        Ok(_) => Err("must be at least 2".into()),
        Err(_) => Err(format!("`{s}` is not a whole number")),
    }
}

/// [`at_least_one`] for an i64 option.
pub fn at_least_one_i64(s: &str) -> Result<i64, String> {
    at_least_one(s).and_then(|v| i64::try_from(v).map_err(|_| "is too large".into()))
}

/// A class count: 2 or more, within u32.
pub fn classes(s: &str) -> Result<u32, String> {
    at_least_two(s).and_then(|v| u32::try_from(v).map_err(|_| "is too large".into()))
}

/// An input resolution in [`RESOLUTIONS`].
pub fn resolution(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(r) if RESOLUTIONS.contains(&r) => Ok(r),
        Ok(r) => Err(format!(
            "{r} is outside {}..={} pixels (the spaces' own resolutions are 32 to 224)",
            RESOLUTIONS.start(),
            RESOLUTIONS.end()
        )),
        Err(_) => Err(format!("`{s}` is not a whole number of pixels")),
    }
}

/// [`resolution`] for an i64 option.
pub fn resolution_i64(s: &str) -> Result<i64, String> {
    resolution(s).map(i64::from)
}

/// Refuses a network at a resolution outside [`RESOLUTIONS`] (an architecture file can name
/// any) or whose MAC or parameter count overflows 64 bits (a width far too large), naming
/// `option`, the option that sets the resolution.
pub fn check_network(net: &spaces::ir::Network, option: &str) -> Result<()> {
    let r = net.resolution();
    if !RESOLUTIONS.contains(&r) || net.input.w != r {
        bail!(
            "the network's input is {}x{} pixels, outside {}..={}: set a resolution in range with {option} \
             (or in the architecture file)",
            r,
            net.input.w,
            RESOLUTIONS.start(),
            RESOLUTIONS.end()
        );
    }
    if let Err(e) = net.checked_counts() {
        bail!("{e}");
    }
    Ok(())
}

/// Refuses two `LABEL=…` arguments of `option` with one label, naming it.
pub fn unique_labels<'a>(option: &str, labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<()> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (label, arg) in labels {
        if let Some((_, first)) = seen.iter().find(|(l, _)| *l == label) {
            bail!(
                "{option} names the label `{label}` twice ({first} and {arg}); give each its own label, e.g. \
                 {option} {label}_2=…"
            );
        }
        seen.push((label, arg));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_numbers_are_refused_with_what_is_expected() {
        for bad in ["nan", "NaN", "inf", "-inf", "0", "-1", "x"] {
            assert!(positive_f64(bad).is_err(), "{bad}");
        }
        assert_eq!(positive_f64("25").unwrap(), 25.0);
        assert!(at_least_one("0").is_err() && at_least_one("-3").is_err());
        assert!(resolution("0").is_err() && resolution("30000000").is_err() && resolution("224").is_ok());
        assert!(unique_labels("--latency", [("x", "x=a"), ("x", "x=b")]).unwrap_err().to_string().contains("`x`"));
    }
}
