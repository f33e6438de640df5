"""Runs exported models in the real runtimes: LiteRT (TFLite) and onnxruntime (+ onnx.checker).

argv: INPUT.f32 (raw NCHW float32 [1,3,R,R]) RESOLUTION OUT.json MODEL_STEM...
Writes {stem: {"tflite": [...], "onnx": [...]}} with the logits of each runtime.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from ai_edge_litert.interpreter import Interpreter

inp_path, res, out_path, stems = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
x = np.fromfile(inp_path, dtype=np.float32).reshape(1, 3, res, res)
out = {}
for stem in stems:
    it = Interpreter(model_path=stem + ".tflite")
    it.allocate_tensors()
    (i,), (o,) = it.get_input_details(), it.get_output_details()
    it.set_tensor(i["index"], np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    it.invoke()
    tfl = it.get_tensor(o["index"]).reshape(-1)
    onnx.checker.check_model(onnx.load(stem + ".onnx"), full_check=True)
    sess = ort.InferenceSession(stem + ".onnx", providers=["CPUExecutionProvider"])
    onx = sess.run(None, {sess.get_inputs()[0].name: x})[0].reshape(-1)
    out[stem] = {"tflite": tfl.tolist(), "onnx": onx.tolist()}
json.dump(out, open(out_path, "w"))
