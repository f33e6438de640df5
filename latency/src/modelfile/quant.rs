//! The numbers both writers quantize with: int8 activation parameters from a
//! calibrated range (asymmetric, per tensor), symmetric int8 weights (per channel or
//! per tensor), int32 biases at input_scale·weight_scale, and float16 rounding.

use super::calibrate::Range;

/// Scale and zero point of an int8 tensor: real = scale · (q − zero_point).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    pub scale: f32,
    pub zero_point: i32,
}

/// TFLite's LOGISTIC output: scale 1/256, zero point −128.
pub const LOGISTIC: QParams = QParams { scale: 1.0 / 256.0, zero_point: -128 };

/// Asymmetric int8 parameters covering `range` (widened to contain 0, so that 0 is
/// exact, as TFLite requires for padding and ReLU).
pub fn activation(range: Range) -> QParams {
    let (lo, hi) = (range.0.min(0.0), range.1.max(0.0));
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 / 255.0 };
    let zero_point = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
    QParams { scale, zero_point }
}

/// `v` quantized with `q`, saturated to int8.
pub fn quantize(v: f32, q: QParams) -> i8 {
    ((v / q.scale).round() + q.zero_point as f32).clamp(-128.0, 127.0) as i8
}

/// Symmetric int8 weights in [−127, 127], one scale per channel: `channel(i)` is
/// the channel of element `i` (a constant 0 for per-tensor quantization).
pub fn symmetric(data: &[f32], channels: usize, channel: impl Fn(usize) -> usize) -> (Vec<i8>, Vec<f32>) {
    let mut max = vec![0.0f32; channels];
    for (i, v) in data.iter().enumerate() {
        let c = channel(i);
        max[c] = max[c].max(v.abs());
    }
    // An all-zero channel gets scale 1: its weights and bias are 0 either way.
    let scales: Vec<f32> = max.iter().map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 }).collect();
    let q = data.iter().enumerate().map(|(i, v)| (v / scales[channel(i)]).round().clamp(-127.0, 127.0) as i8).collect();
    (q, scales)
}

/// Bias scales input_scale · weight_scale and the int32 biases at them.
pub fn bias(bias: &[f32], input_scale: f32, weight_scales: &[f32]) -> (Vec<i32>, Vec<f32>) {
    let per_channel = weight_scales.len() > 1;
    let scales: Vec<f32> = (0..bias.len())
        .map(|o| input_scale * weight_scales[if per_channel { o } else { 0 }])
        .take(if per_channel { bias.len() } else { 1 })
        .collect();
    let q = bias
        .iter()
        .enumerate()
        .map(|(o, &b)| {
            let s = scales[if per_channel { o } else { 0 }] as f64;
            (b as f64 / s).round().clamp(i32::MIN as f64, i32::MAX as f64) as i32
        })
        .collect();
    (q, scales)
}

/// IEEE 754 binary16 bits of `v`, rounded to nearest even (overflow gives ±inf).
pub fn f16_bits(v: f32) -> u16 {
    let x = v.to_bits();
    let sign = ((x >> 16) & 0x8000) as u16;
    let exp = ((x >> 23) & 0xff) as i32;
    let mant = x & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if mant != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    let round = |r: u32, rem: u32, half: u32| if rem > half || (rem == half && r & 1 == 1) { r + 1 } else { r };
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = mant | 0x80_0000;
        let shift = (14 - e) as u32;
        return sign | round(m >> shift, m & ((1 << shift) - 1), 1 << (shift - 1)) as u16;
    }
    // A carry out of the mantissa correctly bumps the exponent (up to inf).
    sign | round(((e as u32) << 10) | (mant >> 13), mant & 0x1fff, 0x1000) as u16
}

/// Little-endian float16 bytes of `data`.
pub fn f16_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|&v| f16_bits(v).to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float16_rounds_to_nearest_even() {
        assert_eq!(f16_bits(1.0), 0x3c00);
        assert_eq!(f16_bits(-2.0), 0xc000);
        assert_eq!(f16_bits(65504.0), 0x7bff);
        assert_eq!(f16_bits(70000.0), 0x7c00);
        assert_eq!(f16_bits(2f32.powi(-24)), 0x0001);
        assert_eq!(f16_bits(2f32.powi(-14)), 0x0400);
        assert_eq!(f16_bits(1e-9), 0);
        // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1.0).
        assert_eq!(f16_bits(1.0 + 2f32.powi(-11)), 0x3c00);
        assert_eq!(f16_bits(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        assert_eq!(f16_bits(0.1), 0x2e66);
    }

    #[test]
    fn activations_keep_zero_exact_and_weights_are_symmetric() {
        let q = activation((0.5, 6.0));
        assert_eq!(q.zero_point, -128);
        assert!((q.scale - 6.0 / 255.0).abs() < 1e-7);
        let q = activation((-1.0, 3.0));
        assert_eq!(quantize(0.0, q) as i32, q.zero_point);
        assert_eq!(quantize(-1.0, q), -128);
        assert_eq!(quantize(3.0, q), 127);
        let (w, s) = symmetric(&[0.5, -1.0, 0.0, 0.0, 2.0, 1.0], 3, |i| i / 2);
        assert_eq!(w, vec![64, -127, 0, 0, 127, 64]);
        assert_eq!(s, vec![1.0 / 127.0, 1.0, 2.0 / 127.0]);
        let (b, bs) = bias(&[1.0, 0.0, -2.0], 0.5, &s);
        assert_eq!(bs[1], 0.5);
        assert_eq!(b, vec![254, 0, -254]);
    }
}
