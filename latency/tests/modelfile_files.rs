//! Model files without Python: deterministic bytes, errors on weights that do not
//! fit, and a hand-computed conv run through tract (the interpreter hwnas-runner uses).

use latency::modelfile::{onnx, tflite};
use spaces::ir::{Act, Conv, NetBuilder, Network, Op, Shape, Shortcut, Weights};
use tract_tflite::internal::*;

fn preset(name: &str) -> Network {
    spaces::presets::PRESETS.iter().find(|p| p.name == name).unwrap().arch().network(None)
}

#[test]
fn same_network_and_weights_give_identical_bytes() {
    // Between them these use every block feature: SE with both gates, h-swish, group
    // convs with shuffle, identity shortcuts, explicit padding.
    for name in ["mobilenetv3-large", "fbnet-a", "mnasnet-a1"] {
        let net = preset(name);
        let w = Weights::random(&net, 5);
        let tfl = tflite::network_model(&net, &w).unwrap();
        assert_eq!(tfl, tflite::network_model(&net, &w).unwrap(), "{name}");
        assert_eq!(onnx::network_model(&net, &w).unwrap(), onnx::network_model(&net, &w).unwrap(), "{name}");
        if name == "fbnet-a" {
            assert_ne!(tfl, tflite::network_model(&net, &Weights::random(&net, 6)).unwrap());
        }
    }
    let space = spaces::space("fbnet").unwrap();
    for layer in space.layer_table(&[224]).iter().step_by(10) {
        assert_eq!(tflite::layer_model(layer, 1), tflite::layer_model(layer, 1), "{}", layer.key());
    }
}

#[test]
fn weights_of_another_network_are_refused_by_tensor_name() {
    let net = preset("mobilenetv2");
    let other = Weights::random(&preset("mnasnet-b1"), 0);
    for e in [tflite::network_model(&net, &other).unwrap_err(), onnx::network_model(&net, &other).unwrap_err()] {
        let e = e.to_string();
        assert!(e.starts_with("weights do not fit the network: tensor `"), "{e}");
    }
    let mut w = Weights::random(&net, 0);
    w.insert("stem.bn.running_var", vec![31], vec![1.0; 31]).unwrap();
    let e = tflite::network_model(&net, &w).unwrap_err().to_string();
    assert!(e.contains("stem.bn.running_var") && e.contains("[31]") && e.contains("[32]"), "{e}");
}

/// Runs a TFLite model in tract on `input` (NHWC) and returns the output.
fn tract_run(bytes: &[u8], input: Tensor) -> Vec<f32> {
    let model = tract_tflite::tflite().model_for_read(&mut &*bytes).unwrap().into_optimized().unwrap();
    let out = model.into_runnable().unwrap().run(tvec!(input.into())).unwrap();
    out[0].try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec()
}

#[test]
fn a_stride_2_conv_pads_like_pytorch_by_hand() {
    // One 3x3 all-ones conv, stride 2, bias -1, ReLU, on a 4x4 map holding 0..15.
    // PyTorch pads one pixel on every side, so output (0, 0) sums x[0..2, 0..2] = 10;
    // TFLite's own SAME padding would sum x[0..3, 0..3] = 45 instead.
    let conv = Conv {
        out: 1,
        kernel: 3,
        stride: 2,
        groups: 1,
        bias: true,
        bn: false,
        act: Act::Relu,
        se: None,
        shortcut: Shortcut::None,
    };
    let mut b = NetBuilder::at(Shape::new(1, 4, 4));
    b.push("conv", Op::Conv(conv));
    let net = b.finish();
    let mut w = Weights::new();
    w.insert("conv.conv.weight", vec![1, 1, 3, 3], vec![1.0; 9]).unwrap();
    w.insert("conv.conv.bias", vec![1], vec![-1.0]).unwrap();
    let input = Tensor::from_shape(&[1, 4, 4, 1], &(0..16).map(|v| v as f32).collect::<Vec<_>>()).unwrap();
    let out = tract_run(&tflite::network_model(&net, &w).unwrap(), input);
    assert_eq!(out, vec![9.0, 23.0, 50.0, 89.0]);
}

#[test]
fn every_op_the_writer_uses_runs_in_tract() {
    // These three presets use every op but AVERAGE_POOL_2D (h-swish, both SE gates,
    // group convs with shuffle, PAD, depthwise, MEAN, FC); a pooled-skip MnasNet layer
    // adds it. At 72x72 to keep the debug-build interpreter quick; stride-2 layers
    // then meet even and odd sizes (36, 18, 9, 5, 3), exercising both padding paths.
    for name in ["mobilenetv3-large", "fbnet-a", "mnasnet-a1"] {
        let p = spaces::presets::PRESETS.iter().find(|p| p.name == name).unwrap();
        let net = p.arch().network(Some(72));
        let bytes = tflite::network_model(&net, &Weights::random(&net, 0)).unwrap();
        let input = Tensor::from_shape(&[1, 72, 72, 3], &vec![0.5f32; 72 * 72 * 3]).unwrap();
        let out = tract_run(&bytes, input);
        assert_eq!(out.len(), 1000, "{name}");
        assert!(out.iter().all(|v| v.is_finite()), "{name}");
    }
    let mnasnet = spaces::space("mnasnet").unwrap();
    let table = mnasnet.layer_table(&[224]);
    let pooled = table.iter().find(|l| l.key().ends_with("shortcut:avgpool")).expect("MnasNet has pooled skips");
    let s = pooled.input;
    let input =
        Tensor::from_shape(&[1, s.h as usize, s.w as usize, s.c as usize], &vec![0.5f32; s.elements() as usize]);
    let out = tract_run(&tflite::layer_model(pooled, 0), input.unwrap());
    assert_eq!(out.len() as u64, pooled.output.elements());
}
