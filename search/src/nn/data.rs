//! Image classification data: CIFAR-10/100 binary files, ImageNet-style class folders,
//! and a seeded synthetic source whose classes are learnable (for tests and benchmarks).
//!
//! Every source yields batches as `[B, 3, R, R]` float tensors normalised with the
//! ImageNet mean/std, and `[B]` int64 labels. Random augmentation is seeded by the caller,
//! so a resumed run sees exactly the batches an uninterrupted run would.

use super::NnError;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Which split of a dataset to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
}

/// A labelled image collection read batch by batch.
pub trait DataSource: Send {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn classes(&self) -> u32;
    /// Images `indices` at `resolution`; `augment` = random crop/flip drawn from `rng`.
    /// Errors name the file that could not be read or decoded.
    fn batch(
        &self,
        indices: &[usize],
        resolution: u32,
        augment: bool,
        rng: &mut StdRng,
    ) -> Result<(Tensor, Tensor), NnError>;
}

/// A seeded order of the `n` examples for `epoch`: identical on every run with the same seed.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    order
}

/// Stacks HWC u8 images of one size into a normalised NCHW float tensor.
fn to_tensor(pixels: &[u8], n: usize, h: usize, w: usize) -> Tensor {
    let x = Tensor::from_slice(pixels).view([n as i64, h as i64, w as i64, 3]).permute([0, 3, 1, 2]);
    let x = x.to_kind(Kind::Float) / 255.0;
    let mean = Tensor::from_slice(&MEAN).view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&STD).view([1, 3, 1, 1]);
    (x - mean) / std
}

/// Bilinear resize of a batch (no-op when already at `resolution`).
pub fn resize(x: &Tensor, resolution: u32) -> Tensor {
    let r = resolution as i64;
    let s = x.size();
    if s[2] == r && s[3] == r {
        return x.shallow_clone();
    }
    x.upsample_bilinear2d([r, r], false, None, None)
}

/// Moves a batch to `device`.
pub fn to_device((x, y): (Tensor, Tensor), device: Device) -> (Tensor, Tensor) {
    (x.to_device(device), y.to_device(device))
}

/// CIFAR-10 (`data_batch_{1..5}.bin`, `test_batch.bin`) or CIFAR-100 (`train.bin`, `test.bin`,
/// fine labels) in the official binary format: label byte(s) then 3072 bytes of R, G, B planes.
pub struct Cifar {
    images: Vec<u8>,
    labels: Vec<u8>,
    classes: u32,
}

impl Cifar {
    pub fn load(dir: &Path, classes: u32, split: Split) -> Result<Cifar, NnError> {
        let (files, label_bytes): (Vec<String>, usize) = match (classes, split) {
            (10, Split::Train) => ((1..=5).map(|i| format!("data_batch_{i}.bin")).collect(), 1),
            (10, Split::Val) => (vec!["test_batch.bin".into()], 1),
            (100, Split::Train) => (vec!["train.bin".into()], 2),
            (100, Split::Val) => (vec!["test.bin".into()], 2),
            _ => return Err(NnError::CifarClasses(classes)),
        };
        let record = label_bytes + 3072;
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        for f in files {
            let path = find_file(dir, &f)?;
            let bytes =
                std::fs::read(&path).map_err(|source| NnError::Io { action: "read", path: path.clone(), source })?;
            if bytes.is_empty() || bytes.len() % record != 0 {
                return Err(NnError::CifarSize { path, bytes: bytes.len(), record });
            }
            for r in bytes.chunks_exact(record) {
                let label = r[label_bytes - 1];
                if label as u32 >= classes {
                    return Err(NnError::CifarLabel { path, label, classes });
                }
                labels.push(label);
                // Planar RGB -> interleaved HWC, the layout `to_tensor` expects.
                let px = &r[label_bytes..];
                images.extend((0..1024).flat_map(|i| [px[i], px[1024 + i], px[2048 + i]]));
            }
        }
        Ok(Cifar { images, labels, classes })
    }
}

/// `name` in `dir` or in its usual sub-folders (`cifar-10-batches-bin`, `cifar-100-binary`).
fn find_file(dir: &Path, name: &str) -> Result<PathBuf, NnError> {
    for sub in ["", "cifar-10-batches-bin", "cifar-100-binary"] {
        let p = dir.join(sub).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(NnError::CifarMissing { name: name.into(), dir: dir.into() })
}

impl DataSource for Cifar {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn classes(&self) -> u32 {
        self.classes
    }
    fn batch(
        &self,
        indices: &[usize],
        resolution: u32,
        augment: bool,
        rng: &mut StdRng,
    ) -> Result<(Tensor, Tensor), NnError> {
        let mut px = Vec::with_capacity(indices.len() * 3072);
        for &i in indices {
            let img = &self.images[i * 3072..(i + 1) * 3072];
            if augment {
                // Standard CIFAR augmentation: 4-pixel zero-padded random crop + horizontal flip.
                let (dy, dx, flip) = (rng.random_range(-4i32..=4), rng.random_range(-4i32..=4), rng.random_bool(0.5));
                for y in 0..32i32 {
                    for x in 0..32i32 {
                        let sx = if flip { 31 - x } else { x } + dx;
                        let sy = y + dy;
                        if (0..32).contains(&sx) && (0..32).contains(&sy) {
                            let o = ((sy * 32 + sx) * 3) as usize;
                            px.extend_from_slice(&img[o..o + 3]);
                        } else {
                            px.extend_from_slice(&[0, 0, 0]);
                        }
                    }
                }
            } else {
                px.extend_from_slice(img);
            }
        }
        let labels: Vec<i64> = indices.iter().map(|&i| self.labels[i] as i64).collect();
        Ok((resize(&to_tensor(&px, indices.len(), 32, 32), resolution), Tensor::from_slice(&labels)))
    }
}

/// ImageNet-style folders: `root/{train,val}/<class>/*.{jpg,jpeg,png}`; classes sorted by name.
pub struct ImageFolder {
    files: Vec<(PathBuf, u32)>,
    classes: u32,
}

impl ImageFolder {
    pub fn load(root: &Path, split: Split) -> Result<ImageFolder, NnError> {
        let dir = root.join(match split {
            Split::Train => "train",
            Split::Val => "val",
        });
        let mut classes: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|source| NnError::ImageFolder { dir: dir.clone(), source })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        classes.sort();
        let mut files = Vec::new();
        for (label, c) in classes.iter().enumerate() {
            let mut imgs: Vec<PathBuf> = std::fs::read_dir(c)
                .map_err(|source| NnError::Io { action: "list", path: c.clone(), source })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
                    matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png"))
                })
                .collect();
            imgs.sort();
            files.extend(imgs.into_iter().map(|p| (p, label as u32)));
        }
        if files.is_empty() {
            return Err(NnError::NoImages { dir });
        }
        Ok(ImageFolder { files, classes: classes.len() as u32 })
    }

    /// Decodes one image; training: random crop of 35-100 % of the area + flip, evaluation:
    /// resize the shorter side to R/0.875 and take the centre R x R crop.
    fn decode(path: &Path, r: u32, crop: Option<(f64, f64, f64, bool)>) -> Result<Vec<u8>, NnError> {
        let img = image::open(path).map_err(|source| NnError::Decode { path: path.into(), source })?.to_rgb8();
        let (w, h) = img.dimensions();
        let (x0, y0, cw, ch, flip) = match crop {
            Some((area, fx, fy, flip)) => {
                let side = ((w.min(h) as f64) * area.sqrt()).max(1.0) as u32;
                (((w - side) as f64 * fx) as u32, ((h - side) as f64 * fy) as u32, side, side, flip)
            }
            None => {
                let side = ((w.min(h) as f64) * 0.875).max(1.0) as u32;
                ((w - side) / 2, (h - side) / 2, side, side, false)
            }
        };
        let view = image::imageops::crop_imm(&img, x0, y0, cw, ch).to_image();
        let mut out = image::imageops::resize(&view, r, r, image::imageops::FilterType::Triangle);
        if flip {
            image::imageops::flip_horizontal_in_place(&mut out);
        }
        Ok(out.into_raw())
    }
}

impl DataSource for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }
    fn classes(&self) -> u32 {
        self.classes
    }
    fn batch(
        &self,
        indices: &[usize],
        resolution: u32,
        augment: bool,
        rng: &mut StdRng,
    ) -> Result<(Tensor, Tensor), NnError> {
        let crops: Vec<_> = indices
            .iter()
            .map(|_| {
                augment.then(|| {
                    (rng.random_range(0.35..=1.0), rng.random::<f64>(), rng.random::<f64>(), rng.random_bool(0.5))
                })
            })
            .collect();
        let decoded: Vec<Vec<u8>> = indices
            .par_iter()
            .zip(&crops)
            .map(|(&i, crop)| Self::decode(&self.files[i].0, resolution, *crop))
            .collect::<Result<_, NnError>>()?;
        let r = resolution as usize;
        let labels: Vec<i64> = indices.iter().map(|&i| self.files[i].1 as i64).collect();
        Ok((to_tensor(&decoded.concat(), indices.len(), r, r), Tensor::from_slice(&labels)))
    }
}

/// A seeded, learnable source: each class is a fixed random low-frequency colour pattern;
/// an example is its class pattern plus per-example noise. Deterministic in (seed, index).
pub struct Synthetic {
    /// [classes, 3, 4, 4] colour grids.
    patterns: Vec<f32>,
    len: usize,
    classes: u32,
    seed: u64,
    /// Example i is the generator's example i + offset (a disjoint validation split).
    offset: usize,
}

impl Synthetic {
    pub fn new(len: usize, classes: u32, seed: u64) -> Synthetic {
        let mut rng = StdRng::seed_from_u64(seed);
        // 4x4 colour grids, upsampled to any resolution: easy to learn, impossible by colour mean alone.
        let grid: Vec<f32> = (0..classes as usize * 3 * 16).map(|_| rng.random_range(-1.5f32..1.5)).collect();
        Synthetic { patterns: grid, len, classes, seed, offset: 0 }
    }
    /// The same classes, examples shifted by `offset` (e.g. `len` for a validation split).
    pub fn with_offset(mut self, offset: usize) -> Synthetic {
        self.offset = offset;
        self
    }
    pub fn label(&self, i: usize) -> u32 {
        let i = i + self.offset;
        (StdRng::seed_from_u64(self.seed.wrapping_add(i as u64 * 7919)).random::<u32>()) % self.classes
    }
}

impl DataSource for Synthetic {
    fn len(&self) -> usize {
        self.len
    }
    fn classes(&self) -> u32 {
        self.classes
    }
    fn batch(
        &self,
        indices: &[usize],
        resolution: u32,
        augment: bool,
        rng: &mut StdRng,
    ) -> Result<(Tensor, Tensor), NnError> {
        let r = resolution as i64;
        let labels: Vec<i64> = indices.iter().map(|&i| self.label(i) as i64).collect();
        let y = Tensor::from_slice(&labels);
        let patterns = Tensor::from_slice(&self.patterns).view([self.classes as i64, 3, 4, 4]);
        let clean = patterns.index_select(0, &y).upsample_bilinear2d([r, r], false, None, None);
        let mut noise = Vec::with_capacity(indices.len() * 3 * (r * r) as usize);
        for &i in indices {
            let i = (i + self.offset) as u64;
            let mut g = StdRng::seed_from_u64(self.seed ^ i.wrapping_mul(0x2545_F491_4F6C_DD1D));
            noise.extend((0..3 * r * r).map(|_| g.random_range(-0.5f32..0.5)));
        }
        let mut x = clean + Tensor::from_slice(&noise).view([indices.len() as i64, 3, r, r]);
        if augment && rng.random_bool(0.5) {
            x = x.flip([3]);
        }
        Ok((x, y))
    }
}
