//! OFA's net.config both ways on the 50 specialized networks OFA published
//! (`shared/data/ofa/specialized`): import finds the space and genome listed in
//! `specialized.csv`, export reproduces the published file exactly, and inputs no OFA space
//! can express are refused naming the block or field.

use serde_json::{json, Value};
use spaces::spaces::ofa_net_config::{from_net_config, parse_net_config, to_net_config};
use spaces::ArchError;
use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ofa")
}

struct Row {
    net_id: String,
    image_size: u32,
    space: String,
    in_range: bool,
    arch: Value,
    flops_m: Option<f64>,
}

/// specialized.csv: ten plain columns, then the quoted arch JSON.
fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(data().join("specialized.csv")).expect("specialized.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.last(), Some(&"arch"));
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|line| {
            let f: Vec<&str> = line.splitn(header.len(), ',').collect();
            let arch = f[col("arch")].trim_matches('"').replace("\"\"", "\"");
            Row {
                net_id: f[col("net_id")].into(),
                image_size: f[col("image_size")].parse().unwrap(),
                space: f[col("space")].into(),
                in_range: f[col("r_in_hwnas_range")] == "1",
                arch: serde_json::from_str(&arch).unwrap(),
                flops_m: f[col("flops_M")].parse().ok(),
            }
        })
        .collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn published(net_id: &str) -> (Value, u32) {
    let dir = data().join("specialized").join(net_id.replace('@', "-"));
    let run = read_json(&dir.join("run.config"));
    (read_json(&dir.join("net.config")), run["image_size"].as_u64().unwrap() as u32)
}

#[test]
fn every_published_network_imports_to_its_listed_arch_and_exports_back_unchanged() {
    let rows = rows();
    assert_eq!(rows.len(), 50);
    let mut out_of_range = 0;
    for row in &rows {
        let (config, image_size) = published(&row.net_id);
        assert_eq!(image_size, row.image_size, "{}", row.net_id);
        let mut listed = row.arch.clone();
        let r = if row.in_range {
            image_size
        } else {
            // Outside 128-224: refused naming the resolution and the range, importable at an override.
            out_of_range += 1;
            let e = from_net_config(&config, image_size).unwrap_err().to_string();
            assert!(e.contains(&format!("resolution {image_size}")) && e.contains("128-224"), "{}: {e}", row.net_id);
            listed["r"] = json!([224]);
            224
        };
        let (space_name, g) = from_net_config(&config, r).unwrap_or_else(|e| panic!("{}: {e}", row.net_id));
        assert_eq!(space_name, row.space, "{}", row.net_id);
        let space = spaces::space(space_name).unwrap();
        assert_eq!(g, space.from_json(&listed).unwrap(), "{}: genome", row.net_id);
        assert_eq!(to_net_config(&*space, &g).unwrap(), config, "{}: exported net.config", row.net_id);
        // OFA's flops@ ids count multiply-adds of the network at its own input size.
        if let Some(flops) = row.flops_m {
            let macs = space.network_at(&g, image_size).macs() as f64 / 1e6;
            assert!((macs - flops).abs() < 1.0, "{}: {macs:.1}M MACs", row.net_id);
        }
    }
    assert_eq!(out_of_range, 4);
}

/// A published w1.2 network with a 4-block stage 2 (blocks 4-7), for the malformed cases.
fn sample() -> Value {
    published("note10_lat@64ms_top1@80.2_finetune@75").0
}

fn refused(config: &Value) -> String {
    from_net_config(config, 224).map(|(s, _)| s).expect_err("refused").to_string()
}

#[test]
fn malformed_net_configs_are_refused_by_name() {
    let text = serde_json::to_string(&sample()).unwrap();
    assert!(matches!(parse_net_config(&text[..text.len() / 2], 224), Err(ArchError::Json(_))));
    assert!(parse_net_config(&text, 224).is_ok());

    let mut c = sample();
    c["blocks"][7]["mobile_inverted_conv"]["kernel_size"] = json!(9);
    let e = refused(&c);
    assert!(e.contains("blocks[7]") && e.contains("kernel_size 9 is not one of 3, 5, 7"), "{e}");

    let mut c = sample();
    let extra = c["blocks"][6].clone();
    c["blocks"].as_array_mut().unwrap().insert(6, extra);
    let e = refused(&c);
    assert!(e.contains("stage 2 (blocks 4-8) has 5 blocks") && e.contains("at most 4"), "{e}");

    let mut c = sample();
    c.as_object_mut().unwrap().remove("blocks");
    assert_eq!(refused(&c), "field `blocks`: missing");

    let mut c = sample();
    c["first_conv"]["out_channels"] = json!(20);
    let e = refused(&c);
    assert!(e.starts_with("width does not match any OFA space: net.config has first_conv 20"), "{e}");

    // Fits the choices and stages, but OFA-MobileNetV3 has no SE in stage 1.
    let mut c = sample();
    c["blocks"][2]["mobile_inverted_conv"]["use_se"] = json!(true);
    let e = refused(&c);
    assert!(e.contains("blocks[2].mobile_inverted_conv.use_se") && e.contains("has false"), "{e}");

    let mut c = sample();
    c["blocks"][3]["mobile_inverted_conv"]["expand_ratio"] = json!(5);
    assert!(refused(&c).contains("blocks[3]`: expand_ratio 5 is not one of 3, 4, 6"));

    // Training settings are not architecture.
    let mut c = sample();
    c["classifier"]["dropout_rate"] = json!(0.3);
    assert!(from_net_config(&c, 224).is_ok());
}

#[test]
fn the_later_ofa_layout_imports_too() {
    let mut c = sample();
    for b in c["blocks"].as_array_mut().unwrap() {
        let b = b.as_object_mut().unwrap();
        b.insert("name".into(), json!("ResidualBlock"));
        let mut conv = b.remove("mobile_inverted_conv").unwrap();
        conv["name"] = json!("MBConvLayer");
        conv["groups"] = Value::Null;
        let e = conv["expand_ratio"].as_f64().unwrap();
        conv["expand_ratio"] = json!(e);
        b.insert("conv".into(), conv);
    }
    c["first_conv"]["use_se"] = json!(false);
    assert_eq!(from_net_config(&c, 224).unwrap(), from_net_config(&sample(), 224).unwrap());
}

#[test]
fn export_refuses_spaces_other_than_ofa() {
    let space = spaces::space("mnasnet").unwrap();
    let e = to_net_config(&*space, &space.extremes().0).unwrap_err().to_string();
    assert!(e.contains("`mnasnet` is not an OFA space"), "{e}");
}
