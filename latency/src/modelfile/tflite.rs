//! TFLite flatbuffers (float32, NHWC) written with tract-tflite's flatc-generated
//! builders for the official `tflite.fbs` schema.
//!
//! Lowering choices, each the form the TFLite converter produces or the nearest
//! one every interpreter (LiteRT, tract) runs:
//! - CONV_2D weights OHWI, DEPTHWISE_CONV_2D weights [1, k, k, C]; BN folded; ReLU and
//!   ReLU6 fused into the conv; h-swish as HARD_SWISH;
//! - TFLite's SAME pads the extra row/column at the bottom/right while PyTorch pads
//!   k//2 on every side; where the two differ (stride 2 on even sizes) an explicit PAD
//!   precedes a VALID conv, so the numerics match PyTorch exactly;
//! - group 1×1 convs as SLICE per group + CONV_2D + CONCATENATION (SLICE rather than
//!   SPLIT because tract, which hwnas-runner uses, has no SPLIT);
//! - channel shuffle as RESHAPE → TRANSPOSE → RESHAPE (4-D throughout);
//! - SE as MEAN(keep_dims) → CONV_2D → act → CONV_2D → gate → MUL, the sigmoid gate as
//!   LOGISTIC and h-sigmoid as ADD(+3, fused RELU6) → MUL(1/6);
//! - global pooling as MEAN over H, W; linear as RESHAPE to [1, C] + FULLY_CONNECTED; residuals as ADD,
//!   the pooled shortcut as AVERAGE_POOL_2D (SAME, whose divisor skips padding) + ADD.

use super::calibrate::{self, Range, Ranges};
use super::graph::{ConvStep, Dims, Graph, Step, Value};
use super::quant::{self, QParams};
use super::{Calibration, ModelFileError, Precision, Quantization};
use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};
use spaces::ir::{Act, Gate, Layer, Network, Weights};
use tract_tflite::tflite::{
    ActivationFunctionType, AddOptions, AddOptionsArgs, Buffer, BufferArgs, BuiltinOperator, BuiltinOptions,
    ConcatenationOptions, ConcatenationOptionsArgs, Conv2DOptions, Conv2DOptionsArgs, DepthwiseConv2DOptions,
    DepthwiseConv2DOptionsArgs, FullyConnectedOptions, FullyConnectedOptionsArgs, FullyConnectedOptionsWeightsFormat,
    Model, ModelArgs, MulOptions, MulOptionsArgs, Operator, OperatorArgs, OperatorCode, OperatorCodeArgs, Padding,
    Pool2DOptions, Pool2DOptionsArgs, QuantizationParameters, QuantizationParametersArgs, ReducerOptions,
    ReducerOptionsArgs, ReshapeOptions, ReshapeOptionsArgs, SubGraph, SubGraphArgs, Tensor, TensorArgs, TensorType,
};

/// Name of the input tensor (float32 [1, H, W, 3]).
pub const INPUT: &str = "input";
/// Name of a network's output tensor.
pub const LOGITS: &str = "logits";
/// Name of a single-layer model's output tensor.
pub const OUTPUT: &str = "output";

/// The network as a TFLite model: input `input` [1, H, W, 3], output `logits`.
pub fn network_model(net: &Network, weights: &Weights) -> Result<Vec<u8>, ModelFileError> {
    write(&Graph::lower(net, weights)?, LOGITS, "hwnas network")
}

/// Which IR layer each tensor of a written model belongs to: `(tensor name, index into the
/// network's layers)` for every tensor an op of that layer produces or reads as a constant.
/// A runtime's per-op profile names ops by their output tensor (benchmark_model's `[name]:i`,
/// tract's node names), so this is how op times are attributed to layers. The input tensor
/// belongs to no layer.
pub type TensorLayers = Vec<(String, usize)>;

/// [`network_model_as`] and the layer of each of its tensors.
pub fn network_model_mapped(
    net: &Network,
    weights: &Weights,
    q: &Quantization,
) -> Result<(Vec<u8>, TensorLayers), ModelFileError> {
    let graph = Graph::lower(net, weights)?;
    let (bytes, owners) = match q.precision {
        Precision::Fp32 => emit(&graph, LOGITS, "hwnas network", Mode::Fp32)?,
        _ => emit_as(&graph, LOGITS, "hwnas network", q)?,
    };
    let layers = owners.into_iter().filter_map(|(name, node)| Some((name, graph.nodes[node?].layer))).collect();
    Ok((bytes, layers))
}

/// A model of `layer` alone on its input shape, with random weights drawn from
/// `seed`: the unit a latency lookup table times. Output `output`.
///
/// Panics only on a layer the IR builder cannot produce (a linear layer on an
/// unpooled map, a pooled shortcut of stride > 2).
pub fn layer_model(layer: &Layer, seed: u64) -> Vec<u8> {
    let net = Network { input: layer.input, layers: vec![layer.clone()], bn_eps: 1e-5 };
    Graph::lower(&net, &Weights::random_layer(layer, seed))
        .and_then(|g| write(&g, OUTPUT, &layer.key()))
        .unwrap_or_else(|e| panic!("layer {}: {e}", layer.name))
}

/// The network as a TFLite model in the precision `q` asks for: fp32 is exactly
/// [`network_model`]; fp16 and int8 are described in docs/precision.md.
pub fn network_model_as(net: &Network, weights: &Weights, q: &Quantization) -> Result<Vec<u8>, ModelFileError> {
    match q.precision {
        Precision::Fp32 => network_model(net, weights),
        _ => write_as(&Graph::lower(net, weights)?, LOGITS, "hwnas network", q),
    }
}

/// A model of `layer` alone (random weights from `seed`) in the precision `q` asks
/// for; fp32 is exactly [`layer_model`]. Errors instead of panicking.
pub fn layer_model_as(layer: &Layer, seed: u64, q: &Quantization) -> Result<Vec<u8>, ModelFileError> {
    let net = Network { input: layer.input, layers: vec![layer.clone()], bn_eps: 1e-5 };
    let graph = Graph::lower(&net, &Weights::random_layer(layer, seed))?;
    let q = match (q.precision, &q.calibration) {
        // One layer calibrates well on few samples; 16 full maps would dominate table writing.
        (Precision::Int8, Calibration::Synthetic { seed, samples }) => &Quantization {
            calibration: Calibration::Synthetic { seed: *seed, samples: (*samples).min(LAYER_SAMPLES) },
            ..q.clone()
        },
        _ => q,
    };
    write_as(&graph, OUTPUT, &layer.key(), q)
}

/// At most this many synthetic calibration samples for a single-layer int8 model.
pub const LAYER_SAMPLES: usize = 4;

/// The model of `graph` in `q`'s precision (fp32 is [`write`]).
pub fn write_as(
    graph: &Graph,
    output_name: &str,
    description: &str,
    q: &Quantization,
) -> Result<Vec<u8>, ModelFileError> {
    emit_as(graph, output_name, description, q).map(|(bytes, _)| bytes)
}

fn emit_as(graph: &Graph, output_name: &str, description: &str, q: &Quantization) -> Result<Emitted, ModelFileError> {
    match q.precision {
        Precision::Fp32 => emit(graph, output_name, description, Mode::Fp32),
        Precision::Fp16 => emit(graph, output_name, description, Mode::Fp16),
        Precision::Int8 => {
            let ranges = calibrate::ranges(graph, &calibrate::inputs(graph, &q.calibration)?);
            emit(graph, output_name, description, Mode::Int8 { ranges: &ranges, int8_io: q.int8_io })
        }
    }
}

/// A written model and, for each tensor, its name and the graph node that created it.
type Emitted = (Vec<u8>, Vec<(String, Option<usize>)>);

#[derive(Clone, Copy)]
enum Mode<'r> {
    Fp32,
    Fp16,
    Int8 { ranges: &'r Ranges, int8_io: bool },
}

/// The TFLite model of `graph`, its output tensor named `output_name`.
pub fn write(graph: &Graph, output_name: &str, description: &str) -> Result<Vec<u8>, ModelFileError> {
    emit(graph, output_name, description, Mode::Fp32).map(|(bytes, _)| bytes)
}

fn emit(graph: &Graph, output_name: &str, description: &str, mode: Mode) -> Result<Emitted, ModelFileError> {
    let mut w = Writer::new();
    w.fp16 = matches!(mode, Mode::Fp16);
    let (ranges, int8_io) = match mode {
        Mode::Int8 { ranges, int8_io } => (Some(ranges), int8_io),
        _ => (None, false),
    };
    // The calibrated int8 parameters of a range (none for float models).
    let qa = |r: Option<Range>| ranges.map(|_| quant::activation(r.expect("calibrated")));
    let q_value = |v: Value| qa(ranges.map(|r| r.values[v]));
    let q_inner = |i: usize| qa(ranges.map(|r| r.inner[i].expect("inner range calibrated")));
    // With float I/O, the int8 graph sits between a QUANTIZE and a DEQUANTIZE.
    let float_ends = ranges.is_some() && !int8_io;
    let input_shape = nhwc(graph.dims(0));
    let io_input = w.act(INPUT, &input_shape, if float_ends { None } else { q_value(0) });
    let input = if float_ends {
        let x = w.act(&format!("{INPUT}.int8"), &input_shape, q_value(0));
        w.plain_op(BuiltinOperator::QUANTIZE, &[io_input], x);
        x
    } else {
        io_input
    };
    let int8_output = format!("{output_name}.int8");
    let mut tensors = vec![input];
    // The int8 parameters each value's tensor actually has.
    let mut qs = vec![q_value(0)];
    for (i, node) in graph.nodes.iter().enumerate() {
        w.owner = Some(i);
        let value: Value = i + 1;
        let name = match value == graph.output {
            true if float_ends => int8_output.as_str(),
            true => output_name,
            false => node.name.as_str(),
        };
        let xs: Vec<i32> = node.inputs.iter().map(|&v| tensors[v]).collect();
        let out_shape = nhwc(node.dims);
        let in_dims = graph.dims(node.inputs[0]);
        let qi = qs[node.inputs[0]];
        let mut qo = q_value(value);
        let t = match &node.step {
            Step::Conv(c) => {
                let qn = if c.act == Act::HSwish { q_inner(i) } else { None };
                w.conv(&node.name, name, c, xs[0], in_dims, &out_shape, [qi, qn, qo])?
            }
            Step::GlobalMean => {
                let axes = w.const_i32(&format!("{}.axes", node.name), &[2], &[1, 2]);
                let y = w.act(name, &out_shape, qo);
                let opts = ReducerOptions::create(&mut w.fb, &ReducerOptionsArgs { keep_dims: true });
                w.op(BuiltinOperator::MEAN, &[xs[0], axes], y, BuiltinOptions::ReducerOptions, opts.as_union_value());
                y
            }
            Step::Gate(Gate::Sigmoid) => {
                qo = qo.map(|_| quant::LOGISTIC);
                let y = w.act(name, &out_shape, qo);
                w.plain_op(BuiltinOperator::LOGISTIC, &[xs[0]], y);
                y
            }
            Step::Gate(Gate::HSigmoid) => {
                let three = w.const_scalar(&format!("{}.three", node.name), 3.0, qi.is_some());
                let shifted = w.act(&format!("{}.relu6", node.name), &out_shape, q_inner(i));
                w.add(xs[0], three, shifted, ActivationFunctionType::RELU6);
                let sixth = w.const_scalar(&format!("{}.sixth", node.name), 1.0 / 6.0, qi.is_some());
                let y = w.act(name, &out_shape, qo);
                w.mul(shifted, sixth, y);
                y
            }
            Step::Mul => {
                let y = w.act(name, &out_shape, qo);
                w.mul(xs[0], xs[1], y);
                y
            }
            Step::Add => {
                let y = w.act(name, &out_shape, qo);
                w.add(xs[0], xs[1], y, ActivationFunctionType::NONE);
                y
            }
            Step::AvgPool { stride } => {
                let s = map_of(in_dims);
                let uneven = |n: u32| (n.div_ceil(*stride) * stride - n) / 2 > 0;
                if uneven(s.h) || uneven(s.w) {
                    return Err(ModelFileError::Unsupported {
                        format: "TFLite",
                        why: format!("{}: a ceil-mode {stride}x{stride} pool on {s} pads the top/left", node.name),
                    });
                }
                // AVERAGE_POOL_2D in int8 keeps its input's scale.
                qo = qi;
                let y = w.act(name, &out_shape, qo);
                let k = *stride as i32;
                let args = Pool2DOptionsArgs {
                    padding: Padding::SAME,
                    stride_w: k,
                    stride_h: k,
                    filter_width: k,
                    filter_height: k,
                    fused_activation_function: ActivationFunctionType::NONE,
                };
                let opts = Pool2DOptions::create(&mut w.fb, &args);
                w.op(
                    BuiltinOperator::AVERAGE_POOL_2D,
                    &[xs[0]],
                    y,
                    BuiltinOptions::Pool2DOptions,
                    opts.as_union_value(),
                );
                y
            }
            Step::ChannelShuffle { groups } => {
                let s = map_of(in_dims);
                let (g, hw, per) = (*groups as i32, (s.h * s.w) as i32, (s.c / groups) as i32);
                // RESHAPE and TRANSPOSE keep their input's scale.
                qo = qi;
                let split = w.reshape(&format!("{}.split", node.name), xs[0], &[1, hw, g, per], qi);
                let perm = w.const_i32(&format!("{}.perm", node.name), &[4], &[0, 1, 3, 2]);
                let swapped = w.act(&format!("{}.swapped", node.name), &[1, hw, per, g], qi);
                w.plain_op(BuiltinOperator::TRANSPOSE, &[split, perm], swapped);
                w.reshape(name, swapped, &out_shape, qi)
            }
            Step::Linear { weight, bias, out, act } => {
                let cin = in_dims.channels() as i32;
                // FULLY_CONNECTED flattens its input itself, but tract insists on rank 2.
                let x = match in_dims {
                    Dims::Map(_) => w.reshape(&format!("{}.flatten", node.name), xs[0], &[1, cin], qi),
                    Dims::Vector(_) => xs[0],
                };
                let wshape = [*out as i32, cin];
                // FULLY_CONNECTED weights are quantized per tensor.
                let (wt, b) = w.weight_and_bias(&node.name, &wshape, weight, bias, qi, 1, |_| 0, 0);
                let (fused, hswish) = split_act(*act);
                let pre_act = format!("{}.linear", node.name);
                let (y_name, y_q) = if hswish { (pre_act.as_str(), q_inner(i)) } else { (name, qo) };
                let y = w.act(y_name, &out_shape, y_q);
                let args = FullyConnectedOptionsArgs {
                    fused_activation_function: fused,
                    weights_format: FullyConnectedOptionsWeightsFormat::DEFAULT,
                    keep_num_dims: false,
                    asymmetric_quantize_inputs: false,
                };
                let opts = FullyConnectedOptions::create(&mut w.fb, &args);
                let kind = BuiltinOptions::FullyConnectedOptions;
                w.op(BuiltinOperator::FULLY_CONNECTED, &[x, wt, b], y, kind, opts.as_union_value());
                if hswish {
                    w.hard_swish(y, name, &out_shape, qo)
                } else {
                    y
                }
            }
        };
        tensors.push(t);
        qs.push(qo);
    }
    let mut output = tensors[graph.output];
    // The output's DEQUANTIZE belongs to the node that computes the output.
    w.owner = graph.output.checked_sub(1);
    if float_ends {
        let y = w.act(output_name, &nhwc(graph.dims(graph.output)), None);
        w.plain_op(BuiltinOperator::DEQUANTIZE, &[output], y);
        output = y;
    }
    let owners = w.names.iter().cloned().zip(w.owners.iter().copied()).collect();
    Ok((w.finish(io_input, output, description), owners))
}

/// NHWC shape of a value; vectors are [1, C].
fn nhwc(d: Dims) -> Vec<i32> {
    match d {
        Dims::Map(s) => vec![1, s.h as i32, s.w as i32, s.c as i32],
        Dims::Vector(c) => vec![1, c as i32],
    }
}

fn map_of(d: Dims) -> spaces::ir::Shape {
    match d {
        Dims::Map(s) => s,
        Dims::Vector(c) => spaces::ir::Shape::new(c, 1, 1),
    }
}

/// The part of `act` a TFLite op can fuse, and whether a HARD_SWISH must follow.
fn split_act(act: Act) -> (ActivationFunctionType, bool) {
    match act {
        Act::None => (ActivationFunctionType::NONE, false),
        Act::Relu => (ActivationFunctionType::RELU, false),
        Act::Relu6 => (ActivationFunctionType::RELU6, false),
        Act::HSwish => (ActivationFunctionType::NONE, true),
    }
}

/// TFLite SAME padding (before, after) along one axis.
fn same_pads(size: u32, kernel: u32, stride: u32) -> (u32, u32) {
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
}

/// Accumulates tensors, buffers and operators; the flatbuffer is assembled at the end.
struct Writer<'a> {
    fb: FlatBufferBuilder<'a>,
    buffers: Vec<WIPOffset<Buffer<'a>>>,
    tensors: Vec<WIPOffset<Tensor<'a>>>,
    operators: Vec<WIPOffset<Operator<'a>>>,
    codes: Vec<BuiltinOperator>,
    /// Float constants stored as FLOAT16, each DEQUANTIZEd to float32 before use.
    fp16: bool,
    /// The graph node whose tensors are being written (none: the model's input).
    owner: Option<usize>,
    /// Each tensor's name and owner, in tensor order.
    names: Vec<String>,
    owners: Vec<Option<usize>>,
}

impl<'a> Writer<'a> {
    fn new() -> Self {
        let mut fb = FlatBufferBuilder::new();
        // Buffer 0 is the empty sentinel that non-constant tensors point to.
        let sentinel = Buffer::create(&mut fb, &BufferArgs { data: None });
        Writer {
            fb,
            buffers: vec![sentinel],
            tensors: Vec::new(),
            operators: Vec::new(),
            codes: Vec::new(),
            fp16: false,
            owner: None,
            names: Vec::new(),
            owners: Vec::new(),
        }
    }

    fn tensor(&mut self, name: &str, shape: &[i32], type_: TensorType, data: Option<&[u8]>) -> i32 {
        self.tensor_q(name, shape, type_, data, None)
    }

    /// A tensor with quantization parameters: `scales` and zero points along
    /// `dimension` (one scale: per tensor).
    fn tensor_q(
        &mut self,
        name: &str,
        shape: &[i32],
        type_: TensorType,
        data: Option<&[u8]>,
        quant: Option<(&[f32], &[i64], i32)>,
    ) -> i32 {
        let quantization = quant.map(|(scales, zero_points, dimension)| {
            let scale = self.fb.create_vector(scales);
            let zero_point = self.fb.create_vector(zero_points);
            let args = QuantizationParametersArgs {
                scale: Some(scale),
                zero_point: Some(zero_point),
                quantized_dimension: dimension,
                ..Default::default()
            };
            QuantizationParameters::create(&mut self.fb, &args)
        });
        let buffer = match data {
            Some(bytes) => {
                let data = self.fb.create_vector(bytes);
                self.buffers.push(Buffer::create(&mut self.fb, &BufferArgs { data: Some(data) }));
                self.buffers.len() as u32 - 1
            }
            None => 0,
        };
        let shape = self.fb.create_vector(shape);
        self.names.push(name.to_string());
        self.owners.push(self.owner);
        let name = self.fb.create_string(name);
        let args = TensorArgs {
            shape: Some(shape),
            type_,
            buffer,
            name: Some(name),
            has_rank: true,
            quantization,
            ..Default::default()
        };
        self.tensors.push(Tensor::create(&mut self.fb, &args));
        self.tensors.len() as i32 - 1
    }

    fn activation(&mut self, name: &str, shape: &[i32]) -> i32 {
        self.tensor(name, shape, TensorType::FLOAT32, None)
    }

    /// An activation: float32, or int8 with parameters `q`.
    fn act(&mut self, name: &str, shape: &[i32], q: Option<QParams>) -> i32 {
        match q {
            None => self.activation(name, shape),
            Some(q) => {
                let quant = (&[q.scale][..], &[q.zero_point as i64][..], 0);
                self.tensor_q(name, shape, TensorType::INT8, None, Some(quant))
            }
        }
    }

    /// A float constant; in an fp16 model a FLOAT16 tensor and its DEQUANTIZE.
    fn const_f32(&mut self, name: &str, shape: &[i32], data: &[f32]) -> i32 {
        if self.fp16 {
            let half = self.tensor(name, shape, TensorType::FLOAT16, Some(&quant::f16_bytes(data)));
            let y = self.activation(&format!("{name}.dequantized"), shape);
            self.plain_op(BuiltinOperator::DEQUANTIZE, &[half], y);
            return y;
        }
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, shape, TensorType::FLOAT32, Some(&bytes))
    }

    /// A scalar operand [1]: float, or (`int8`) int8 at scale |v|/127, zero point 0.
    fn const_scalar(&mut self, name: &str, v: f32, int8: bool) -> i32 {
        if !int8 {
            return self.const_f32(name, &[1], &[v]);
        }
        let quant = (&[v.abs() / 127.0][..], &[0i64][..], 0);
        self.tensor_q(name, &[1], TensorType::INT8, Some(&[127i8.wrapping_mul(v.signum() as i8) as u8]), Some(quant))
    }

    /// Weight and bias tensors of a conv or fully connected op on an input with
    /// parameters `qi`: float (fp32/fp16), or int8 weights with symmetric scales per
    /// `channels` along `dimension` (`channel(i)` names element `i`'s) and int32
    /// biases at input_scale·weight_scale.
    #[allow(clippy::too_many_arguments)]
    fn weight_and_bias(
        &mut self,
        prefix: &str,
        shape: &[i32],
        weight: &[f32],
        bias: &[f32],
        qi: Option<QParams>,
        channels: usize,
        channel: impl Fn(usize) -> usize,
        dimension: i32,
    ) -> (i32, i32) {
        let bshape = [bias.len() as i32];
        let Some(qi) = qi else {
            let wt = self.const_f32(&format!("{prefix}.weight"), shape, weight);
            return (wt, self.const_f32(&format!("{prefix}.bias"), &bshape, bias));
        };
        let (wq, scales) = quant::symmetric(weight, channels, channel);
        let zeros = vec![0i64; scales.len()];
        let bytes: Vec<u8> = wq.iter().map(|&v| v as u8).collect();
        let wt = self.tensor_q(
            &format!("{prefix}.weight"),
            shape,
            TensorType::INT8,
            Some(&bytes),
            Some((&scales, &zeros, dimension)),
        );
        let (bq, bscales) = quant::bias(bias, qi.scale, &scales);
        let bytes: Vec<u8> = bq.iter().flat_map(|v| v.to_le_bytes()).collect();
        let b = self.tensor_q(
            &format!("{prefix}.bias"),
            &bshape,
            TensorType::INT32,
            Some(&bytes),
            Some((&bscales, &zeros, 0)),
        );
        (wt, b)
    }

    fn const_i32(&mut self, name: &str, shape: &[i32], data: &[i32]) -> i32 {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, shape, TensorType::INT32, Some(&bytes))
    }

    fn op(
        &mut self,
        code: BuiltinOperator,
        inputs: &[i32],
        output: i32,
        options_type: BuiltinOptions,
        options: WIPOffset<UnionWIPOffset>,
    ) {
        self.push_op(code, inputs, output, options_type, Some(options));
    }

    fn plain_op(&mut self, code: BuiltinOperator, inputs: &[i32], output: i32) {
        self.push_op(code, inputs, output, BuiltinOptions::NONE, None);
    }

    fn push_op(
        &mut self,
        code: BuiltinOperator,
        inputs: &[i32],
        output: i32,
        builtin_options_type: BuiltinOptions,
        builtin_options: Option<WIPOffset<UnionWIPOffset>>,
    ) {
        let opcode_index = match self.codes.iter().position(|&c| c == code) {
            Some(i) => i,
            None => {
                self.codes.push(code);
                self.codes.len() - 1
            }
        } as u32;
        let inputs = self.fb.create_vector(inputs);
        let outputs = self.fb.create_vector(&[output]);
        let args = OperatorArgs {
            opcode_index,
            inputs: Some(inputs),
            outputs: Some(outputs),
            builtin_options_type,
            builtin_options,
            ..Default::default()
        };
        self.operators.push(Operator::create(&mut self.fb, &args));
    }

    fn add(&mut self, a: i32, b: i32, y: i32, act: ActivationFunctionType) {
        let opts = AddOptions::create(
            &mut self.fb,
            &AddOptionsArgs { fused_activation_function: act, pot_scale_int16: false },
        );
        self.op(BuiltinOperator::ADD, &[a, b], y, BuiltinOptions::AddOptions, opts.as_union_value());
    }

    fn mul(&mut self, a: i32, b: i32, y: i32) {
        let args = MulOptionsArgs { fused_activation_function: ActivationFunctionType::NONE };
        let opts = MulOptions::create(&mut self.fb, &args);
        self.op(BuiltinOperator::MUL, &[a, b], y, BuiltinOptions::MulOptions, opts.as_union_value());
    }

    fn hard_swish(&mut self, x: i32, name: &str, shape: &[i32], q: Option<QParams>) -> i32 {
        let y = self.act(name, shape, q);
        self.plain_op(BuiltinOperator::HARD_SWISH, &[x], y);
        y
    }

    fn reshape(&mut self, name: &str, x: i32, shape: &[i32], q: Option<QParams>) -> i32 {
        let target = self.const_i32(&format!("{name}.shape"), &[shape.len() as i32], shape);
        let y = self.act(name, shape, q);
        let new_shape = self.fb.create_vector(shape);
        let opts = ReshapeOptions::create(&mut self.fb, &ReshapeOptionsArgs { new_shape: Some(new_shape) });
        self.op(BuiltinOperator::RESHAPE, &[x, target], y, BuiltinOptions::ReshapeOptions, opts.as_union_value());
        y
    }

    /// A folded conv on `x`: an explicit PAD where TFLite's SAME would pad differently
    /// from PyTorch, then CONV_2D, DEPTHWISE_CONV_2D or per-group CONV_2Ds. `q` holds
    /// the int8 parameters of the input, the pre-h-swish output and the output.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        node: &str,
        name: &str,
        c: &ConvStep,
        x: i32,
        in_dims: Dims,
        out_shape: &[i32],
        q: [Option<QParams>; 3],
    ) -> Result<i32, ModelFileError> {
        let [qi, qn, qo] = q;
        let s = map_of(in_dims);
        let p = c.pad();
        let same = same_pads(s.h, c.kernel, c.stride) == (p, p) && same_pads(s.w, c.kernel, c.stride) == (p, p);
        let (x, padding) = if p == 0 {
            (x, Padding::VALID)
        } else if same {
            (x, Padding::SAME)
        } else {
            let pads = [0, 0, p as i32, p as i32, p as i32, p as i32, 0, 0];
            let pads = self.const_i32(&format!("{node}.pads"), &[4, 2], &pads);
            let padded_shape = [1, (s.h + 2 * p) as i32, (s.w + 2 * p) as i32, s.c as i32];
            // PAD keeps its input's scale; int8 pads with the zero point (real 0).
            let padded = self.act(&format!("{node}.padded"), &padded_shape, qi);
            self.plain_op(BuiltinOperator::PAD, &[x, pads], padded);
            (padded, Padding::VALID)
        };
        let (fused, hswish) = split_act(c.act);
        let pre_act = format!("{node}.conv");
        let (conv_name, qc) = if hswish { (pre_act.as_str(), qn) } else { (name, qo) };
        let (k, cin, out) = (c.kernel as usize, s.c as usize, c.out as usize);
        let y = if c.groups == 1 {
            let q = [qi, qc];
            self.conv2d(node, conv_name, x, &c.weight, out, k, cin, &c.bias, c.stride, padding, fused, out_shape, q)
        } else if c.groups as usize == cin && c.weight.len() == out * k * k {
            // Depthwise: PyTorch [out, 1, k, k] -> TFLite [1, k, k, out].
            let mut wt = vec![0.0f32; out * k * k];
            for o in 0..out {
                for yx in 0..k * k {
                    wt[yx * out + o] = c.weight[o * k * k + yx];
                }
            }
            // Depthwise weights are quantized per output channel, the last dimension.
            let shape = [1, k as i32, k as i32, out as i32];
            let (wt, b) = self.weight_and_bias(node, &shape, &wt, &c.bias, qi, out, |i| i % out, 3);
            let y = self.act(conv_name, out_shape, qc);
            let args = DepthwiseConv2DOptionsArgs {
                padding,
                stride_w: c.stride as i32,
                stride_h: c.stride as i32,
                depth_multiplier: (out / cin) as i32,
                fused_activation_function: fused,
                dilation_w_factor: 1,
                dilation_h_factor: 1,
            };
            let opts = DepthwiseConv2DOptions::create(&mut self.fb, &args);
            let kind = BuiltinOptions::DepthwiseConv2DOptions;
            self.op(BuiltinOperator::DEPTHWISE_CONV_2D, &[x, wt, b], y, kind, opts.as_union_value());
            y
        } else {
            self.group_conv(node, conv_name, c, x, s, p, padding, fused, out_shape, [qi, qc])
        };
        Ok(if hswish { self.hard_swish(y, name, out_shape, qo) } else { y })
    }

    /// CONV_2D with PyTorch weights [out, cin, k, k] transposed to OHWI.
    #[allow(clippy::too_many_arguments)]
    fn conv2d(
        &mut self,
        prefix: &str,
        name: &str,
        x: i32,
        weight: &[f32],
        out: usize,
        k: usize,
        cin: usize,
        bias: &[f32],
        stride: u32,
        padding: Padding,
        fused: ActivationFunctionType,
        out_shape: &[i32],
        [qi, qo]: [Option<QParams>; 2],
    ) -> i32 {
        let mut wt = vec![0.0f32; out * k * k * cin];
        for o in 0..out {
            for i in 0..cin {
                for yx in 0..k * k {
                    wt[(o * k * k + yx) * cin + i] = weight[(o * cin + i) * k * k + yx];
                }
            }
        }
        // OHWI weights are quantized per output channel, the first dimension.
        let shape = [out as i32, k as i32, k as i32, cin as i32];
        let per_out = k * k * cin;
        let (wt, b) = self.weight_and_bias(prefix, &shape, &wt, bias, qi, out, |i| i / per_out, 0);
        let y = self.act(name, out_shape, qo);
        let args = Conv2DOptionsArgs {
            padding,
            stride_w: stride as i32,
            stride_h: stride as i32,
            fused_activation_function: fused,
            dilation_w_factor: 1,
            dilation_h_factor: 1,
        };
        let opts = Conv2DOptions::create(&mut self.fb, &args);
        self.op(BuiltinOperator::CONV_2D, &[x, wt, b], y, BuiltinOptions::Conv2DOptions, opts.as_union_value());
        y
    }

    /// A grouped conv as one SLICE + CONV_2D per group, joined by CONCATENATION.
    #[allow(clippy::too_many_arguments)]
    fn group_conv(
        &mut self,
        node: &str,
        name: &str,
        c: &ConvStep,
        x: i32,
        s: spaces::ir::Shape,
        pad: u32,
        padding: Padding,
        fused: ActivationFunctionType,
        out_shape: &[i32],
        [qi, qo]: [Option<QParams>; 2],
    ) -> i32 {
        let (g, k) = (c.groups as usize, c.kernel as usize);
        let (cin, out) = (s.c as usize / g, c.out as usize / g);
        let (h, w) = ((s.h + 2 * pad) as i32, (s.w + 2 * pad) as i32);
        let part_shape = [out_shape[0], out_shape[1], out_shape[2], out as i32];
        let mut parts = Vec::with_capacity(g);
        for i in 0..g {
            let begin = self.const_i32(&format!("{node}.g{i}.begin"), &[4], &[0, 0, 0, (i * cin) as i32]);
            let size = self.const_i32(&format!("{node}.g{i}.size"), &[4], &[1, h, w, cin as i32]);
            // SLICE keeps its input's scale; each part takes the CONCATENATION's output
            // scale, which TFLite's converter gives all of a concatenation's inputs.
            let slice = self.act(&format!("{node}.g{i}.input"), &[1, h, w, cin as i32], qi);
            self.plain_op(BuiltinOperator::SLICE, &[x, begin, size], slice);
            let weight = &c.weight[i * out * cin * k * k..(i + 1) * out * cin * k * k];
            let bias = &c.bias[i * out..(i + 1) * out];
            let part_name = format!("{node}.g{i}");
            parts.push(self.conv2d(
                &part_name,
                &part_name,
                slice,
                weight,
                out,
                k,
                cin,
                bias,
                c.stride,
                padding,
                fused,
                &part_shape,
                [qi, qo],
            ));
        }
        let y = self.act(name, out_shape, qo);
        let args = ConcatenationOptionsArgs { axis: 3, fused_activation_function: ActivationFunctionType::NONE };
        let opts = ConcatenationOptions::create(&mut self.fb, &args);
        let kind = BuiltinOptions::ConcatenationOptions;
        self.op(BuiltinOperator::CONCATENATION, &parts, y, kind, opts.as_union_value());
        y
    }

    fn finish(mut self, input: i32, output: i32, description: &str) -> Vec<u8> {
        let tensors = self.fb.create_vector(&self.tensors);
        let operators = self.fb.create_vector(&self.operators);
        let inputs = self.fb.create_vector(&[input]);
        let outputs = self.fb.create_vector(&[output]);
        let name = self.fb.create_string("main");
        let subgraph = SubGraph::create(
            &mut self.fb,
            &SubGraphArgs {
                tensors: Some(tensors),
                inputs: Some(inputs),
                outputs: Some(outputs),
                operators: Some(operators),
                name: Some(name),
            },
        );
        let codes: Vec<_> = self
            .codes
            .iter()
            .map(|&code| {
                // Codes above 127 live only in `builtin_code`; the deprecated byte saturates.
                let args = OperatorCodeArgs {
                    deprecated_builtin_code: code.0.min(127) as i8,
                    custom_code: None,
                    version: 1,
                    builtin_code: code,
                };
                OperatorCode::create(&mut self.fb, &args)
            })
            .collect();
        let operator_codes = self.fb.create_vector(&codes);
        let subgraphs = self.fb.create_vector(&[subgraph]);
        let buffers = self.fb.create_vector(&self.buffers);
        let description = self.fb.create_string(description);
        let model = Model::create(
            &mut self.fb,
            &ModelArgs {
                version: 3,
                operator_codes: Some(operator_codes),
                subgraphs: Some(subgraphs),
                description: Some(description),
                buffers: Some(buffers),
                ..Default::default()
            },
        );
        tract_tflite::tflite::finish_model_buffer(&mut self.fb, model);
        self.fb.finished_data().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_names_are_unique_and_the_io_is_named() {
        // tract names its nodes after tensors and refuses duplicates.
        for p in spaces::presets::PRESETS.iter().filter(|p| ["mobilenetv3-large", "fbnet-a"].contains(&p.name)) {
            let net = p.arch().network(Some(64));
            let bytes = network_model(&net, &Weights::random(&net, 0)).unwrap();
            let model = tract_tflite::tflite::root_as_model(&bytes).unwrap();
            let graph = model.subgraphs().unwrap().get(0);
            let tensors = graph.tensors().unwrap();
            let names: Vec<&str> = tensors.iter().map(|t| t.name().unwrap()).collect();
            let unique: std::collections::BTreeSet<_> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "{}", p.name);
            assert_eq!(tensors.get(graph.inputs().unwrap().get(0) as usize).name(), Some(INPUT));
            let out = tensors.get(graph.outputs().unwrap().get(0) as usize);
            assert_eq!(out.name(), Some(LOGITS));
            assert_eq!(out.shape().unwrap().iter().collect::<Vec<_>>(), vec![1, 1000]);
        }
    }

    #[test]
    fn every_op_output_belongs_to_the_layer_that_computes_it() {
        let p = spaces::presets::PRESETS.iter().find(|p| p.name == "fbnet-a").unwrap();
        let net = p.arch().network(Some(64));
        let weights = Weights::random(&net, 0);
        for q in [Quantization::default(), Quantization::of(Precision::Int8)] {
            let (bytes, map) = network_model_mapped(&net, &weights, &q).unwrap();
            assert_eq!(bytes, network_model_as(&net, &weights, &q).unwrap(), "the same file");
            let layer_of: std::collections::HashMap<&str, usize> = map.iter().map(|(n, l)| (n.as_str(), *l)).collect();
            let model = tract_tflite::tflite::root_as_model(&bytes).unwrap();
            let graph = model.subgraphs().unwrap().get(0);
            let tensors = graph.tensors().unwrap();
            let mut seen = std::collections::BTreeSet::new();
            for op in graph.operators().unwrap() {
                let out = tensors.get(op.outputs().unwrap().get(0) as usize).name().unwrap();
                if out == INPUT || out == format!("{INPUT}.int8") {
                    continue;
                }
                let l = *layer_of.get(out).unwrap_or_else(|| panic!("{out} has no layer"));
                // Ops are named after their layer (the IR layer name is every node name's prefix).
                assert!(
                    out.starts_with(&net.layers[l].name) || out.starts_with(LOGITS),
                    "{out} in {}",
                    net.layers[l].name
                );
                seen.insert(l);
            }
            // Every layer that lowers to ops has some (identity and dropout lower to none).
            let with_ops = net
                .layers
                .iter()
                .enumerate()
                .filter(|(_, l)| !matches!(l.op, spaces::ir::Op::Identity | spaces::ir::Op::Dropout { .. }));
            assert_eq!(seen, with_ops.map(|(i, _)| i).collect());
            assert!(!layer_of.contains_key(INPUT));
            assert_eq!(layer_of[LOGITS], net.layers.len() - 1);
        }
    }

    #[test]
    fn same_padding_matches_pytorch_only_where_it_is_symmetric() {
        // Stride 1, odd kernel: TFLite pads k//2 on both sides like PyTorch.
        assert_eq!(same_pads(56, 5, 1), (2, 2));
        // Stride 2 on an even size: TFLite pads (0, 1), PyTorch (1, 1).
        assert_eq!(same_pads(224, 3, 2), (0, 1));
        // Stride 2 on an odd size: both pad (1, 1).
        assert_eq!(same_pads(7, 3, 2), (1, 1));
        assert_eq!(same_pads(14, 1, 2), (0, 0));
    }
}
