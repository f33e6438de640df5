//! ONNX models (float32, NCHW, opset 17) of the same [`Graph`] the TFLite writer
//! emits: folded Conv (with `group`) + Relu / Clip(0, 6) / HardSwish, SE as
//! GlobalAveragePool → Conv → act → Conv → Sigmoid | HardSigmoid(1/6, 1/2) → Mul,
//! residuals as Add, the pooled shortcut as a ceil-mode AveragePool (its divisor
//! counts only input pixels, as PyTorch's does without padding), channel shuffle as
//! Reshape → Transpose → Reshape, the classifier as Flatten → Gemm.

use super::graph::{ConvStep, Dims, Graph, Step, Value};
use super::onnx_proto::{
    attribute_type, data_type, AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use super::{ModelFileError, Precision, Quantization};
use prost::Message;
use spaces::ir::{Act, Gate, Layer, Network, Weights};

/// Opset 17: HardSwish needs 14; 17 is supported by every current runtime.
pub const OPSET: i64 = 17;
/// IR version 8 goes with opset 17 (onnx 1.12).
pub const IR_VERSION: i64 = 8;
pub const INPUT: &str = "input";
pub const LOGITS: &str = "logits";

/// The network as an ONNX model: input `input` [1, 3, H, W], output `logits`.
pub fn network_model(net: &Network, weights: &Weights) -> Result<Vec<u8>, ModelFileError> {
    Ok(write(&Graph::lower(net, weights)?, LOGITS))
}

/// Name of a single-layer model's output.
pub const OUTPUT: &str = "output";

/// The network as an ONNX model in the precision `q` asks for: fp32 is exactly
/// [`network_model`]; fp16 and int8 (QDQ) are described in docs/precision.md.
pub fn network_model_as(net: &Network, weights: &Weights, q: &Quantization) -> Result<Vec<u8>, ModelFileError> {
    match q.precision {
        Precision::Fp32 => network_model(net, weights),
        p => Err(unsupported(p, "hwnas network")),
    }
}

/// A model of `layer` alone on its input shape, random weights from `seed`, output
/// `output`, in the precision `q` asks for.
pub fn layer_model_as(layer: &Layer, seed: u64, q: &Quantization) -> Result<Vec<u8>, ModelFileError> {
    let net = Network { input: layer.input, layers: vec![layer.clone()], bn_eps: 1e-5 };
    let graph = Graph::lower(&net, &Weights::random_layer(layer, seed))?;
    match q.precision {
        Precision::Fp32 => Ok(write(&graph, OUTPUT)),
        p => Err(unsupported(p, &layer.name)),
    }
}

fn unsupported(p: Precision, what: &str) -> ModelFileError {
    ModelFileError::Unsupported { format: "ONNX", why: format!("{what}: {p} is not written yet") }
}

/// The ONNX model of `graph`, its output named `output_name`.
pub fn write(graph: &Graph, output_name: &str) -> Vec<u8> {
    let mut w = Writer::default();
    let mut names = vec![INPUT.to_string()];
    for (i, node) in graph.nodes.iter().enumerate() {
        let value: Value = i + 1;
        let name = if value == graph.output { output_name.to_string() } else { node.name.clone() };
        let xs: Vec<String> = node.inputs.iter().map(|&v| names[v].clone()).collect();
        let n = node.name.as_str();
        match &node.step {
            Step::Conv(c) => w.conv(n, &name, c, &xs[0]),
            Step::GlobalMean => w.node("GlobalAveragePool", n, &xs, &name, vec![]),
            Step::Gate(Gate::Sigmoid) => w.node("Sigmoid", n, &xs, &name, vec![]),
            Step::Gate(Gate::HSigmoid) => {
                let attrs = vec![float("alpha", 1.0 / 6.0), float("beta", 0.5)];
                w.node("HardSigmoid", n, &xs, &name, attrs)
            }
            Step::Mul => w.node("Mul", n, &xs, &name, vec![]),
            Step::Add => w.node("Add", n, &xs, &name, vec![]),
            Step::AvgPool { stride } => {
                let s = *stride as i64;
                let attrs = vec![
                    ints("kernel_shape", &[s, s]),
                    ints("strides", &[s, s]),
                    int("ceil_mode", 1),
                    int("count_include_pad", 0),
                ];
                w.node("AveragePool", n, &xs, &name, attrs)
            }
            Step::ChannelShuffle { groups } => {
                let Dims::Map(s) = graph.dims(node.inputs[0]) else { unreachable!("shuffles act on maps") };
                let (g, c, hw) = (*groups as i64, s.c as i64, (s.h * s.w) as i64);
                let split = w.const_i64(&format!("{n}.split_shape"), &[1, g, c / g, hw]);
                w.node("Reshape", &format!("{n}.split"), &[xs[0].clone(), split], &format!("{n}.split"), vec![]);
                let perm = vec![ints("perm", &[0, 2, 1, 3])];
                w.node("Transpose", &format!("{n}.swap"), &[format!("{n}.split")], &format!("{n}.swap"), perm);
                let back = w.const_i64(&format!("{n}.shape"), &[1, c, s.h as i64, s.w as i64]);
                w.node("Reshape", n, &[format!("{n}.swap"), back], &name, vec![]);
            }
            Step::Linear { weight, bias, out, act } => {
                let cin = graph.dims(node.inputs[0]).channels() as i64;
                let mut x = xs[0].clone();
                if let Dims::Map(_) = graph.dims(node.inputs[0]) {
                    let flat = format!("{n}.flatten");
                    w.node("Flatten", &flat, &[x], &flat, vec![int("axis", 1)]);
                    x = flat;
                }
                let wt = w.const_f32(&format!("{n}.weight"), &[*out as i64, cin], weight);
                let b = w.const_f32(&format!("{n}.bias"), &[*out as i64], bias);
                let pre = if *act == Act::None { name.clone() } else { format!("{n}.linear") };
                w.node("Gemm", &format!("{n}.gemm"), &[x, wt, b], &pre, vec![int("transB", 1)]);
                w.activation(n, *act, &pre, &name);
            }
        }
        names.push(name);
    }
    let input_shape = [1, 3, graph.input.h as i64, graph.input.w as i64];
    let output_shape = match graph.dims(graph.output) {
        Dims::Map(s) => vec![1, s.c as i64, s.h as i64, s.w as i64],
        Dims::Vector(c) => vec![1, c as i64],
    };
    let mut nodes = w.nodes;
    if graph.output == 0 {
        // A model of an identity layer still needs a node between input and output.
        nodes.push(NodeProto {
            input: vec![INPUT.into()],
            output: vec![output_name.into()],
            name: Some("identity".into()),
            op_type: Some("Identity".into()),
            attribute: vec![],
        });
    }
    let model = ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
        producer_name: Some("hwnas".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: None,
        graph: Some(GraphProto {
            node: nodes,
            name: Some("main".into()),
            initializer: w.initializers,
            input: vec![value_info(INPUT, &input_shape)],
            output: vec![value_info(output_name, &output_shape)],
        }),
    };
    model.encode_to_vec()
}

fn value_info(name: &str, shape: &[i64]) -> ValueInfoProto {
    let dim = shape.iter().map(|&d| Dimension { dim_value: Some(d) }).collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: Some(data_type::FLOAT),
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

fn attr(name: &str, kind: i32) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(kind), ..Default::default() }
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto { i: Some(i), ..attr(name, attribute_type::INT) }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { ints: v.to_vec(), ..attr(name, attribute_type::INTS) }
}

fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto { f: Some(f), ..attr(name, attribute_type::FLOAT) }
}

#[derive(Default)]
struct Writer {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl Writer {
    fn node(&mut self, op: &str, name: &str, inputs: &[String], output: &str, attribute: Vec<AttributeProto>) {
        self.nodes.push(NodeProto {
            input: inputs.to_vec(),
            output: vec![output.into()],
            name: Some(name.into()),
            op_type: Some(op.into()),
            attribute,
        });
    }

    fn initializer(&mut self, name: &str, dims: &[i64], data_type: i32, raw: Vec<u8>) -> String {
        self.initializers.push(TensorProto {
            dims: dims.to_vec(),
            data_type: Some(data_type),
            name: Some(name.into()),
            raw_data: Some(raw),
        });
        name.to_string()
    }

    fn const_f32(&mut self, name: &str, dims: &[i64], data: &[f32]) -> String {
        self.initializer(name, dims, data_type::FLOAT, data.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    fn const_i64(&mut self, name: &str, data: &[i64]) -> String {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, &[data.len() as i64], data_type::INT64, raw)
    }

    /// `act` applied to `x`, written to `output` (a no-op when `act` is none and they coincide).
    fn activation(&mut self, node: &str, act: Act, x: &str, output: &str) {
        let xs = [x.to_string()];
        match act {
            Act::None => {}
            Act::Relu => self.node("Relu", &format!("{node}.relu"), &xs, output, vec![]),
            Act::HSwish => self.node("HardSwish", &format!("{node}.hswish"), &xs, output, vec![]),
            Act::Relu6 => {
                // Clip takes its bounds as inputs since opset 11; one pair serves every ReLU6.
                if !self.initializers.iter().any(|t| t.name.as_deref() == Some("relu6.min")) {
                    self.const_scalar("relu6.min", 0.0);
                    self.const_scalar("relu6.max", 6.0);
                }
                let inputs = [x.to_string(), "relu6.min".into(), "relu6.max".into()];
                self.node("Clip", &format!("{node}.relu6"), &inputs, output, vec![])
            }
        }
    }

    fn const_scalar(&mut self, name: &str, v: f32) {
        self.initializer(name, &[], data_type::FLOAT, v.to_le_bytes().to_vec());
    }

    fn conv(&mut self, node: &str, output: &str, c: &ConvStep, x: &str) {
        let (k, p, s) = (c.kernel as i64, c.pad() as i64, c.stride as i64);
        let cin_per_group = (c.weight.len() / (c.out as usize * (k * k) as usize)) as i64;
        let wt = self.const_f32(&format!("{node}.weight"), &[c.out as i64, cin_per_group, k, k], &c.weight);
        let b = self.const_f32(&format!("{node}.bias"), &[c.out as i64], &c.bias);
        let attrs = vec![
            ints("kernel_shape", &[k, k]),
            ints("strides", &[s, s]),
            ints("pads", &[p, p, p, p]),
            ints("dilations", &[1, 1]),
            int("group", c.groups as i64),
        ];
        let pre = if c.act == Act::None { output.to_string() } else { format!("{node}.conv") };
        self.node("Conv", &format!("{node}.conv"), &[x.to_string(), wt, b], &pre, attrs);
        self.activation(node, c.act, &pre, output);
    }
}
