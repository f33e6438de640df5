"""Runs `hwnas export --precision` files in LiteRT and onnxruntime against their fp32 file.

argv: RESOLUTION OUT.json REF.tflite REF.onnx MODEL...   (MODEL: .tflite or .onnx)
For each MODEL writes {path: {"input_dtype", "cosine" (minimum over 8 standard normal
inputs, the logits against the fp32 file of the same format), "top1" (agreement)}}.
Int8 inputs/outputs are (de)quantized with the parameters the file holds.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def tflite(path):
    # Without the XNNPACK delegate: the reference kernels run the file as written.
    it = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    (i,), (o,) = it.get_input_details(), it.get_output_details()

    def run(x):
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        if i["dtype"] == np.int8:
            s, z = i["quantization"]
            x = np.clip(np.round(x / s + z), -128, 127).astype(np.int8)
        it.set_tensor(i["index"], x)
        it.invoke()
        y = it.get_tensor(o["index"]).reshape(-1)
        if o["dtype"] == np.int8:
            s, z = o["quantization"]
            y = (y.astype(np.float32) - z) * s
        return y

    return run, str(np.dtype(i["dtype"]))


def onnxrt(path):
    onnx.checker.check_model(onnx.load(path), full_check=True)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    dtype = {"tensor(float)": "float32", "tensor(int8)": "int8"}[inp.type]

    def run(x):
        if dtype == "int8":
            raise SystemExit(f"{path}: int8 ONNX inputs are not checked here")
        return sess.run(None, {inp.name: x})[0].reshape(-1)

    return run, dtype


res, out_path, ref_tfl, ref_onnx, models = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
rng = np.random.default_rng(0)
xs = [rng.standard_normal((1, 3, res, res)).astype(np.float32) for _ in range(8)]
refs = {"tflite": tflite(ref_tfl)[0], "onnx": onnxrt(ref_onnx)[0]}
out = {}
for m in models:
    fmt = "tflite" if m.endswith(".tflite") else "onnx"
    run, dtype = tflite(m) if fmt == "tflite" else onnxrt(m)
    cos, top1 = [], 0
    for x in xs:
        a, b = refs[fmt](x), run(x)
        cos.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30)))
        top1 += int(a.argmax() == b.argmax())
    out[m] = {"input_dtype": dtype, "cosine": min(cos), "top1": top1 / len(xs)}
json.dump(out, open(out_path, "w"), indent=1)
