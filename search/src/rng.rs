//! Reproducible randomness. Every generation draws from its own generator, seeded from
//! (job seed, generation), so a resumed job replays exactly what an uninterrupted one
//! would have done without storing generator internals in the checkpoint.

use rand::rngs::StdRng;
use rand::SeedableRng;

/// SplitMix64 finaliser: decorrelates nearby seeds (seed, seed + 1, ...).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Streams other than generations (e.g. the minimum-latency search) use this generation number.
pub const AUX_STREAM: u64 = u64::MAX;

/// The generator of `generation` of a job seeded with `seed`.
pub fn generation_rng(seed: u64, generation: u64) -> StdRng {
    StdRng::seed_from_u64(mix(mix(seed) ^ generation.wrapping_add(1)))
}
