"""hwnas-litert: times TFLite models on this machine with LiteRT (ai-edge-litert), whose
default CPU path is the XNNPACK delegate, the kernels a phone's CPU runs. It speaks
hwnas-runner's command line, output and batch manifest (latency/runner/src/{args,output,
batch,timing,window}.rs, `batch=2`), so hwnas profiles with it as with the runner
(latency/src/runtime/litert.rs):

    hwnas_litert.py --model FILE.tflite --warmup N --runs N [--threads T] [--warmup-ms MS]
        [--min-time-ms MS] [--setup-ratio K] [--layer-profile-runs 0]
        one JSON line: {"runtime":"litert","version":…,"model":…,"threads":T,"init_us":…,
        "warmup":N,"samples_us":[…],"warmup_runs":…,"warmup_us":…,"runs_per_sample":…,
        "window_us":…,"input_dtype":…,"ops":…,"xnnpack_partitions":…}
    hwnas_litert.py --batch MANIFEST
        every model of the manifest (one JSON entry per line) in this one process, one line
        per model as soon as it is timed (flushed): the line above plus "index", "rounds",
        the device state read just before the model ("cur_freq_khz", "temperature_c") and
        the time waited for it ("cooldown_us"); a model that fails gets
        {"index":I,"model":…,"error":…} and the batch goes on.

Timing is hwnas_runner::timing's: a warm-up of at least `warmup` runs and `warmup_ms` (the
time floor only after idle: a batch's first model, a cool-down), then rounds of at least
`runs` samples lasting at least `min_time_ms` and `setup_ratio` times the model's loading,
until the kept samples are stable by the host's rule (hwnas_runner::stats: samples beyond
3.5 scaled MADs of the median rejected, CV <= cv_bound with >= min_samples kept) or
max_rounds is reached; runs under 10 µs are timed in groups (a sample is their mean).
Before each model of a batch it waits, up to `settle_ms`, while the device reading is
outside the entry's window (hwnas_runner::window: a frequency, an absolute temperature, a
rise over the run's first reading). LiteRT's Python API reports no per-op times, so a
layer profile (`layer_profile_runs` > 0) is refused.
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
USAGE = (
    "usage: hwnas_litert.py --model FILE.tflite --warmup N --runs N [--threads T] [--warmup-ms MS] "
    "[--min-time-ms MS] [--setup-ratio K] [--layer-profile-runs 0] | --batch MANIFEST | --capabilities"
)
CAPABILITIES = "hwnas-litert batch=2"
MIN_SAMPLE_US = 10.0
MAX_SAMPLES_PER_ROUND = 2000
POLL_S = 0.1
MAD_LIMIT = 3.5
MAD_SCALE = 1.4826
ENTRY_FIELDS = {"model", "warmup", "runs", "threads", "max_rounds", "cv_bound", "min_samples"}
ENTRY_OPTIONAL = {"cooldown_ms", "warmup_ms", "min_time_ms", "setup_ratio", "layer_profile_runs", "window", "settle_ms"}
WINDOW_FIELDS = {"expect_freq_khz", "cpus", "max_temp_c", "rise"}
NO_LAYER_PROFILE = "LiteRT's Python API reports no per-op times: time layers inside networks with the runner or benchmark_model"


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


def time_runs(plan, setup_us, now, run):
    """hwnas_runner::timing::time: warm-up, then rounds filling the timed window until done.
    `plan` has warmup, warmup_ms, runs, min_time_ms, setup_ratio and done(samples, rounds)."""
    start = now()
    warmup_runs, fastest = 0, math.inf
    while True:
        t = now()
        if warmup_runs >= plan["warmup"] and t - start >= plan["warmup_ms"] * 1e3:
            break
        run()
        fastest = min(fastest, now() - t)
        warmup_runs += 1
    warmup_us = now() - start
    window_us = max(plan["min_time_ms"] * 1e3, plan["setup_ratio"] * setup_us)
    if math.isfinite(fastest) and fastest > 0:
        for_clock = math.ceil(MIN_SAMPLE_US / fastest)
        for_cap = math.ceil(window_us / (MAX_SAMPLES_PER_ROUND * fastest))
        runs_per_sample = int(max(for_clock, for_cap, 1))
    else:
        runs_per_sample = 1
    samples, rounds = [], 0
    while True:
        taken, timed = 0, 0.0
        while taken < plan["runs"] or (timed < window_us and taken < 4 * MAX_SAMPLES_PER_ROUND):
            t = now()
            for _ in range(runs_per_sample):
                run()
            took = max(now() - t, 1e-3)
            samples.append(took / runs_per_sample)
            timed += took
            taken += 1
        rounds += 1
        if plan["done"](samples, rounds):
            break
    timing = {"warmup_runs": warmup_runs, "warmup_us": warmup_us, "runs_per_sample": runs_per_sample, "window_us": window_us}
    return samples, rounds, timing


def time_model(path, threads, plan):
    """Loads `path` into LiteRT, then times it as `plan` says (see time_runs)."""
    from ai_edge_litert.interpreter import Interpreter

    if plan.get("layer_profile_runs", 0) > 0:
        raise Bad(NO_LAYER_PROFILE)
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
    samples, rounds, timing = time_runs(plan, init_us, lambda: time.perf_counter_ns() / 1e3, it.invoke)
    report = {
        "runtime": RUNTIME,
        "version": litert_version(),
        "model": path,
        "threads": threads,
        "init_us": init_us,
        "warmup": plan["warmup"],
        "samples_us": samples,
        "input_dtype": str(inputs[0]["dtype"].__name__) if inputs else None,
        "ops": sum(1 for n in names if n != "DELEGATE"),
        "xnnpack_partitions": sum(1 for n in names if n == "DELEGATE"),
    }
    report.update(timing)
    return report, rounds


def check_window(window, r):
    """hwnas_runner::window::Window::check: (reasons to wait, checks that cannot be made)."""
    wait, unreadable = [], []
    want = window.get("expect_freq_khz")
    if want is not None:
        freqs = r.get("cur_freq_khz", [])
        cpus = window.get("cpus") or list(range(len(freqs)))
        if not cpus:
            unreadable.append("no CPU frequency readable, expected %d kHz" % want)
        for c in cpus:
            f = freqs[c] if c < len(freqs) else None
            if f is None:
                unreadable.append("cpu%d frequency unreadable, expected %d kHz" % (c, want))
            elif f != want:
                wait.append("cpu%d at %d kHz, expected %d kHz" % (c, f, want))
    t = r.get("temperature_c")
    limit = window.get("max_temp_c")
    if limit is not None:
        if t is None:
            unreadable.append("temperature unreadable (limit %.1f °C)" % limit)
        elif t > limit:
            wait.append("temperature %.1f °C above %.1f °C" % (t, limit))
    rise = window.get("rise")
    if rise is not None and t is not None:
        over_absolute = limit is not None and t > limit
        if t > rise["start_c"] + rise["rise_c"] and not over_absolute:
            wait.append("temperature %.1f °C, more than %.1f °C above the run's start (%.1f °C)" % (t, rise["rise_c"], rise["start_c"]))
    return wait, unreadable


def cool_down(window, settle_ms):
    """hwnas_runner::window::wait_for on sysfs: the reading a model starts with and how long it waited (µs)."""
    r, waited = reading(), 0.0
    while check_window(window, r)[0] and waited < settle_ms / 1000.0:
        time.sleep(POLL_S)
        waited += POLL_S
        r = reading()
    return r, waited * 1e6


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


FLAGS = {
    "--model": "model",
    "--warmup": "warmup",
    "--runs": "runs",
    "--threads": "threads",
    "--warmup-ms": "warmup_ms",
    "--min-time-ms": "min_time_ms",
    "--setup-ratio": "setup_ratio",
    "--layer-profile-runs": "layer_profile_runs",
}


def parse_args(argv):
    """hwnas_runner::args::Args::parse: the model and its plan (one round)."""
    a = {"threads": 1, "warmup_ms": 0, "min_time_ms": 0, "setup_ratio": 0, "layer_profile_runs": 0}
    i = 0
    while i < len(argv):
        flag = argv[i]
        if flag in ("-h", "--help"):
            raise Bad(USAGE)
        if flag not in FLAGS:
            raise Bad("unknown argument `%s`\n%s" % (flag, USAGE))
        if i + 1 >= len(argv):
            raise Bad("%s needs a value" % flag)
        v = argv[i + 1]
        a[FLAGS[flag]] = v if flag == "--model" else whole(flag, v)
        i += 2
    for flag in ("--model", "--warmup", "--runs"):
        if FLAGS[flag] not in a:
            raise Bad("%s is required\n%s" % (flag, USAGE))
    if a["runs"] == 0:
        raise Bad("--runs must be at least 1")
    if a["threads"] == 0:
        raise Bad("--threads must be at least 1")
    a["done"] = lambda s, r: True
    return a


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
        unknown_window = sorted(set(e.get("window", {})) - WINDOW_FIELDS)
        if unknown_window:
            raise Bad("manifest line %d: unknown window fields %s" % (n, unknown_window))
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
        paused = i > 0 and e.get("cooldown_ms", 0) > 0
        if paused:
            time.sleep(e["cooldown_ms"] / 1000.0)
        state, waited_us = cool_down(e.get("window", {}), e.get("settle_ms", 0))
        # The warm-up by time follows idle time only (the batch's start, a cool-down).
        idle = i == 0 or paused or waited_us > 0
        plan = {
            "warmup": e["warmup"],
            "warmup_ms": e.get("warmup_ms", 0) if idle else 0,
            "runs": e["runs"],
            "min_time_ms": e.get("min_time_ms", 0),
            "setup_ratio": e.get("setup_ratio", 0),
            "layer_profile_runs": e.get("layer_profile_runs", 0),
            "done": lambda s, r, e=e: done(e, s, r),
        }
        try:
            report, rounds = time_model(model, e["threads"], plan)
            report["index"] = i
            report["rounds"] = rounds
            report.update(state)
            report["cooldown_us"] = (e["cooldown_ms"] * 1e3 if paused else 0.0) + waited_us
            line = json.dumps(report)
        except Exception as err:  # one model's failure does not end the batch
            why = str(err) if isinstance(err, Bad) else "%s: %s" % (type(err).__name__, err)
            line = json.dumps({"index": i, "model": e["model"], "error": " ".join(why.split())})
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def main(argv):
    try:
        if argv == ["--capabilities"]:
            sys.stdout.write(CAPABILITIES + "\n")
        elif len(argv) == 2 and argv[0] == "--batch":
            batch(argv[1])
        else:
            a = parse_args(argv)
            report, _ = time_model(a["model"], a["threads"], a)
            sys.stdout.write(json.dumps(report) + "\n")
    except Bad as e:
        sys.stderr.write("error: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
