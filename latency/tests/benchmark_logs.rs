//! The benchmark_model parser against every real log in ../shared/data/benchmark-model-logs
//! (TF 1.x and 2.x, x86, i.MX CPU and NPU delegate, TI AM62x, a failed GPU run), with the
//! averages the folder's README states. Read in place, never copied into the repository.

use latency::runtime::tflite::{parse_benchmark_output, TfliteRuntime};
use latency::runtime::Runtime;
use latency::target::Output;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn logs_dir() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/benchmark-model-logs");
    if d.join("README.md").is_file() {
        Some(d)
    } else {
        eprintln!("note: no {} (../shared is not checked out); skipped the real-log checks", d.display());
        None
    }
}

/// `file -> Some(µs)` (or None for a failure) from the README's table.
fn expected(dir: &std::path::Path) -> BTreeMap<String, Option<f64>> {
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    readme
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let file = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((file.to_string(), cells[2].parse::<f64>().ok()))
        })
        .collect()
}

fn read(dir: &std::path::Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

fn tflite() -> TfliteRuntime {
    let bm = std::env::temp_dir().join(format!("hwnas-benchmark-logs-{}", std::process::id()));
    std::fs::write(&bm, "#!/bin/sh\n").unwrap();
    TfliteRuntime::new(&bm, vec![]).unwrap()
}

#[test]
fn every_log_gives_the_average_its_readme_states() {
    let Some(dir) = logs_dir() else { return };
    let want = expected(&dir);
    let logs: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".txt"))
        .collect();
    assert!(logs.len() >= 6, "{logs:?}");
    for file in &logs {
        let w = want.get(file).unwrap_or_else(|| panic!("{file} is not in the README's table"));
        let parsed = parse_benchmark_output(&read(&dir, file));
        match w {
            Some(us) => {
                let t = parsed.unwrap_or_else(|e| panic!("{file}: {e}"));
                // The README gives the summary as printed (6 significant digits in newer builds).
                assert!((t.inference_avg_us - us).abs() <= 1e-9 * us, "{file}: {} µs, README {us}", t.inference_avg_us);
                assert_eq!(t.runs.avg, t.inference_avg_us, "{file}: read the wrong count= line");
            }
            None => assert!(parsed.is_err(), "{file} is a failed run but parsed: {parsed:?}"),
        }
    }
}

#[test]
fn tf1_logs_have_warmup_init_and_no_stats() {
    let Some(dir) = logs_dir() else { return };
    let t = parse_benchmark_output(&read(&dir, "tf1x_zedboard_mobilenet_v1_quant.txt")).unwrap();
    assert_eq!((t.inference_avg_us, t.warmup_avg_us, t.init_us, t.first_us), (747733.0, 751932.0, 21039.0, None));
    assert_eq!((t.runs.count, t.runs.std), (50, Some(293.0)));
    assert!(t.op_profile.is_none());
}

#[test]
fn op_profiles_give_every_node_and_each_node_type() {
    let Some(dir) = logs_dir() else { return };
    let t = parse_benchmark_output(&read(&dir, "tf2x_x86_native_mobilenet_v1_float_op_profiling.txt")).unwrap();
    // The profiler's Timings line (sum of per-op times, 15167.6) is not the end-to-end average.
    assert_eq!((t.inference_avg_us, t.runs.count), (15170.2, 66));
    let p = t.op_profile.unwrap();
    assert_eq!(p.timings.as_ref().map(|s| (s.count, s.avg)), Some((66, 15167.6)));
    assert_eq!(p.ops.len(), 31, "the Run Order table only, not Top by Computation Time");
    let first = &p.ops[0];
    assert_eq!(
        (first.node_type.as_str(), first.name.as_str(), first.avg_ms, first.times_called),
        ("CONV_2D", "[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0", 0.566, Some(1))
    );
    assert_eq!((first.start_ms, first.first_ms, first.percent), (Some(0.0), Some(0.793), Some(3.731)));
    assert_eq!(p.ops[30].node_type, "SOFTMAX");
    let conv = p.by_type.iter().find(|r| r.node_type == "CONV_2D").unwrap();
    assert_eq!((conv.count, conv.avg_ms, conv.times_called), (Some(15), 10.976, Some(15)));
    assert_eq!(p.by_type.len(), 5);
    let sum: f64 = p.ops.iter().map(|o| o.avg_ms).sum();
    assert!((sum * 1000.0 - 15167.6).abs() < 20.0, "per-op sum {sum} ms");
    let init = t.init_profile.unwrap();
    assert_eq!((init.ops.len(), init.ops[0].node_type.as_str()), (1, "AllocateTensors"));

    let t = parse_benchmark_output(&read(&dir, "imx_mobilenet_v1_quant_cpu_op_profiling.txt")).unwrap();
    assert_eq!(t.inference_avg_us, 162980.0);
    let p = t.op_profile.unwrap();
    assert_eq!(p.ops.len(), 31);
    assert_eq!(p.ops[29].node_type, "RESHAPE");
    assert_eq!(p.by_type.iter().map(|r| r.count.unwrap()).sum::<u64>(), 31);
}

#[test]
fn delegate_and_vendor_lines_do_not_confuse_it() {
    let Some(dir) = logs_dir() else { return };
    let t = parse_benchmark_output(&read(&dir, "imx_mobilenet_v1_quant_npu_vx_delegate.txt")).unwrap();
    // The warm-up took 4.6 s (graph compilation), the 379 timed runs 2.5 ms each.
    assert_eq!((t.inference_avg_us, t.runs.count, t.first_us), (2525.59, 379, Some(4625131.0)));
    let p = t.op_profile.unwrap();
    assert_eq!(p.ops.len(), 1);
    assert_eq!((p.ops[0].node_type.as_str(), p.ops[0].avg_ms), ("Vx Delegate", 2.504));
    let init = t.init_profile.unwrap();
    assert_eq!(init.ops[0].node_type, "ModifyGraphWithDelegate");
    assert_eq!(init.ops[1].times_called, Some(2));

    let t = parse_benchmark_output(&read(&dir, "ti_am62x_ssd_mobilenet_v2_cpu.txt")).unwrap();
    assert_eq!((t.inference_avg_us, t.runs.count, t.runs.std), (1.24027e6, 50, Some(2565.0)));
    assert_eq!(t.warmup_avg_us, 1.3576e6);
}

#[test]
fn a_failed_run_is_an_error_quoting_its_log() {
    let Some(dir) = logs_dir() else { return };
    let log = read(&dir, "fail_gpu_opencl_build_tf_issue_62753.txt");
    let e = parse_benchmark_output(&log).unwrap_err().to_string();
    assert!(e.contains("ERROR: Failed to build program executable"), "{e}");
    // Through the runtime, as a profile run reports it: the reason and the log's tail, verbatim.
    for (stdout, stderr) in [(log.clone(), String::new()), (String::new(), log.clone())] {
        let err = tflite().parse(&Output { stdout, stderr, exit_code: 0 }).unwrap_err().to_string();
        assert!(err.contains("it reported: ERROR: Failed to build program executable"), "{err}");
        assert!(err.contains("INFO: GPU delegate created."), "{err}");
        assert!(err.contains("(99:0) : error : conversion between different vector types not allowed"), "{err}");
    }
}

#[test]
fn op_profiles_are_kept_with_the_round() {
    let Some(dir) = logs_dir() else { return };
    let log = read(&dir, "tf2x_x86_native_mobilenet_v1_float_op_profiling.txt");
    let r = tflite().parse(&Output { stdout: log, stderr: String::new(), exit_code: 0 }).unwrap();
    assert_eq!(r.samples_us, vec![15170.2]);
    let ops = r.detail["op_profile"]["ops"].as_array().unwrap();
    assert_eq!(ops.len(), 31);
    assert_eq!(ops[1]["node_type"], "DEPTHWISE_CONV_2D");
    assert_eq!(ops[1]["avg_ms"], 1.078);
    assert_eq!(r.detail["op_profile"]["sum_of_ops_avg_us"], 15167.6);
    assert_eq!(r.detail["op_profile"]["by_type"][0]["times_called"], 15);
}
