//! The data readers decode what they claim: CIFAR binary records (label bytes, planar RGB),
//! image folders (sorted class names, JPEG and PNG), and bad inputs fail with clear errors.

use rand::rngs::StdRng;
use rand::SeedableRng;
use search::nn::data::{Cifar, DataSource, ImageFolder, Split, Synthetic};
use tch::Kind;

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("hwnas-nn-data-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One CIFAR record whose red plane is `r`, green `g`, blue `b`.
fn record(label_bytes: &[u8], r: u8, g: u8, b: u8) -> Vec<u8> {
    let mut v = label_bytes.to_vec();
    v.extend([r; 1024]);
    v.extend([g; 1024]);
    v.extend([b; 1024]);
    v
}

/// Un-normalises channel means of a batch back to 0..255 pixel values.
fn pixel_means(x: &tch::Tensor) -> Vec<f64> {
    let mean = [0.485, 0.456, 0.406];
    let std = [0.229, 0.224, 0.225];
    (0..3)
        .map(|c| (x.get(0).get(c).mean(Kind::Float).double_value(&[]) * std[c as usize] + mean[c as usize]) * 255.0)
        .collect()
}

#[test]
fn cifar10_and_cifar100_binary_records_decode() {
    let d = tmp("cifar");
    for i in 1..=5 {
        std::fs::write(
            d.join(format!("data_batch_{i}.bin")),
            [record(&[i], 10, 20, 30), record(&[9], 0, 0, 0)].concat(),
        )
        .unwrap();
    }
    std::fs::write(d.join("test_batch.bin"), record(&[3], 200, 100, 50)).unwrap();
    let train = Cifar::load(&d, 10, Split::Train).unwrap();
    assert_eq!((train.len(), train.classes()), (10, 10));
    let mut rng = StdRng::seed_from_u64(0);
    let (x, y) = train.batch(&[2, 3], 32, false, &mut rng).unwrap();
    assert_eq!(x.size(), vec![2, 3, 32, 32]);
    assert_eq!(Vec::<i64>::try_from(&y).unwrap(), vec![2, 9]);
    let px = pixel_means(&x);
    assert!((px[0] - 10.0).abs() < 0.01 && (px[1] - 20.0).abs() < 0.01 && (px[2] - 30.0).abs() < 0.01, "{px:?}");
    let val = Cifar::load(&d, 10, Split::Val).unwrap();
    let (x, y) = val.batch(&[0], 64, true, &mut rng).unwrap();
    assert_eq!(x.size(), vec![1, 3, 64, 64]);
    assert_eq!(y.int64_value(&[0]), 3);

    // CIFAR-100: coarse then fine label; the fine one counts.
    std::fs::write(d.join("train.bin"), record(&[1, 77], 0, 0, 0)).unwrap();
    let c100 = Cifar::load(&d, 100, Split::Train).unwrap();
    assert_eq!(c100.batch(&[0], 32, false, &mut rng).unwrap().1.int64_value(&[0]), 77);

    std::fs::write(d.join("test.bin"), [1u8; 100]).unwrap();
    let err = Cifar::load(&d, 100, Split::Val).err().unwrap().to_string();
    assert!(err.contains("whole number"), "{err}");
    assert!(Cifar::load(&d, 7, Split::Train).is_err());
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn image_folders_decode_jpeg_and_png_with_sorted_classes() {
    let d = tmp("folder");
    for (class, colour) in [("b_green", [0u8, 255, 0]), ("a_red", [255, 0, 0])] {
        let dir = d.join("val").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        let img = image::RgbImage::from_pixel(48, 40, image::Rgb(colour));
        img.save(dir.join("x.png")).unwrap();
        img.save(dir.join("y.jpg")).unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
    }
    let f = ImageFolder::load(&d, Split::Val).unwrap();
    assert_eq!((f.len(), f.classes()), (4, 2));
    let mut rng = StdRng::seed_from_u64(0);
    let (x, y) = f.batch(&[0, 3], 24, false, &mut rng).unwrap();
    assert_eq!(x.size(), vec![2, 3, 24, 24]);
    assert_eq!(Vec::<i64>::try_from(&y).unwrap(), vec![0, 1], "a_red is class 0");
    let red = pixel_means(&x);
    assert!(red[0] > 250.0 && red[1] < 5.0, "{red:?}");
    assert_eq!(f.batch(&[1, 2], 16, true, &mut rng).unwrap().0.size(), vec![2, 3, 16, 16]);
    let err = ImageFolder::load(&d, Split::Train).err().unwrap().to_string();
    assert!(err.contains("train"), "{err}");

    // A corrupt file is an error naming it, not a panic.
    std::fs::write(d.join("val").join("a_red").join("z.jpg"), b"not a jpeg").unwrap();
    let f = ImageFolder::load(&d, Split::Val).unwrap();
    let err = crate::search_common::chain(&f.batch(&[0, 1, 2], 16, false, &mut rng).unwrap_err());
    assert!(err.contains("z.jpg"), "{err}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn synthetic_data_is_deterministic_and_splits_are_disjoint() {
    let a = Synthetic::new(8, 5, 3);
    let b = Synthetic::new(8, 5, 3);
    let mut rng = StdRng::seed_from_u64(0);
    let (xa, ya) = a.batch(&[1, 2, 3], 32, false, &mut rng).unwrap();
    let (xb, yb) = b.batch(&[1, 2, 3], 32, false, &mut rng).unwrap();
    assert!(xa.equal(&xb) && ya.equal(&yb));
    let val = Synthetic::new(8, 5, 3).with_offset(8);
    assert!(!val.batch(&[1, 2, 3], 32, false, &mut rng).unwrap().0.equal(&xa));
}
