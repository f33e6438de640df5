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

use super::graph::{ConvStep, Dims, Graph, Step, Value};
use super::{ModelFileError, Precision, Quantization};
use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};
use spaces::ir::{Act, Gate, Layer, Network, Weights};
use tract_tflite::tflite::{
    ActivationFunctionType, AddOptions, AddOptionsArgs, Buffer, BufferArgs, BuiltinOperator, BuiltinOptions,
    ConcatenationOptions, ConcatenationOptionsArgs, Conv2DOptions, Conv2DOptionsArgs, DepthwiseConv2DOptions,
    DepthwiseConv2DOptionsArgs, FullyConnectedOptions, FullyConnectedOptionsArgs, FullyConnectedOptionsWeightsFormat,
    Model, ModelArgs, MulOptions, MulOptionsArgs, Operator, OperatorArgs, OperatorCode, OperatorCodeArgs, Padding,
    Pool2DOptions, Pool2DOptionsArgs, ReducerOptions, ReducerOptionsArgs, ReshapeOptions, ReshapeOptionsArgs, SubGraph,
    SubGraphArgs, Tensor, TensorArgs, TensorType,
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
        p => Err(unsupported(p, "hwnas network")),
    }
}

/// A model of `layer` alone (random weights from `seed`) in the precision `q` asks
/// for; fp32 is exactly [`layer_model`]. Errors instead of panicking.
pub fn layer_model_as(layer: &Layer, seed: u64, q: &Quantization) -> Result<Vec<u8>, ModelFileError> {
    let net = Network { input: layer.input, layers: vec![layer.clone()], bn_eps: 1e-5 };
    let graph = Graph::lower(&net, &Weights::random_layer(layer, seed))?;
    match q.precision {
        Precision::Fp32 => write(&graph, OUTPUT, &layer.key()),
        p => Err(unsupported(p, &layer.name)),
    }
}

fn unsupported(p: Precision, what: &str) -> ModelFileError {
    ModelFileError::Unsupported { format: "TFLite", why: format!("{what}: {p} is not written yet") }
}

/// The TFLite model of `graph`, its output tensor named `output_name`.
pub fn write(graph: &Graph, output_name: &str, description: &str) -> Result<Vec<u8>, ModelFileError> {
    let mut w = Writer::new();
    let input = w.activation(INPUT, &nhwc(graph.dims(0)));
    let mut tensors = vec![input];
    for (i, node) in graph.nodes.iter().enumerate() {
        let value: Value = i + 1;
        let name = if value == graph.output { output_name } else { node.name.as_str() };
        let xs: Vec<i32> = node.inputs.iter().map(|&v| tensors[v]).collect();
        let out_shape = nhwc(node.dims);
        let in_dims = graph.dims(node.inputs[0]);
        let t = match &node.step {
            Step::Conv(c) => w.conv(&node.name, name, c, xs[0], in_dims, &out_shape)?,
            Step::GlobalMean => {
                let axes = w.const_i32(&format!("{}.axes", node.name), &[2], &[1, 2]);
                let y = w.activation(name, &out_shape);
                let opts = ReducerOptions::create(&mut w.fb, &ReducerOptionsArgs { keep_dims: true });
                w.op(BuiltinOperator::MEAN, &[xs[0], axes], y, BuiltinOptions::ReducerOptions, opts.as_union_value());
                y
            }
            Step::Gate(Gate::Sigmoid) => {
                let y = w.activation(name, &out_shape);
                w.plain_op(BuiltinOperator::LOGISTIC, &[xs[0]], y);
                y
            }
            Step::Gate(Gate::HSigmoid) => {
                let three = w.const_f32(&format!("{}.three", node.name), &[1], &[3.0]);
                let shifted = w.activation(&format!("{}.relu6", node.name), &out_shape);
                w.add(xs[0], three, shifted, ActivationFunctionType::RELU6);
                let sixth = w.const_f32(&format!("{}.sixth", node.name), &[1], &[1.0 / 6.0]);
                let y = w.activation(name, &out_shape);
                w.mul(shifted, sixth, y);
                y
            }
            Step::Mul => {
                let y = w.activation(name, &out_shape);
                w.mul(xs[0], xs[1], y);
                y
            }
            Step::Add => {
                let y = w.activation(name, &out_shape);
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
                let y = w.activation(name, &out_shape);
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
                let split = w.reshape(&format!("{}.split", node.name), xs[0], &[1, hw, g, per]);
                let perm = w.const_i32(&format!("{}.perm", node.name), &[4], &[0, 1, 3, 2]);
                let swapped = w.activation(&format!("{}.swapped", node.name), &[1, hw, per, g]);
                w.plain_op(BuiltinOperator::TRANSPOSE, &[split, perm], swapped);
                w.reshape(name, swapped, &out_shape)
            }
            Step::Linear { weight, bias, out, act } => {
                let cin = in_dims.channels() as i32;
                // FULLY_CONNECTED flattens its input itself, but tract insists on rank 2.
                let x = match in_dims {
                    Dims::Map(_) => w.reshape(&format!("{}.flatten", node.name), xs[0], &[1, cin]),
                    Dims::Vector(_) => xs[0],
                };
                let wt = w.const_f32(&format!("{}.weight", node.name), &[*out as i32, cin], weight);
                let b = w.const_f32(&format!("{}.bias", node.name), &[*out as i32], bias);
                let (fused, hswish) = split_act(*act);
                let pre_act = format!("{}.linear", node.name);
                let y = w.activation(if hswish { &pre_act } else { name }, &out_shape);
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
                    w.hard_swish(y, name, &out_shape)
                } else {
                    y
                }
            }
        };
        tensors.push(t);
    }
    Ok(w.finish(input, tensors[graph.output], description))
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
}

impl<'a> Writer<'a> {
    fn new() -> Self {
        let mut fb = FlatBufferBuilder::new();
        // Buffer 0 is the empty sentinel that non-constant tensors point to.
        let sentinel = Buffer::create(&mut fb, &BufferArgs { data: None });
        Writer { fb, buffers: vec![sentinel], tensors: Vec::new(), operators: Vec::new(), codes: Vec::new() }
    }

    fn tensor(&mut self, name: &str, shape: &[i32], type_: TensorType, data: Option<&[u8]>) -> i32 {
        let buffer = match data {
            Some(bytes) => {
                let data = self.fb.create_vector(bytes);
                self.buffers.push(Buffer::create(&mut self.fb, &BufferArgs { data: Some(data) }));
                self.buffers.len() as u32 - 1
            }
            None => 0,
        };
        let shape = self.fb.create_vector(shape);
        let name = self.fb.create_string(name);
        let args =
            TensorArgs { shape: Some(shape), type_, buffer, name: Some(name), has_rank: true, ..Default::default() };
        self.tensors.push(Tensor::create(&mut self.fb, &args));
        self.tensors.len() as i32 - 1
    }

    fn activation(&mut self, name: &str, shape: &[i32]) -> i32 {
        self.tensor(name, shape, TensorType::FLOAT32, None)
    }

    fn const_f32(&mut self, name: &str, shape: &[i32], data: &[f32]) -> i32 {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, shape, TensorType::FLOAT32, Some(&bytes))
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

    fn hard_swish(&mut self, x: i32, name: &str, shape: &[i32]) -> i32 {
        let y = self.activation(name, shape);
        self.plain_op(BuiltinOperator::HARD_SWISH, &[x], y);
        y
    }

    fn reshape(&mut self, name: &str, x: i32, shape: &[i32]) -> i32 {
        let target = self.const_i32(&format!("{name}.shape"), &[shape.len() as i32], shape);
        let y = self.activation(name, shape);
        let new_shape = self.fb.create_vector(shape);
        let opts = ReshapeOptions::create(&mut self.fb, &ReshapeOptionsArgs { new_shape: Some(new_shape) });
        self.op(BuiltinOperator::RESHAPE, &[x, target], y, BuiltinOptions::ReshapeOptions, opts.as_union_value());
        y
    }

    /// A folded conv on `x`: an explicit PAD where TFLite's SAME would pad differently
    /// from PyTorch, then CONV_2D, DEPTHWISE_CONV_2D or per-group CONV_2Ds.
    fn conv(
        &mut self,
        node: &str,
        name: &str,
        c: &ConvStep,
        x: i32,
        in_dims: Dims,
        out_shape: &[i32],
    ) -> Result<i32, ModelFileError> {
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
            let padded = self.activation(&format!("{node}.padded"), &padded_shape);
            self.plain_op(BuiltinOperator::PAD, &[x, pads], padded);
            (padded, Padding::VALID)
        };
        let (fused, hswish) = split_act(c.act);
        let pre_act = format!("{node}.conv");
        let conv_name = if hswish { pre_act.as_str() } else { name };
        let (k, cin, out) = (c.kernel as usize, s.c as usize, c.out as usize);
        let y = if c.groups == 1 {
            self.conv2d(node, conv_name, x, &c.weight, out, k, cin, &c.bias, c.stride, padding, fused, out_shape)
        } else if c.groups as usize == cin && c.weight.len() == out * k * k {
            // Depthwise: PyTorch [out, 1, k, k] -> TFLite [1, k, k, out].
            let mut wt = vec![0.0f32; out * k * k];
            for o in 0..out {
                for yx in 0..k * k {
                    wt[yx * out + o] = c.weight[o * k * k + yx];
                }
            }
            let wt = self.const_f32(&format!("{node}.weight"), &[1, k as i32, k as i32, out as i32], &wt);
            let b = self.const_f32(&format!("{node}.bias"), &[out as i32], &c.bias);
            let y = self.activation(conv_name, out_shape);
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
            self.group_conv(node, conv_name, c, x, s, p, padding, fused, out_shape)
        };
        Ok(if hswish { self.hard_swish(y, name, out_shape) } else { y })
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
    ) -> i32 {
        let mut wt = vec![0.0f32; out * k * k * cin];
        for o in 0..out {
            for i in 0..cin {
                for yx in 0..k * k {
                    wt[(o * k * k + yx) * cin + i] = weight[(o * cin + i) * k * k + yx];
                }
            }
        }
        let wt = self.const_f32(&format!("{prefix}.weight"), &[out as i32, k as i32, k as i32, cin as i32], &wt);
        let b = self.const_f32(&format!("{prefix}.bias"), &[out as i32], bias);
        let y = self.activation(name, out_shape);
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
    ) -> i32 {
        let (g, k) = (c.groups as usize, c.kernel as usize);
        let (cin, out) = (s.c as usize / g, c.out as usize / g);
        let (h, w) = ((s.h + 2 * pad) as i32, (s.w + 2 * pad) as i32);
        let part_shape = [out_shape[0], out_shape[1], out_shape[2], out as i32];
        let mut parts = Vec::with_capacity(g);
        for i in 0..g {
            let begin = self.const_i32(&format!("{node}.g{i}.begin"), &[4], &[0, 0, 0, (i * cin) as i32]);
            let size = self.const_i32(&format!("{node}.g{i}.size"), &[4], &[1, h, w, cin as i32]);
            let slice = self.activation(&format!("{node}.g{i}.input"), &[1, h, w, cin as i32]);
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
            ));
        }
        let y = self.activation(name, out_shape);
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
