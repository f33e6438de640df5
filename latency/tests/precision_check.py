"""Checks fp16 and int8 model files written by latency::modelfile (called by
latency/tests/modelfile_precision.rs).

    precision_check.py models DIR   DIR/manifest.json lists {name, kind, input (NCHW),
        tflite_fp32, tflite_fp16, tflite_int8, onnx_fp32, onnx_fp16, onnx_int8[, tflite_int8io]}.

For each model:
  - it loads and runs in ai-edge-litert (TFLite; with the default XNNPACK delegate and,
    on one input, with TFLite's builtin kernels alone) or onnxruntime (ONNX, after
    onnx.checker);
  - its weights have the dtype claimed, read back from the file: fp16 weights and
    biases are FLOAT16 constants feeding a DEQUANTIZE (TFLite) or Cast (ONNX); int8
    conv weights are int8 with one scale per output channel (quantized_dimension 0
    for CONV_2D OHWI, 3 for DEPTHWISE_CONV_2D [1,k,k,C]; ONNX DequantizeLinear axis 0),
    fully connected weights int8 per tensor, all weight zero points 0, biases int32 at
    scale input_scale * weight_scale, and every conv/FC input int8;
  - its output agrees with the fp32 model of the same format on standard normal
    inputs (the calibration distribution): fp16 to cosine >= 0.9999 and a max error
    under 1% of the output's range; int8 to cosine >= 0.99 (the minimum over the
    inputs). For networks the top-1 agreement with fp32 is printed as well.

Prints one line per model (and a JSON summary line per network, "SUMMARY {...}")
and exits 1 if any check fails.
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from onnx import numpy_helper

COS_INT8 = 0.99
COS_FP16 = 0.9999
REL_FP16 = 1e-2
NETWORK_INPUTS = 32
LAYER_INPUTS = 2


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    return float(a @ b / (na * nb + 1e-30))


# ---- TFLite ----


def tfl_load(path):
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    return it


def tfl_run(it, x):
    """Runs one NCHW float input; returns the float output (NCHW or vector)."""
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    if x.ndim == 4:
        x = x.transpose(0, 2, 3, 1)
    if inp["dtype"] == np.int8:
        s, z = inp["quantization"]
        x = np.clip(np.round(x / s) + z, -128, 127).astype(np.int8)
    it.set_tensor(inp["index"], x.astype(inp["dtype"]))
    it.invoke()
    y = it.get_tensor(out["index"])
    if out["dtype"] == np.int8:
        s, z = out["quantization"]
        y = (y.astype(np.float32) - z) * s
    if y.ndim == 4:
        y = y.transpose(0, 3, 1, 2)
    return y.astype(np.float32)


def tfl_check_weights(path, precision, int8_io=False):
    """Returns a list of problems with the weight tensors of the model at `path`,
    and the number of weighted ops. Read without the XNNPACK delegate, which
    rewrites per-tensor FULLY_CONNECTED scales into per-channel ones when it
    takes over a model: what is checked is the file's own quantization."""
    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    ops = it._get_ops_details()
    producer = {o: op for op in ops for o in op["outputs"]}
    problems = []
    n_weights = 0
    for op in ops:
        kind = op["op_name"]
        if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        n_weights += 1
        x, w, b = (tensors[i] for i in op["inputs"][:3])
        where = f"{kind} {w['name']}"
        if precision == "fp16":
            for t in (w, b):
                p = producer.get(t["index"])
                src = tensors[p["inputs"][0]] if p else None
                if not p or p["op_name"] != "DEQUANTIZE" or src["dtype"] != np.float16:
                    problems.append(f"{where}: {t['name']} is not a DEQUANTIZEd float16 constant")
        elif precision == "int8":
            q = w["quantization_parameters"]
            scales, zps, dim = q["scales"], q["zero_points"], q["quantized_dimension"]
            shape = w["shape"]
            want = {"CONV_2D": lambda: (shape[0], 0), "DEPTHWISE_CONV_2D": lambda: (shape[3], 3)}.get(kind, lambda: (1, 0))()
            if w["dtype"] != np.int8:
                problems.append(f"{where}: weight dtype {w['dtype']}")
            if (len(scales), dim) != want:
                problems.append(f"{where}: {len(scales)} scales on dimension {dim}, want {want}")
            if np.any(zps != 0):
                problems.append(f"{where}: nonzero weight zero points")
            if x["dtype"] != np.int8:
                problems.append(f"{where}: input dtype {x['dtype']}")
            if b["dtype"] != np.int32:
                problems.append(f"{where}: bias dtype {b['dtype']}")
            else:
                x_scale = x["quantization_parameters"]["scales"][0]
                bs = b["quantization_parameters"]["scales"]
                if len(bs) != len(scales) or not np.allclose(bs, x_scale * scales, rtol=1e-5):
                    problems.append(f"{where}: bias scales are not input_scale * weight_scale")
    if precision != "fp32":
        # Activations: float32 around float compute (fp16), int8 inside an int8 model.
        io = {it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]}
        for t in tensors.values():
            if precision == "int8" and t["dtype"] == np.float32 and (int8_io or t["index"] not in io):
                problems.append(f"float32 tensor {t['name']} in an int8 model")
            if precision == "fp16" and t["dtype"] == np.int8:
                problems.append(f"int8 tensor {t['name']} in an fp16 model")
    return problems, n_weights, it


# ---- ONNX ----


def onnx_load(path):
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return m, ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def onnx_run(sess, x):
    return sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0].astype(np.float32)


def onnx_check_weights(m, precision):
    inits = {t.name: t for t in m.graph.initializer}
    producer = {o: n for n in m.graph.node for o in n.output}
    problems = []
    n_weights = 0
    for node in m.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        n_weights += 1
        for role, name in zip(("weight", "bias"), node.input[1:3]):
            p = producer.get(name)
            where = f"{node.op_type} {node.name} {role}"
            if precision == "fp16":
                src = inits.get(p.input[0]) if p is not None and p.op_type == "Cast" else None
                if src is None or src.data_type != onnx.TensorProto.FLOAT16:
                    problems.append(f"{where}: not a Cast float16 initializer")
            elif precision == "int8":
                if p is None or p.op_type != "DequantizeLinear":
                    problems.append(f"{where}: not DequantizeLinear output")
                    continue
                src, scale = inits.get(p.input[0]), inits.get(p.input[1])
                want_type = onnx.TensorProto.INT8 if role == "weight" else onnx.TensorProto.INT32
                if src is None or src.data_type != want_type:
                    problems.append(f"{where}: not a {onnx.TensorProto.DataType.Name(want_type)} initializer")
                    continue
                n_scales = numpy_helper.to_array(scale).size
                out_ch = src.dims[0]
                axis = next((a.i for a in p.attribute if a.name == "axis"), 1)
                if node.op_type == "Conv" and (n_scales != out_ch or axis != 0):
                    problems.append(f"{where}: {n_scales} scales on axis {axis}, want {out_ch} on 0")
                if node.op_type == "Gemm" and n_scales != 1:
                    problems.append(f"{where}: {n_scales} scales, want one (per tensor)")
                if len(p.input) > 2 and np.any(numpy_helper.to_array(inits[p.input[2]]) != 0):
                    problems.append(f"{where}: nonzero zero points")
        if precision == "int8":
            x = producer.get(node.input[0])
            if x is None or x.op_type != "DequantizeLinear":
                problems.append(f"{node.op_type} {node.name}: input is not dequantized int8")
    return problems, n_weights


def main():
    mode, d = sys.argv[1], Path(sys.argv[2])
    assert mode == "models", mode
    manifest = json.loads((d / "manifest.json").read_text())
    rng = np.random.default_rng(123)
    failed = []
    for entry in manifest:
        name, shape = entry["name"], entry["input"]
        n = NETWORK_INPUTS if entry["kind"] == "network" else LAYER_INPUTS
        xs = [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]
        for fmt in ("tflite", "onnx"):
            try:
                if fmt == "tflite":
                    models = {t: tfl_load(d / entry[f"tflite_{t}"]) for t in ("fp32", "fp16", "int8")}
                    run = tfl_run
                else:
                    loaded = {t: onnx_load(d / entry[f"onnx_{t}"]) for t in ("fp32", "fp16", "int8")}
                    models = {t: s for t, (_, s) in loaded.items()}
                    run = onnx_run
                ref = [run(models["fp32"], x) for x in xs]
                line = [f"{fmt:6} {name}"]
                summary = {"name": name, "format": fmt}
                for prec in ("fp16", "int8"):
                    if fmt == "tflite":
                        problems, n_w, plain = tfl_check_weights(d / entry[f"tflite_{prec}"], prec)
                        # TFLite's own (reference / optimized builtin) kernels, not XNNPACK, must agree too.
                        c = cosine(tfl_run(plain, xs[0]), ref[0])
                        if c < (COS_FP16 if prec == "fp16" else COS_INT8):
                            problems.append(f"builtin kernels (no XNNPACK) disagree with fp32: cosine {c:.5f}")
                    else:
                        problems, n_w = onnx_check_weights(loaded[prec][0], prec)
                    ys = [run(models[prec], x) for x in xs]
                    if not all(np.all(np.isfinite(y)) for y in ys):
                        problems.append("non-finite output")
                    if any(y.shape != r.shape for y, r in zip(ys, ref)):
                        problems.append(f"output shape {ys[0].shape} vs fp32 {ref[0].shape}")
                        cos = 0.0
                    else:
                        cos = min(cosine(y, r) for y, r in zip(ys, ref))
                    summary[f"{prec}_cosine"] = round(cos, 5)
                    line.append(f"{prec}: {n_w} weighted ops, cos {cos:.5f}")
                    if prec == "fp16":
                        err = max(np.abs(y - r).max() / (np.abs(r).max() + 1e-12) for y, r in zip(ys, ref))
                        summary["fp16_rel_err"] = float(f"{err:.2e}")
                        line.append(f"rel err {err:.1e}")
                        if cos < COS_FP16 or err > REL_FP16:
                            problems.append(f"fp16 disagrees with fp32: cosine {cos:.6f}, rel err {err:.2e}")
                    elif cos < COS_INT8:
                        problems.append(f"int8 disagrees with fp32: cosine {cos:.5f} < {COS_INT8}")
                    if entry["kind"] == "network":
                        top1 = np.mean([np.argmax(y) == np.argmax(r) for y, r in zip(ys, ref)])
                        summary[f"{prec}_top1"] = float(top1)
                        line.append(f"top-1 {top1:.2f}")
                    for p in problems:
                        failed.append(f"{fmt} {name} {prec}: {p}")
                if fmt == "tflite" and "tflite_int8io" in entry:
                    it = tfl_load(d / entry["tflite_int8io"])
                    i, o = it.get_input_details()[0], it.get_output_details()[0]
                    problems, _, _ = tfl_check_weights(d / entry["tflite_int8io"], "int8", int8_io=True)
                    if i["dtype"] != np.int8 or o["dtype"] != np.int8:
                        problems.append(f"int8 I/O model has {i['dtype']} -> {o['dtype']}")
                    cos = min(cosine(tfl_run(it, x), r) for x, r in zip(xs, ref))
                    summary["int8io_cosine"] = round(cos, 5)
                    line.append(f"int8 I/O: cos {cos:.5f}")
                    if cos < COS_INT8:
                        problems.append(f"int8 I/O disagrees with fp32: cosine {cos:.5f}")
                    failed.extend(f"tflite {name} int8io: {p}" for p in problems)
                print("; ".join(line), flush=True)
                if entry["kind"] == "network":
                    print("SUMMARY " + json.dumps(summary), flush=True)
            except Exception as e:  # noqa: BLE001 - report every model, then fail
                failed.append(f"{fmt} {name}: {type(e).__name__}: {e}")
                print(f"{fmt:6} {name}: FAILED {type(e).__name__}: {e}", flush=True)
    for f in failed:
        print("FAIL", f)
    print(f"{len(manifest)} models, {len(failed)} failures")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
