"""Independent checks of predictors::torch_file and the ofa-accuracy predictor, with Python's
own pickle module and numpy (no torch needed).

  torch_pickle.py zip SRC.pth OUT.pt [PROTOCOL] [--big] [--strided] [--nest]
      reads the legacy file SRC with a restricted Unpickler and writes its tensors as a
      zip-format torch file, pickled by Python's real Pickler the way torch.save does;
      --strided puts every tensor of one dtype in one shared storage, column-major at an
      offset (so offset/stride handling is exercised); --big writes big-endian data and a
      `byteorder` record; --nest wraps the dict as {"state_dict": ..., "epoch": 3}.
  torch_pickle.py hostile DIR
      writes DIR/global.pt (a zip whose data.pkl names posix.system) and DIR/opcode.pt
      (a data.pkl holding a set, opcode EMPTY_SET).
  torch_pickle.py ofa-forward ACC_PREDICTOR.pth SPECS.json OUT.json
      OFA's spec2feats (written here from ofa/tutorial/accuracy_predictor.py) and the
      Linear/ReLU stack in float64 numpy, for each {"ks","e","d","r"} in SPECS.
"""

import collections
import io
import json
import pickle
import struct
import sys
import types
import zipfile

import numpy as np

DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class Lazy:
    """A tensor whose storage data come after the pickle (legacy format)."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def resolve(self, data):
        arr = data[self.storage[0]]
        item = arr.itemsize
        view = np.lib.stride_tricks.as_strided(
            arr[self.offset :], shape=self.size, strides=tuple(s * item for s in self.stride)
        )
        return view.copy()  # (np.ascontiguousarray would turn a 0-d tensor into 1-d)


def _rebuild(storage, offset, size, stride, requires_grad, hooks, *metadata):
    return Lazy(storage, offset, size, stride)


class LegacyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in DTYPES:
            return name
        raise pickle.UnpicklingError(f"refusing {module}.{name}")

    def persistent_load(self, pid):
        tag, stype, key, location, numel, view = pid
        assert tag == "storage" and view is None
        return (key, stype, numel)


def read_legacy(path):
    """name -> numpy array, and whether the top object was {"state_dict": ...}."""
    with open(path, "rb") as f:
        assert pickle.load(f) == 0x1950A86A20F9469CFC6C
        pickle.load(f)
        sys_info = pickle.load(f)
        assert sys_info["little_endian"]
        u = LegacyUnpickler(f)
        obj = u.load()
        keys = pickle.load(f)
        sd = obj["state_dict"] if "state_dict" in obj else obj
        stypes = {}
        for v in sd.values():
            stypes[v.storage[0]] = v.storage[1]
        data = {}
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            dt = np.dtype(DTYPES[stypes[key]])
            data[key] = np.frombuffer(f.read(numel * dt.itemsize), dtype=dt)
    return collections.OrderedDict((k, v.resolve(data)) for k, v in sd.items())


# --- writing: a fake `torch` module so Pickler emits torch's global names -----------------
torch_mod = types.ModuleType("torch")
utils_mod = types.ModuleType("torch._utils")
torch_mod._utils = utils_mod
for _name in DTYPES:
    setattr(torch_mod, _name, type(_name, (), {"__module__": "torch"}))


def _rebuild_tensor_v2(*args):
    raise RuntimeError("only pickled, never called")


_rebuild_tensor_v2.__module__ = "torch._utils"
utils_mod._rebuild_tensor_v2 = _rebuild_tensor_v2
sys.modules["torch"] = torch_mod
sys.modules["torch._utils"] = utils_mod
STORAGE_OF = {np.dtype(v): k for k, v in DTYPES.items()}


class Storage:
    def __init__(self, key, array):
        self.key, self.array = key, array


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        args = (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict())
        return (_rebuild_tensor_v2, args)


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            stype = getattr(torch_mod, STORAGE_OF[obj.array.dtype])
            return ("storage", stype, obj.key, "cpu", obj.array.size)
        return None


def write_zip(tensors, out, protocol=2, big=False, strided=False, nest=False):
    storages, sd = [], collections.OrderedDict()
    if strided:
        pools = {}
        for name, a in tensors.items():
            pool = pools.setdefault(a.dtype, [np.zeros(3, a.dtype)])  # 3 unused leading elements
            offset = sum(p.size for p in pool)
            pool.append(a.ravel(order="F"))
            stride, acc = [], 1
            for n in a.shape:  # column-major
                stride.append(acc)
                acc *= n
            sd[name] = (a.dtype, offset, a.shape, tuple(stride))
        shared = {dt: Storage(str(i), np.concatenate(p)) for i, (dt, p) in enumerate(pools.items())}
        storages = list(shared.values())
        for name, (dt, offset, shape, stride) in sd.items():
            sd[name] = Tensor(shared[dt], offset, tuple(shape), stride)
    else:
        for i, (name, a) in enumerate(tensors.items()):
            s = Storage(str(i), a.ravel())
            storages.append(s)
            stride = tuple(x // a.itemsize for x in a.strides)  # a is C-contiguous
            sd[name] = Tensor(s, 0, tuple(a.shape), stride)
    obj = {"state_dict": sd, "epoch": 3} if nest else sd
    buf = io.BytesIO()
    TorchPickler(buf, protocol=protocol).dump(obj)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "big" if big else "little")
        for s in storages:
            a = s.array.astype(s.array.dtype.newbyteorder(">")) if big else s.array
            z.writestr(f"archive/data/{s.key}", a.tobytes())
        z.writestr("archive/version", "3\n")


def hostile(d):
    import os

    for name, obj in [("global.pt", {"x": os.system}), ("opcode.pt", {"x": {1, 2}})]:
        with zipfile.ZipFile(f"{d}/{name}", "w", zipfile.ZIP_STORED) as z:
            z.writestr("archive/data.pkl", pickle.dumps(obj, protocol=4))


# --- OFA's accuracy predictor --------------------------------------------------------------
KS_MAP = {3: 0, 5: 1, 7: 2}
EX_MAP = {3: 0, 4: 1, 6: 2}


def spec2feats(ks, ex, d, r):
    ks, ex = list(ks), list(ex)
    for stage, depth in enumerate(d):
        for j in range(stage * 4 + depth, stage * 4 + 4):
            ks[j] = ex[j] = 0
    ks_onehot, ex_onehot, r_onehot = np.zeros(60), np.zeros(60), np.zeros(8)
    for i in range(20):
        if ks[i]:
            ks_onehot[3 * i + KS_MAP[ks[i]]] = 1
        if ex[i]:
            ex_onehot[3 * i + EX_MAP[ex[i]]] = 1
    r_onehot[(r - 112) // 16] = 1
    return np.concatenate([ks_onehot, ex_onehot, r_onehot])


def ofa_forward(pth, specs_json, out):
    sd = read_legacy(pth)
    layers = [(sd[f"{i}.weight"].astype(np.float64), sd[f"{i}.bias"].astype(np.float64)) for i in (0, 2, 4, 6)]
    preds = []
    for s in json.load(open(specs_json)):
        h = spec2feats(s["ks"], s["e"], s["d"], s["r"][0] if isinstance(s["r"], list) else s["r"])
        for i, (w, b) in enumerate(layers):
            h = w @ h + b
            if i < 3:
                h = np.maximum(h, 0)
        preds.append(float(h[0]))
    json.dump(preds, open(out, "w"))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "zip":
        flags = [a for a in args if a.startswith("--")]
        pos = [a for a in args if not a.startswith("--")]
        protocol = int(pos[2]) if len(pos) > 2 else 2
        write_zip(
            read_legacy(pos[0]),
            pos[1],
            protocol=protocol,
            big="--big" in flags,
            strided="--strided" in flags,
            nest="--nest" in flags,
        )
    elif cmd == "hostile":
        hostile(args[0])
    elif cmd == "ofa-forward":
        ofa_forward(*args)
    else:
        sys.exit(f"unknown command {cmd}")
