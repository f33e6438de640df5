"""hwnas-litert: times TFLite models on this machine with LiteRT (ai-edge-litert), whose
default CPU path is the XNNPACK delegate, the kernels a phone's CPU runs. It speaks
hwnas-runner's command line and output (latency/runner/src/{args,output,batch}.rs), so
hwnas profiles with it as with the runner (latency/src/runtime/litert.rs):

    hwnas_litert.py --model FILE.tflite --warmup N --runs N [--threads T]
        one JSON line: {"runtime":"litert","version":…,"model":…,"threads":T,
        "init_us":…,"warmup":N,"samples_us":[…],"input_dtype":…,"ops":…,"xnnpack_partitions":…}
    hwnas_litert.py --batch MANIFEST
        every model of the manifest (one JSON entry per line) in this one process, one line
        per model as soon as it is timed (flushed): the line above plus "index", "rounds"
        and the device state read just before the model ("cur_freq_khz", "temperature_c");
        a model that fails gets {"index":I,"model":…,"error":…} and the batch goes on.

Each model is loaded once and warmed up once, then timed in rounds of `runs` until the kept
samples are stable by the host's rule (hwnas_runner::stats: samples beyond 3.5 scaled MADs of
the median rejected, CV <= cv_bound with >= min_samples kept) or max_rounds is reached.
Inputs are deterministic and non-constant (float, or int8 through the input's quantization).
"xnnpack_partitions" counts the delegate nodes that took over parts of the graph (0: every op
ran on TFLite's builtin kernels); "ops" counts the model's own operators.
On a bad argument or file it prints `error: …` to stderr and exits 1.
"""

import json
import math
import os
import sys
import time

RUNTIME = "litert"
USAGE = "usage: hwnas_litert.py --model FILE.tflite --warmup N --runs N [--threads T] | --batch MANIFEST"
MAD_LIMIT = 3.5
MAD_SCALE = 1.4826
ENTRY_FIELDS = {"model", "warmup", "runs", "threads", "max_rounds", "cv_bound", "min_samples"}
ENTRY_OPTIONAL = {"cooldown_ms"}


class Bad(Exception):
    pass


def litert_version():
    import importlib.metadata

    return importlib.metadata.version("ai-edge-litert")


# --- statistics: the same rule as hwnas_runner::stats / batch::Entry::done ---


def median(s):
    n = len(s)
    return s[n // 2] if n % 2 == 1 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def keep_mask(samples):
    if len(samples) < 3:
        return [True] * len(samples)
    m = median(sorted(samples))
    mad = median(sorted(abs(x - m) for x in samples)) * MAD_SCALE
    return [mad == 0.0 or abs(x - m) <= MAD_LIMIT * mad for x in samples]


def kept_cv(samples):
    """(kept samples, coefficient of variation) of the samples the MAD rule keeps."""
    kept = [x for x, k in zip(samples, keep_mask(samples)) if k]
    n = len(kept)
    mean = sum(kept) / n
    var = sum((x - mean) ** 2 for x in kept) / (n - 1) if n > 1 else 0.0
    return n, (math.sqrt(var) / mean if mean > 0 else 0.0)


def done(entry, samples, rounds):
    if rounds >= entry["max_rounds"]:
        return True
    if not samples:
        return False
    n, cv = kept_cv(samples)
    return n >= entry["min_samples"] and cv <= entry["cv_bound"]


# --- timing ---


def input_for(detail):
    """A deterministic, non-constant input: ((i * 7919) % 1000) / 500 - 1 over the flattened
    tensor (hwnas-runner's), quantized through the input's parameters for an int8 input."""
    import numpy as np

    shape = [int(d) for d in detail["shape"]]
    n = int(np.prod(shape))
    x = ((np.arange(n, dtype=np.int64) * 7919) % 1000).astype(np.float32) / 500.0 - 1.0
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return x.reshape(shape)
    if dtype in (np.dtype(np.int8), np.dtype(np.uint8)):
        scale, zero = detail["quantization"]
        if not scale:
            raise Bad("the %s input has no quantization parameters" % dtype.name)
        info = np.iinfo(dtype)
        q = np.clip(np.round(x / scale) + zero, info.min, info.max)
        return q.astype(dtype).reshape(shape)
    raise Bad("the model input is %s; hwnas_litert feeds float32, int8 and uint8 inputs" % dtype.name)


def time_model(path, warmup, runs, threads, enough):
    """Loads `path`, warms it up, then times rounds of `runs` until enough(samples, rounds)."""
    from ai_edge_litert.interpreter import Interpreter

    if not os.path.isfile(path):
        raise Bad("no model file %s" % path)
    start = time.perf_counter_ns()
    try:
        it = Interpreter(model_path=path, num_threads=threads)
        it.allocate_tensors()
    except Exception as e:  # LiteRT raises ValueError/RuntimeError with its own log text
        raise Bad("cannot load %s in LiteRT: %s" % (path, " ".join(str(e).split())))
    inputs = it.get_input_details()
    for d in inputs:
        it.set_tensor(d["index"], input_for(d))
    init_us = (time.perf_counter_ns() - start) / 1e3
    names = [o["op_name"] for o in it._get_ops_details()]
    for _ in range(warmup):
        it.invoke()
    samples, rounds = [], 0
    while True:
        for _ in range(runs):
            t = time.perf_counter_ns()
            it.invoke()
            samples.append(max(time.perf_counter_ns() - t, 1) / 1e3)
        rounds += 1
        if enough(samples, rounds):
            break
    report = {
        "runtime": RUNTIME,
        "version": litert_version(),
        "model": path,
        "threads": threads,
        "init_us": init_us,
        "warmup": warmup,
        "samples_us": samples,
        "input_dtype": str(inputs[0]["dtype"].__name__) if inputs else None,
        "ops": sum(1 for n in names if n != "DELEGATE"),
        "xnnpack_partitions": sum(1 for n in names if n == "DELEGATE"),
    }
    return report, rounds


def reading():
    """Each core's current frequency (kHz) and the hottest thermal zone (°C), where readable."""

    def read(p):
        try:
            with open(p) as f:
                return float(f.read().strip())
        except (OSError, ValueError):
            return None

    cpus = [c for c in range(os.cpu_count() or 1) if os.path.exists("/sys/devices/system/cpu/cpu%d" % c)]
    freqs = [read("/sys/devices/system/cpu/cpu%d/cpufreq/scaling_cur_freq" % c) for c in cpus]
    temps = []
    try:
        zones = sorted(os.listdir("/sys/class/thermal"))
    except OSError:
        zones = []
    for z in zones:
        if z.startswith("thermal_zone"):
            t = read("/sys/class/thermal/%s/temp" % z)
            if t is not None:
                temps.append(t / 1000.0)
    out = {}
    if any(f is not None for f in freqs):
        out["cur_freq_khz"] = [None if f is None else int(f) for f in freqs]
    if temps:
        out["temperature_c"] = max(temps)
    return out


# --- command line ---


def whole(flag, v):
    try:
        n = int(v)
    except ValueError:
        raise Bad("%s needs a whole number, got `%s`" % (flag, v))
    if n < 0:
        raise Bad("%s needs a whole number, got `%s`" % (flag, v))
    return n


def parse_args(argv):
    model, warmup, runs, threads = None, None, None, 1
    i = 0
    while i < len(argv):
        flag = argv[i]
        if flag in ("-h", "--help"):
            raise Bad(USAGE)
        if flag not in ("--model", "--warmup", "--runs", "--threads"):
            raise Bad("unknown argument `%s`\n%s" % (flag, USAGE))
        if i + 1 >= len(argv):
            raise Bad("%s needs a value" % flag)
        v = argv[i + 1]
        if flag == "--model":
            model = v
        elif flag == "--warmup":
            warmup = whole(flag, v)
        elif flag == "--runs":
            runs = whole(flag, v)
        else:
            threads = whole(flag, v)
        i += 2
    for name, v in (("--model", model), ("--warmup", warmup), ("--runs", runs)):
        if v is None:
            raise Bad("%s is required\n%s" % (name, USAGE))
    if runs == 0:
        raise Bad("--runs must be at least 1")
    if threads == 0:
        raise Bad("--threads must be at least 1")
    return model, warmup, runs, threads


def read_manifest(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise Bad("cannot read the manifest %s: %s" % (path, e))
    entries = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
        except ValueError as err:
            raise Bad("manifest line %d: %s" % (n, err))
        if not isinstance(e, dict):
            raise Bad("manifest line %d: not a JSON object" % n)
        missing = sorted(ENTRY_FIELDS - set(e))
        unknown = sorted(set(e) - ENTRY_FIELDS - ENTRY_OPTIONAL)
        if missing or unknown:
            raise Bad("manifest line %d: missing %s, unknown %s" % (n, missing, unknown))
        if e["runs"] < 1 or e["threads"] < 1 or e["max_rounds"] < 1:
            raise Bad("manifest line %d: runs, threads and max_rounds must be at least 1" % n)
        entries.append(e)
    if not entries:
        raise Bad("the manifest lists no model")
    return entries


def batch(path):
    entries = read_manifest(path)
    base = os.path.dirname(path) or "."
    for i, e in enumerate(entries):
        model = os.path.join(base, e["model"])
        if i > 0 and e.get("cooldown_ms", 0) > 0:
            time.sleep(e["cooldown_ms"] / 1000.0)
        state = reading()
        try:
            report, rounds = time_model(
                model, e["warmup"], e["runs"], e["threads"], lambda s, r, e=e: done(e, s, r)
            )
            report["index"] = i
            report["rounds"] = rounds
            report.update(state)
            line = json.dumps(report)
        except Exception as err:  # one model's failure does not end the batch
            why = str(err) if isinstance(err, Bad) else "%s: %s" % (type(err).__name__, err)
            line = json.dumps({"index": i, "model": e["model"], "error": " ".join(why.split())})
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def main(argv):
    try:
        if len(argv) == 2 and argv[0] == "--batch":
            batch(argv[1])
        else:
            model, warmup, runs, threads = parse_args(argv)
            report, _ = time_model(model, warmup, runs, threads, lambda s, r: True)
            sys.stdout.write(json.dumps(report) + "\n")
    except Bad as e:
        sys.stderr.write("error: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
