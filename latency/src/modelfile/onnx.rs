//! ONNX models (float32, NCHW, opset 17) of the same [`Graph`] the TFLite writer
//! emits: folded Conv (with `group`) + Relu / Clip(0, 6) / HardSwish, SE as
//! GlobalAveragePool → Conv → act → Conv → Sigmoid | HardSigmoid(1/6, 1/2) → Mul,
//! residuals as Add, the pooled shortcut as a ceil-mode AveragePool (its divisor
//! counts only input pixels, as PyTorch's does without padding), channel shuffle as
//! Reshape → Transpose → Reshape, the classifier as Flatten → Gemm.

use super::calibrate::{self, Range, Ranges};
use super::graph::{ConvStep, Dims, Graph, Step, Value};
use super::onnx_proto::{
    attribute_type, data_type, AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use super::quant::{self, QParams};
use super::tflite;
use super::{Calibration, ModelFileError, Precision, Quantization};
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
        _ => write_as(&Graph::lower(net, weights)?, LOGITS, q),
    }
}

/// A model of `layer` alone on its input shape, random weights from `seed`, output
/// `output`, in the precision `q` asks for.
pub fn layer_model_as(layer: &Layer, seed: u64, q: &Quantization) -> Result<Vec<u8>, ModelFileError> {
    let net = Network { input: layer.input, layers: vec![layer.clone()], bn_eps: 1e-5 };
    let graph = Graph::lower(&net, &Weights::random_layer(layer, seed))?;
    let q = match (q.precision, &q.calibration) {
        // As for TFLite: a single layer calibrates on at most a few synthetic samples.
        (Precision::Int8, Calibration::Synthetic { seed, samples }) => &Quantization {
            calibration: Calibration::Synthetic { seed: *seed, samples: (*samples).min(tflite::LAYER_SAMPLES) },
            ..q.clone()
        },
        _ => q,
    };
    match q.precision {
        Precision::Fp32 => Ok(write(&graph, OUTPUT)),
        _ => write_as(&graph, OUTPUT, q),
    }
}

/// The model of `graph` in `q`'s precision: fp32 is [`write`]; fp16 stores every
/// float initializer of a conv or Gemm as FLOAT16 and Casts it to float; int8 is
/// QDQ: each value passes QuantizeLinear → DequantizeLinear with its calibrated
/// parameters, weights are int8 initializers (per output channel, axis 0, for Conv;
/// per tensor for Gemm) and biases int32 at input_scale·weight_scale, each through a
/// DequantizeLinear, which onnxruntime fuses into integer kernels.
pub fn write_as(graph: &Graph, output_name: &str, q: &Quantization) -> Result<Vec<u8>, ModelFileError> {
    match q.precision {
        Precision::Fp32 => Ok(write(graph, output_name)),
        Precision::Fp16 => Ok(emit(graph, output_name, Mode::Fp16)),
        Precision::Int8 => {
            let ranges = calibrate::ranges(graph, &calibrate::inputs(graph, &q.calibration)?);
            Ok(emit(graph, output_name, Mode::Int8 { ranges: &ranges, int8_io: q.int8_io }))
        }
    }
}

#[derive(Clone, Copy)]
enum Mode<'r> {
    Fp32,
    Fp16,
    Int8 { ranges: &'r Ranges, int8_io: bool },
}

/// The ONNX model of `graph`, its output named `output_name`.
pub fn write(graph: &Graph, output_name: &str) -> Vec<u8> {
    emit(graph, output_name, Mode::Fp32)
}

fn emit(graph: &Graph, output_name: &str, mode: Mode) -> Vec<u8> {
    let mut w = Writer { fp16: matches!(mode, Mode::Fp16), ..Writer::default() };
    let (ranges, int8_io) = match mode {
        Mode::Int8 { ranges, int8_io } => (Some(ranges), int8_io),
        _ => (None, false),
    };
    let q_of = |r: Range| quant::activation(r);
    let mut names = vec![INPUT.to_string()];
    // The int8 parameters of each value (QDQ models only).
    let mut qs: Vec<Option<QParams>> = vec![ranges.map(|r| q_of(r.values[0]))];
    if let Some(q) = qs[0] {
        names[0] = if int8_io { w.dequantize(INPUT, q) } else { w.qdq(INPUT, q) };
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        let value: Value = i + 1;
        let name = match value == graph.output {
            true if ranges.is_some() => format!("{output_name}.float"),
            true => output_name.to_string(),
            false => node.name.clone(),
        };
        let xs: Vec<String> = node.inputs.iter().map(|&v| names[v].clone()).collect();
        let n = node.name.as_str();
        let qi = qs[node.inputs[0]];
        let mut qo = ranges.map(|r| q_of(r.values[value]));
        match &node.step {
            Step::Conv(c) => {
                let qn = ranges.and_then(|r| r.inner[i]).map(q_of);
                w.conv(n, &name, c, &xs[0], [qi, qn])
            }
            Step::GlobalMean => w.node("GlobalAveragePool", n, &xs, &name, vec![]),
            Step::Gate(Gate::Sigmoid) => {
                qo = qo.map(|_| quant::LOGISTIC);
                w.node("Sigmoid", n, &xs, &name, vec![])
            }
            Step::Gate(Gate::HSigmoid) => {
                let attrs = vec![float("alpha", 1.0 / 6.0), float("beta", 0.5)];
                w.node("HardSigmoid", n, &xs, &name, attrs)
            }
            Step::Mul => w.node("Mul", n, &xs, &name, vec![]),
            Step::Add => w.node("Add", n, &xs, &name, vec![]),
            Step::AvgPool { stride } => {
                qo = qi;
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
                qo = qi;
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
                    // Flatten keeps its input's parameters; the Gemm reads a dequantized int8 input.
                    x = match qi {
                        Some(q) => w.qdq(&flat, q),
                        None => flat,
                    };
                }
                let (wt, b) = w.weight_and_bias(n, &[*out as i64, cin], weight, bias, qi, 1, |_| 0);
                let pre = if *act == Act::None { name.clone() } else { format!("{n}.linear") };
                w.node("Gemm", &format!("{n}.gemm"), &[x, wt, b], &pre, vec![int("transB", 1)]);
                let pre = match ranges.and_then(|r| r.inner[i]) {
                    Some(r) if *act == Act::HSwish => w.qdq(&pre, q_of(r)),
                    _ => pre,
                };
                w.activation(n, *act, &pre, &name);
            }
        }
        let name = match qo {
            Some(q) => w.qdq(&name, q),
            None => name,
        };
        names.push(name);
        qs.push(qo);
    }
    if let Some(q) = qs[graph.output] {
        // The QDQ'd output, or (int8 I/O) its int8 form, under the output's name.
        let last = &names[graph.output];
        let y = if int8_io { format!("{}.q", last.strip_suffix(".dq").unwrap_or(last)) } else { last.clone() };
        if int8_io && graph.output == 0 {
            w.quantize(last, q, output_name);
        } else {
            w.node("Identity", &format!("{output_name}.identity"), &[y], output_name, vec![]);
        }
    }
    let input_shape = [1, graph.input.c as i64, graph.input.h as i64, graph.input.w as i64];
    let output_shape = match graph.dims(graph.output) {
        Dims::Map(s) => vec![1, s.c as i64, s.h as i64, s.w as i64],
        Dims::Vector(c) => vec![1, c as i64],
    };
    let mut nodes = w.nodes;
    if graph.output == 0 && ranges.is_none() {
        // A model of an identity layer still needs a node between input and output.
        nodes.push(NodeProto {
            input: vec![INPUT.into()],
            output: vec![output_name.into()],
            name: Some("identity".into()),
            op_type: Some("Identity".into()),
            attribute: vec![],
        });
    }
    let io_type = if int8_io && ranges.is_some() { data_type::INT8 } else { data_type::FLOAT };
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
            input: vec![value_info(INPUT, &input_shape, io_type)],
            output: vec![value_info(output_name, &output_shape, io_type)],
        }),
    };
    model.encode_to_vec()
}

fn value_info(name: &str, shape: &[i64], elem_type: i32) -> ValueInfoProto {
    let dim = shape.iter().map(|&d| Dimension { dim_value: Some(d) }).collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor { elem_type: Some(elem_type), shape: Some(TensorShapeProto { dim }) }),
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
    /// Weights and biases stored as FLOAT16 and Cast to float.
    fp16: bool,
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

    /// A weight or bias: float; FLOAT16 + Cast (fp16 models).
    fn const_param(&mut self, name: &str, dims: &[i64], data: &[f32]) -> String {
        if !self.fp16 {
            return self.const_f32(name, dims, data);
        }
        let half = self.initializer(name, dims, data_type::FLOAT16, quant::f16_bytes(data));
        let y = format!("{name}.float");
        self.node("Cast", &format!("{name}.cast"), &[half], &y, vec![int("to", data_type::FLOAT as i64)]);
        y
    }

    /// Weight and bias inputs of a Conv or Gemm whose input has int8 parameters `qi`
    /// (float ones where `qi` is none): int8 weights, symmetric per `channels`
    /// (`channel(i)` names element `i`'s; axis 0), int32 biases at input_scale·weight_scale.
    #[allow(clippy::too_many_arguments)]
    fn weight_and_bias(
        &mut self,
        prefix: &str,
        dims: &[i64],
        weight: &[f32],
        bias: &[f32],
        qi: Option<QParams>,
        channels: usize,
        channel: impl Fn(usize) -> usize,
    ) -> (String, String) {
        let bdims = [bias.len() as i64];
        let Some(qi) = qi else {
            let wt = self.const_param(&format!("{prefix}.weight"), dims, weight);
            return (wt, self.const_param(&format!("{prefix}.bias"), &bdims, bias));
        };
        let (wq, scales) = quant::symmetric(weight, channels, channel);
        let (bq, bscales) = quant::bias(bias, qi.scale, &scales);
        // Per-channel parameters are 1-D along axis 0; per-tensor ones are scalars.
        let pdims: Vec<i64> = if channels > 1 { vec![channels as i64] } else { vec![] };
        let wname = format!("{prefix}.weight");
        let raw = wq.iter().map(|&v| v as u8).collect();
        let wq = self.initializer(&format!("{wname}.int8"), dims, data_type::INT8, raw);
        let ws = self.initializer(&format!("{wname}.scale"), &pdims, data_type::FLOAT, f32_bytes(&scales));
        let wz = self.initializer(&format!("{wname}.zero_point"), &pdims, data_type::INT8, vec![0; scales.len()]);
        self.node("DequantizeLinear", &format!("{wname}.dequantize"), &[wq, ws, wz], &wname, vec![int("axis", 0)]);
        let bname = format!("{prefix}.bias");
        let raw = bq.iter().flat_map(|v| v.to_le_bytes()).collect();
        let bq = self.initializer(&format!("{bname}.int32"), &bdims, data_type::INT32, raw);
        let bs = self.initializer(&format!("{bname}.scale"), &pdims, data_type::FLOAT, f32_bytes(&bscales));
        let bz = self.initializer(&format!("{bname}.zero_point"), &pdims, data_type::INT32, vec![0; 4 * bscales.len()]);
        self.node("DequantizeLinear", &format!("{bname}.dequantize"), &[bq, bs, bz], &bname, vec![int("axis", 0)]);
        (wname, bname)
    }

    /// Scalar scale and zero-point initializers of `q` for the value `x`.
    fn qparams(&mut self, x: &str, q: QParams) -> [String; 2] {
        let s = self.initializer(&format!("{x}.scale"), &[], data_type::FLOAT, q.scale.to_le_bytes().to_vec());
        let z = self.initializer(&format!("{x}.zero_point"), &[], data_type::INT8, vec![q.zero_point as i8 as u8]);
        [s, z]
    }

    /// QuantizeLinear of `x` with `q` into `y`.
    fn quantize(&mut self, x: &str, q: QParams, y: &str) {
        let [s, z] = self.qparams(x, q);
        self.node("QuantizeLinear", &format!("{x}.quantize"), &[x.to_string(), s, z], y, vec![]);
    }

    /// DequantizeLinear of the int8 `x` with `q`; returns the float value `{x}.dq`.
    fn dequantize(&mut self, x: &str, q: QParams) -> String {
        let [s, z] = self.qparams(x, q);
        let y = format!("{x}.dq");
        self.node("DequantizeLinear", &format!("{x}.dequantize"), &[x.to_string(), s, z], &y, vec![]);
        y
    }

    /// `x` through QuantizeLinear (into `{x}.q`) and DequantizeLinear (into `{x}.dq`).
    fn qdq(&mut self, x: &str, q: QParams) -> String {
        let [s, z] = self.qparams(x, q);
        let (xq, y) = (format!("{x}.q"), format!("{x}.dq"));
        self.node("QuantizeLinear", &format!("{x}.quantize"), &[x.to_string(), s.clone(), z.clone()], &xq, vec![]);
        self.node("DequantizeLinear", &format!("{x}.dequantize"), &[xq, s, z], &y, vec![]);
        y
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

    /// A folded conv; `q` holds the int8 parameters of its input and (h-swish only)
    /// of its pre-activation output.
    fn conv(&mut self, node: &str, output: &str, c: &ConvStep, x: &str, [qi, qn]: [Option<QParams>; 2]) {
        let (k, p, s) = (c.kernel as i64, c.pad() as i64, c.stride as i64);
        let cin_per_group = (c.weight.len() / (c.out as usize * (k * k) as usize)) as i64;
        let per_out = c.weight.len() / c.out as usize;
        let dims = [c.out as i64, cin_per_group, k, k];
        let (wt, b) = self.weight_and_bias(node, &dims, &c.weight, &c.bias, qi, c.out as usize, |i| i / per_out);
        let attrs = vec![
            ints("kernel_shape", &[k, k]),
            ints("strides", &[s, s]),
            ints("pads", &[p, p, p, p]),
            ints("dilations", &[1, 1]),
            int("group", c.groups as i64),
        ];
        let pre = if c.act == Act::None { output.to_string() } else { format!("{node}.conv") };
        self.node("Conv", &format!("{node}.conv"), &[x.to_string(), wt, b], &pre, attrs);
        let pre = match qn {
            Some(q) if c.act == Act::HSwish => self.qdq(&pre, q),
            _ => pre,
        };
        self.activation(node, c.act, &pre, output);
    }
}

fn f32_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}
