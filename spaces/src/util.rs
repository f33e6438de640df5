/// TF-slim's `make_divisible(v, 8)` as used by OFA, MobileNetV3 and MnasNet's
/// `round_filters`: round to the nearest multiple of `divisor`, at least `divisor`,
/// and never more than 10 % below `v`.
pub fn make_divisible(v: f64, divisor: u32) -> u32 {
    let d = divisor as f64;
    let mut n = d.max(((v + d / 2.0) / d).floor() * d);
    if n < 0.9 * v {
        n += d;
    }
    n as u32
}

#[cfg(test)]
mod tests {
    use super::make_divisible;

    #[test]
    fn rounds_like_tf_slim() {
        assert_eq!(make_divisible(16.0 * 1.2, 8), 24);
        assert_eq!(make_divisible(112.0 * 1.2, 8), 136);
        assert_eq!(make_divisible(960.0 * 1.2, 8), 1152);
        assert_eq!(make_divisible(41.6, 8), 40);
        assert_eq!(make_divisible(249.6, 8), 248);
        assert_eq!(make_divisible(3.0, 8), 8);
        assert_eq!(make_divisible(72.0 / 4.0, 8), 24);
    }
}
