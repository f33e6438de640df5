//! torch_file reads OFA's legacy files, and zip-format files that Python's own pickler wrote
//! from them (torch_pickle.py), to identical tensors; damaged and hostile files are refused.

use crate::common;

use predictors::torch_file::{load_state_dict, DType, TorchFileError, TorchTensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn acc_pth() -> PathBuf {
    common::shared().join("data/ofa/acc_predictor.pth")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hwnas-torch-file-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs torch_pickle.py (see its docstring) with `args`.
fn python(args: &[&str]) {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(python.exists(), "{} missing: run scripts/setup", python.display());
    let status = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torch_pickle.py"))
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "torch_pickle.py {args:?} failed");
}

#[test]
fn reads_ofa_accuracy_predictor() {
    let sd = load_state_dict(&acc_pth()).unwrap();
    let shapes: Vec<(&str, Vec<usize>)> = sd.iter().map(|(k, t)| (k.as_str(), t.shape.clone())).collect();
    assert_eq!(
        shapes,
        [
            ("0.bias", vec![400]),
            ("0.weight", vec![400, 128]),
            ("2.bias", vec![400]),
            ("2.weight", vec![400, 400]),
            ("4.bias", vec![400]),
            ("4.weight", vec![400, 400]),
            ("6.bias", vec![1]),
            ("6.weight", vec![1, 400]),
        ]
    );
    assert!(sd.values().all(|t| t.dtype == DType::F32));
    let w = sd["0.weight"].to_f32();
    assert_eq!(w.len(), 400 * 128);
    assert!(w.iter().all(|v| v.is_finite()) && w.iter().any(|&v| v != 0.0));
}

#[test]
fn reads_ofa_supernet_checkpoint() {
    let path = common::shared().join("data/ofa/fixture/ofa_mbv3_d234_e346_k357_w1.0_seeded.pth");
    let sd = load_state_dict(&path).unwrap();
    assert_eq!(sd["first_conv.conv.weight"].shape, [16, 3, 3, 3]);
    let counts: Vec<&TorchTensor> =
        sd.iter().filter(|(k, _)| k.ends_with("num_batches_tracked")).map(|(_, t)| t).collect();
    assert!(!counts.is_empty() && counts.iter().all(|t| t.dtype == DType::I64 && t.shape.is_empty()));
    assert_eq!(counts[0].to_i64().len(), 1);
}

/// Equal maps, reporting the first differing tensor by name (the whole maps are megabytes).
fn same(got: &BTreeMap<String, TorchTensor>, want: &BTreeMap<String, TorchTensor>, what: &str) {
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{what}: names");
    for (k, t) in want {
        let g = &got[k];
        assert_eq!((g.dtype, &g.shape), (t.dtype, &t.shape), "{what}: {k}");
        assert!(g == t, "{what}: {k} has other values");
    }
}

#[test]
fn zip_files_written_by_python_give_the_same_tensors() {
    let dir = scratch("zip");
    let legacy = load_state_dict(&acc_pth()).unwrap();
    let src = acc_pth();
    let src = src.to_str().unwrap();
    // Plain protocol 2 (torch's default), protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL), shared
    // storages with offsets and column-major strides, big-endian data, a nested checkpoint.
    for (name, extra) in [
        ("p2.pt", vec!["2"]),
        ("p4.pt", vec!["4"]),
        ("strided.pt", vec!["2", "--strided"]),
        ("big.pt", vec!["4", "--big", "--strided", "--nest"]),
    ] {
        let out = dir.join(name);
        let mut args = vec!["zip", src, out.to_str().unwrap()];
        args.extend(extra);
        python(&args);
        same(&load_state_dict(&out).unwrap(), &legacy, name);
    }
    let fixture = common::shared().join("data/ofa/fixture/ofa_mbv3_d234_e346_k357_w1.0_seeded.pth");
    let out = dir.join("fixture.pt");
    python(&["zip", fixture.to_str().unwrap(), out.to_str().unwrap(), "2", "--strided", "--nest"]);
    same(&load_state_dict(&out).unwrap(), &load_state_dict(&fixture).unwrap(), "fixture.pt");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn truncated_and_random_files_are_refused() {
    let dir = scratch("bad");
    let bytes = std::fs::read(acc_pth()).unwrap();
    // Inside the magic number, the system info, the main pickle, the key list, a storage's
    // count and its data, and one byte short of the end.
    for cut in [5, 100, 600, 1150, 1232, 1229 + 8 + 1000, bytes.len() - 1] {
        let path = dir.join(format!("cut{cut}.pth"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = load_state_dict(&path).unwrap_err();
        assert!(matches!(err, TorchFileError::Truncated { .. }), "cut at {cut}: {err}");
        assert!(err.to_string().contains("truncated"), "{err}");
    }
    let mut x = 0x2545F4914F6CDD1Du64;
    for n in [0usize, 1, 7, 100, 5000] {
        let noise: Vec<u8> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let path = dir.join(format!("noise{n}.pth"));
        std::fs::write(&path, &noise).unwrap();
        let err = load_state_dict(&path).unwrap_err();
        assert!(matches!(err, TorchFileError::NotTorch { .. }), "{n} random bytes: {err}");
    }
    // A zip container cut short loses its central directory.
    let zipped = dir.join("whole.pt");
    python(&["zip", acc_pth().to_str().unwrap(), zipped.to_str().unwrap()]);
    let z = std::fs::read(&zipped).unwrap();
    let cut = dir.join("cut.pt");
    std::fs::write(&cut, &z[..z.len() / 2]).unwrap();
    assert!(matches!(load_state_dict(&cut).unwrap_err(), TorchFileError::Zip { .. }));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn hostile_pickles_are_refused_by_name() {
    let dir = scratch("hostile");
    python(&["hostile", dir.to_str().unwrap()]);
    let err = load_state_dict(&dir.join("global.pt")).unwrap_err().to_string();
    assert!(err.contains("`posix.system`") && err.contains("not allowed"), "{err}");
    let err = load_state_dict(&dir.join("opcode.pt")).unwrap_err().to_string();
    assert!(err.contains("EMPTY_SET") && err.contains("at byte"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
