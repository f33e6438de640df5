"""Checks model files written by latency::modelfile (called by latency/tests/modelfile_*.rs).

    modelfile_check.py networks DIR   DIR/manifest.json lists {name, tflite, onnx, network, weights}:
        each TFLite runs in ai-edge-litert, each ONNX passes onnx.checker and runs in
        onnxruntime, both on the same input (NHWC vs NCHW); their logits must agree with
        each other and with a float64 numpy forward pass written from the IR JSON alone
        (PyTorch semantics), so a lowering mistake shared by both writers is caught too.
    modelfile_check.py layers DIR     DIR/manifest.json lists {tflite, input, output}: each
        single-layer model loads, has the declared shapes, runs, and gives finite output.

Prints one line per model and exits 1 if any check fails.
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np

TOL = 1e-4


def load_safetensors(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype="<f4").astype(np.float64).reshape(info["shape"])
    return out


# ---- numpy reference (NCHW without batch, float64), following the PyTorch modules ----


def act(x, kind):
    if kind == "none":
        return x
    if kind == "relu":
        return np.maximum(x, 0)
    if kind == "relu6":
        return np.clip(x, 0, 6)
    if kind == "hswish":
        return x * np.clip(x + 3, 0, 6) / 6
    raise ValueError(kind)


def conv(x, w, stride, groups, bias=None):
    """PyTorch Conv2d with padding k//2."""
    c, h, wd = x.shape
    o, cg, k, _ = w.shape
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    ho, wo = (h + 2 * p - k) // stride + 1, (wd + 2 * p - k) // stride + 1
    og = o // groups
    out = np.zeros((groups, og, ho, wo))
    wg = w.reshape(groups, og, cg, k, k)
    for dy in range(k):
        for dx in range(k):
            patch = xp[:, dy : dy + stride * (ho - 1) + 1 : stride, dx : dx + stride * (wo - 1) + 1 : stride]
            out += np.einsum("goc,gchw->gohw", wg[:, :, :, dy, dx], patch.reshape(groups, cg, ho, wo))
    out = out.reshape(o, ho, wo)
    if bias is not None:
        out += bias[:, None, None]
    return out


def bn(x, t, prefix, eps):
    g, b, m, v = (t[f"{prefix}.{n}"] for n in ("weight", "bias", "running_mean", "running_var"))
    return (x - m[:, None, None]) / np.sqrt(v[:, None, None] + eps) * g[:, None, None] + b[:, None, None]


def se(x, t, n, spec):
    s = x.mean(axis=(1, 2))
    r = act(t[f"{n}.se.reduce.weight"][:, :, 0, 0] @ s + t[f"{n}.se.reduce.bias"], spec["act"])
    e = t[f"{n}.se.expand.weight"][:, :, 0, 0] @ r + t[f"{n}.se.expand.bias"]
    gate = 1 / (1 + np.exp(-e)) if spec["gate"] == "sigmoid" else np.clip(e + 3, 0, 6) / 6
    return x * gate[:, None, None]


def avg_pool_ceil(x, s):
    """AvgPool2d(s, s, ceil_mode=True): windows past the edge average only input pixels."""
    c, h, w = x.shape
    ho, wo = -(-h // s), -(-w // s)
    padded = np.zeros((c, ho * s, wo * s))
    count = np.zeros((1, ho * s, wo * s))
    padded[:, :h, :w] = x
    count[:, :h, :w] = 1
    pool = lambda a: a.reshape(a.shape[0], ho, s, wo, s).sum(axis=(2, 4))
    return pool(padded) / pool(count)


def shortcut(kind, stride, x, y):
    if kind == "none":
        return y
    if kind == "identity" or stride == 1:
        return y + x
    return y + avg_pool_ceil(x, stride)


def reference(net, t, x):
    eps = net["bn_eps"]
    for layer in net["layers"]:
        n, op = layer["name"], layer["op"]
        if op == "conv":
            y = conv(x, t[f"{n}.conv.weight"], layer["stride"], layer["groups"], t.get(f"{n}.conv.bias"))
            if layer["bn"]:
                y = bn(y, t, f"{n}.bn", eps)
            y = act(y, layer["act"])
            if layer["se"]:
                y = se(y, t, n, layer["se"])
            x = shortcut(layer["shortcut"], layer["stride"], x, y)
        elif op == "mb_conv":
            h, g = x, layer["groups"]
            if layer["expand"]:
                h = act(bn(conv(h, t[f"{n}.expand.conv.weight"], 1, g), t, f"{n}.expand.bn", eps), layer["act"])
            if layer["shuffle"] and g > 1:
                c, hh, ww = h.shape
                h = h.reshape(g, c // g, hh, ww).transpose(1, 0, 2, 3).reshape(c, hh, ww)
            h = conv(h, t[f"{n}.dw.conv.weight"], layer["stride"], layer["mid"])
            h = act(bn(h, t, f"{n}.dw.bn", eps), layer["act"])
            if layer["se"]:
                h = se(h, t, n, layer["se"])
            h = bn(conv(h, t[f"{n}.project.conv.weight"], 1, g), t, f"{n}.project.bn", eps)
            x = shortcut(layer["shortcut"], layer["stride"], x, h)
        elif op == "global_avg_pool":
            x = x.mean(axis=(1, 2), keepdims=True)
        elif op == "linear":
            y = t[f"{n}.weight"] @ x.reshape(-1)
            if layer["bias"]:
                y = y + t[f"{n}.bias"]
            x = act(y, layer["act"]).reshape(-1, 1, 1)
        elif op in ("identity", "dropout"):
            pass
        else:
            raise ValueError(f"unknown op {op}")
    return x.reshape(-1)


def run_litert(path, x_nhwc):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    assert inp["name"] == "input" and list(inp["shape"]) == list(x_nhwc.shape), inp
    it.set_tensor(inp["index"], x_nhwc)
    it.invoke()
    return out["name"], it.get_tensor(out["index"])


def networks(root):
    import onnx
    import onnxruntime as ort

    failures = 0
    for case in json.loads((root / "manifest.json").read_text()):
        net = json.loads((root / case["network"]).read_text())
        t = load_safetensors(root / case["weights"])
        shape = net["input"]
        x = np.random.default_rng(0).standard_normal((1, shape["c"], shape["h"], shape["w"])).astype(np.float32)

        out_name, lite = run_litert(root / case["tflite"], np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
        model = onnx.load(str(root / case["onnx"]))
        onnx.checker.check_model(model, full_check=True)
        sess = ort.InferenceSession(str(root / case["onnx"]), providers=["CPUExecutionProvider"])
        (onnx_out,) = sess.run(["logits"], {"input": x})
        ref = reference(net, t, x[0].astype(np.float64))

        lite, onnx_out = lite.reshape(-1), onnx_out.reshape(-1)
        d_rt = float(np.abs(lite - onnx_out).max())
        d_ref = max(float(np.abs(lite - ref).max()), float(np.abs(onnx_out - ref).max()))
        ok = out_name == "logits" and lite.shape == ref.shape and d_rt < TOL and d_ref < TOL
        failures += not ok
        print(
            f"{'ok  ' if ok else 'FAIL'} {case['name']}: {ref.size} logits, max|logit| {np.abs(ref).max():.3f}, "
            f"litert-vs-onnxruntime {d_rt:.2e}, runtimes-vs-numpy {d_ref:.2e}"
        )
    return failures


def layers(root):
    from ai_edge_litert.interpreter import Interpreter

    failures = 0
    cases = json.loads((root / "manifest.json").read_text())
    for case in cases:
        try:
            it = Interpreter(model_path=str(root / case["tflite"]))
            it.allocate_tensors()
            (inp,), (out,) = it.get_input_details(), it.get_output_details()
            assert list(inp["shape"]) == case["input"], f"input shape {inp['shape']} != {case['input']}"
            assert list(out["shape"]) == case["output"], f"output shape {out['shape']} != {case['output']}"
            x = np.random.default_rng(1).standard_normal(case["input"]).astype(np.float32)
            it.set_tensor(inp["index"], x)
            it.invoke()
            y = it.get_tensor(out["index"])
            assert np.isfinite(y).all(), "non-finite output"
        except Exception as e:  # report every failing layer, not just the first
            failures += 1
            print(f"FAIL {case['tflite']} ({case['key']}): {e}")
    print(f"{len(cases) - failures}/{len(cases)} single-layer models ran")
    return failures


if __name__ == "__main__":
    mode, root = sys.argv[1], Path(sys.argv[2])
    failed = {"networks": networks, "layers": layers}[mode](root)
    sys.exit(1 if failed else 0)
