//! Tensors of PyTorch `.pth`/`.pt` files, without Python or libtorch: a small pickle reader
//! that understands exactly what `torch.save(state_dict)` writes, in both of torch's formats.
//!
//! - **Legacy** (torch < 1.6, `_use_new_zipfile_serialization=False`; OFA's released files):
//!   five things back to back — a pickled magic number, a pickled protocol version, a pickled
//!   `sys_info` dict (byte order, type sizes), the pickled object, a pickled list of storage keys,
//!   then for each key an 8-byte element count followed by the storage's raw bytes.
//! - **Zip** (torch ≥ 1.6): a zip archive `<folder>/data.pkl`, `<folder>/data/<key>` (one raw
//!   storage per entry), optional `<folder>/byteorder` (`little` when absent).
//!
//! In both, a tensor is pickled as `torch._utils._rebuild_tensor_v2(storage, offset, size,
//! stride, requires_grad, backward_hooks[, metadata])`, the storage being a persistent id
//! `('storage', torch.<T>Storage, key, location, numel[, view_metadata])`.
//!
//! Nothing is executed: the pickle machine only builds plain values, and the only globals it
//! accepts are the allow-list in [`Global`]; any other global or opcode is an error naming it
//! and its byte offset.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Element type of a tensor (the storage class it was saved from).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    U8,
    Bool,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::U8 | DType::Bool => 1,
        }
    }

    fn from_storage(name: &str) -> Option<DType> {
        Some(match name {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }
}

/// One tensor, materialised contiguous in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct TorchTensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// `numel · dtype.size()` bytes, little-endian.
    data: Vec<u8>,
}

impl TorchTensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The elements as `f32` (f64 rounded, integers and booleans converted).
    pub fn to_f32(&self) -> Vec<f32> {
        self.elements(|b| match self.dtype {
            DType::F32 => f32::from_le_bytes(b.try_into().unwrap()),
            DType::F64 => f64::from_le_bytes(b.try_into().unwrap()) as f32,
            DType::F16 => f16_to_f32(u16::from_le_bytes(b.try_into().unwrap())),
            DType::BF16 => f32::from_bits((u16::from_le_bytes(b.try_into().unwrap()) as u32) << 16),
            DType::I64 => i64::from_le_bytes(b.try_into().unwrap()) as f32,
            DType::I32 => i32::from_le_bytes(b.try_into().unwrap()) as f32,
            DType::U8 | DType::Bool => b[0] as f32,
        })
    }

    /// The elements as `i64` (floats truncated toward zero, as `tensor.long()` does).
    pub fn to_i64(&self) -> Vec<i64> {
        match self.dtype {
            DType::I64 => self.elements(|b| i64::from_le_bytes(b.try_into().unwrap())),
            DType::I32 => self.elements(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64),
            DType::U8 | DType::Bool => self.data.iter().map(|&b| b as i64).collect(),
            _ => self.to_f32().into_iter().map(|v| v as i64).collect(),
        }
    }

    fn elements<T>(&self, f: impl Fn(&[u8]) -> T) -> Vec<T> {
        self.data.chunks_exact(self.dtype.size()).map(f).collect()
    }
}

/// IEEE half to single, exact (subnormals, infinities and NaN included).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => return if sign != 0 { -(man as f32) } else { man as f32 } * (2f32).powi(-24),
        (0x1f, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

#[derive(Debug, thiserror::Error)]
pub enum TorchFileError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a PyTorch file: {why}")]
    NotTorch { path: PathBuf, why: String },
    #[error("{path} is truncated: it ends inside the {section}")]
    Truncated { path: PathBuf, section: String },
    #[error("{path}: unsupported pickle opcode {name} (0x{code:02x}) at byte {offset} of the {section}")]
    UnknownOpcode { path: PathBuf, name: &'static str, code: u8, offset: usize, section: String },
    #[error(
        "{path}: global `{global}` at byte {offset} of the {section} is not allowed (only torch storages, \
         torch._utils._rebuild_tensor_v2/_rebuild_parameter and collections.OrderedDict are)"
    )]
    ForbiddenGlobal { path: PathBuf, global: String, offset: usize, section: String },
    #[error("{path}: malformed pickle at byte {offset} of the {section}: {why}")]
    Malformed { path: PathBuf, offset: usize, section: String, why: String },
    #[error("{path}: storage `{key}`: {why}")]
    StorageSize { path: PathBuf, key: String, why: String },
    #[error("{path}: unreadable zip container (damaged or truncated?)")]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{path}: not a state dict: {why}")]
    NotStateDict { path: PathBuf, why: String },
}

/// Every tensor of a state dict, by name.
///
/// Accepted top-level objects: a state dict itself (a dict or `OrderedDict` of name → tensor,
/// `nn.Parameter`s included), or a dict holding one under `"state_dict"` or else `"model"`
/// (how OFA and most training scripts save checkpoints; the other entries, e.g. `epoch`, are
/// ignored). Names are kept as saved (a `module.` prefix from `DataParallel` stays).
pub fn load_state_dict(path: &Path) -> Result<BTreeMap<String, TorchTensor>, TorchFileError> {
    let bytes = std::fs::read(path).map_err(|source| TorchFileError::Io { path: path.into(), source })?;
    let (root, storages) = if bytes.starts_with(b"PK\x03\x04") {
        read_zip(path, &bytes)?
    } else if bytes.first() == Some(&PROTO) {
        read_legacy(path, &bytes)?
    } else {
        return Err(TorchFileError::NotTorch {
            path: path.into(),
            why: "neither a zip container nor a legacy torch pickle".into(),
        });
    };
    let not_sd = |why: String| TorchFileError::NotStateDict { path: path.into(), why };
    let entries = |v: &Value| match v {
        Value::Dict(d) => Some(d.borrow().clone()),
        _ => None,
    };
    let top = entries(&root).ok_or_else(|| not_sd(format!("the file holds {}, not a dict", root.kind())))?;
    let is_tensor = |v: &Value| matches!(v, Value::Tensor(_));
    let dict = if !top.is_empty() && top.iter().all(|(_, v)| is_tensor(v)) {
        top
    } else {
        let inner = ["state_dict", "model"]
            .iter()
            .find_map(|k| top.iter().find(|(key, _)| matches!(key, Value::Str(s) if s == k)).map(|(_, v)| (*k, v)));
        let (name, v) = inner.ok_or_else(|| {
            not_sd("a dict whose values are not all tensors and that has no `state_dict` or `model` entry".into())
        })?;
        entries(v).ok_or_else(|| not_sd(format!("`{name}` holds {}, not a dict", v.kind())))?
    };
    let mut out = BTreeMap::new();
    for (k, v) in dict {
        let Value::Str(name) = k else { return Err(not_sd(format!("a key is {}, not a string", k.kind()))) };
        let Value::Tensor(t) = v else { return Err(not_sd(format!("`{name}` holds {}, not a tensor", v.kind()))) };
        let tensor = materialise(path, &t, &storages)?;
        out.insert(name, tensor);
    }
    Ok(out)
}

/// Raw little-endian bytes of each storage, by key.
type Storages = HashMap<String, Vec<u8>>;

fn read_legacy(path: &Path, bytes: &[u8]) -> Result<(Value, Storages), TorchFileError> {
    const MAGIC: i128 = 0x1950a86a20f9469cfc6c;
    let mut pos = 0;
    fn next<'a>(
        path: &Path,
        bytes: &'a [u8],
        section: &str,
        pos: &mut usize,
    ) -> Result<(Value, Unpickler<'a>), TorchFileError> {
        let mut u = Unpickler::new(bytes, *pos);
        let v = u.run().map_err(|e| e.at(path, section))?;
        *pos = u.pos;
        Ok((v, u))
    }
    let next = |section: &str, pos: &mut usize| next(path, bytes, section, pos);
    match next("magic number", &mut pos) {
        Ok((Value::Int(MAGIC), _)) => {}
        Err(e @ TorchFileError::Truncated { .. }) => return Err(e),
        _ => return Err(TorchFileError::NotTorch { path: path.into(), why: "no torch magic number".into() }),
    }
    next("protocol version", &mut pos)?;
    let (info, _) = next("system info", &mut pos)?;
    let little = match &info {
        Value::Dict(d) => d.borrow().iter().find_map(|(k, v)| match (k, v) {
            (Value::Str(k), Value::Bool(b)) if k == "little_endian" => Some(*b),
            _ => None,
        }),
        _ => None,
    }
    .unwrap_or(true);
    let (root, main) = next("main object pickle", &mut pos)?;
    let (keys, _) = next("storage key list", &mut pos)?;
    let keys: Vec<String> = match keys {
        Value::List(l) => l
            .borrow()
            .iter()
            .map(|k| match k {
                Value::Str(s) => Ok(s.clone()),
                other => Err(other.kind()),
            })
            .collect::<Result<_, _>>()
            .ok(),
        _ => None,
    }
    .ok_or_else(|| TorchFileError::Malformed {
        path: path.into(),
        offset: pos,
        section: "storage key list".into(),
        why: "not a list of strings".into(),
    })?;
    let mut storages = Storages::new();
    for key in keys {
        let section = format!("data of storage `{key}`");
        let truncated = || TorchFileError::Truncated { path: path.into(), section: section.clone() };
        let s = main.storages.get(&key).ok_or_else(|| TorchFileError::StorageSize {
            path: path.into(),
            key: key.clone(),
            why: "listed in the file but used by no tensor".into(),
        })?;
        let head: [u8; 8] = bytes.get(pos..pos + 8).ok_or_else(truncated)?.try_into().unwrap();
        let numel = if little { u64::from_le_bytes(head) } else { u64::from_be_bytes(head) };
        if numel != s.numel as u64 {
            return Err(TorchFileError::StorageSize {
                path: path.into(),
                key,
                why: format!("the pickle says {} elements, the data section {numel}", s.numel),
            });
        }
        let n = s.numel * s.dtype.size();
        let mut data = bytes.get(pos + 8..pos + 8 + n).ok_or_else(truncated)?.to_vec();
        pos += 8 + n;
        if !little {
            swap_bytes(&mut data, s.dtype);
        }
        storages.insert(key, data);
    }
    Ok((root, storages))
}

fn read_zip(path: &Path, bytes: &[u8]) -> Result<(Value, Storages), TorchFileError> {
    let zip_err = |source| TorchFileError::Zip { path: path.into(), source };
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_err)?;
    let pkl: Vec<String> = z
        .file_names()
        .filter(|n| n.strip_suffix("data.pkl").is_some_and(|d| d.ends_with('/') && d.matches('/').count() == 1))
        .map(String::from)
        .collect();
    let [pkl] = pkl.as_slice() else {
        return Err(TorchFileError::NotTorch {
            path: path.into(),
            why: format!("a zip archive with {} `<folder>/data.pkl` entries, not one", pkl.len()),
        });
    };
    let prefix = pkl.strip_suffix("data.pkl").unwrap().to_string();
    let mut read = |name: &str| -> Result<Option<Vec<u8>>, TorchFileError> {
        let mut f = match z.by_name(name) {
            Ok(f) => f,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(zip_err(e)),
        };
        let mut buf = Vec::with_capacity(f.size() as usize);
        f.read_to_end(&mut buf).map_err(|source| TorchFileError::Io { path: path.join(name), source })?;
        Ok(Some(buf))
    };
    let little = match read(&format!("{prefix}byteorder"))?.as_deref().map(|b| b.trim_ascii()) {
        None | Some(b"little") => true,
        Some(b"big") => false,
        Some(other) => {
            return Err(TorchFileError::NotTorch {
                path: path.into(),
                why: format!("`{prefix}byteorder` is {:?}, not little or big", String::from_utf8_lossy(other)),
            })
        }
    };
    let data_pkl = read(pkl)?.unwrap();
    let section = format!("zip entry {pkl}");
    let mut u = Unpickler::new(&data_pkl, 0);
    let root = u.run().map_err(|e| e.at(path, &section))?;
    let mut storages = Storages::new();
    for (key, s) in &u.storages {
        let name = format!("{prefix}data/{key}");
        let mut data = read(&name)?.ok_or_else(|| TorchFileError::StorageSize {
            path: path.into(),
            key: key.clone(),
            why: format!("no zip entry {name}"),
        })?;
        if data.len() != s.numel * s.dtype.size() {
            return Err(TorchFileError::StorageSize {
                path: path.into(),
                key: key.clone(),
                why: format!(
                    "{name} has {} bytes, {} {:?} elements need {}",
                    data.len(),
                    s.numel,
                    s.dtype,
                    s.numel * s.dtype.size()
                ),
            });
        }
        if !little {
            swap_bytes(&mut data, s.dtype);
        }
        storages.insert(key.clone(), data);
    }
    Ok((root, storages))
}

fn swap_bytes(data: &mut [u8], dtype: DType) {
    data.chunks_exact_mut(dtype.size()).for_each(<[u8]>::reverse);
}

/// The tensor's elements copied out of its storage in row-major order, honouring offset and strides.
fn materialise(path: &Path, t: &TensorRef, storages: &Storages) -> Result<TorchTensor, TorchFileError> {
    let s = &t.storage;
    let bad = |why: String| TorchFileError::StorageSize { path: path.into(), key: s.key.clone(), why };
    let data = storages.get(&s.key).ok_or_else(|| bad("no data for this storage".into()))?;
    let el = s.dtype.size();
    let numel: usize = t.size.iter().product();
    if numel > 0 {
        let last = t.size.iter().zip(&t.stride).map(|(&n, &st)| (n - 1) * st).sum::<usize>() + t.offset;
        if last >= s.numel {
            return Err(bad(format!(
                "a tensor of size {:?}, stride {:?}, offset {} reaches element {last} of a {}-element storage",
                t.size, t.stride, t.offset, s.numel
            )));
        }
    }
    let mut out = Vec::with_capacity(numel * el);
    let contiguous = {
        let mut expect = 1;
        t.size.iter().zip(&t.stride).rev().all(|(&n, &st)| {
            let ok = n == 1 || st == expect;
            expect *= n;
            ok
        })
    };
    if contiguous {
        out.extend_from_slice(&data[t.offset * el..(t.offset + numel) * el]);
    } else {
        let mut idx = vec![0usize; t.size.len()];
        for _ in 0..numel {
            let at = t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
            out.extend_from_slice(&data[at * el..(at + 1) * el]);
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < t.size[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
    Ok(TorchTensor { dtype: s.dtype, shape: t.size.clone(), data: out })
}

/// The callables a torch state-dict pickle may name; anything else is refused.
#[derive(Clone, Debug, PartialEq)]
enum Global {
    RebuildTensorV2,
    RebuildParameter,
    OrderedDict,
    Storage(DType),
}

#[derive(Debug)]
struct StorageRef {
    key: String,
    dtype: DType,
    numel: usize,
}

#[derive(Debug)]
struct TensorRef {
    storage: Rc<StorageRef>,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

/// A pickled value. Containers are shared (`Rc<RefCell>`) because the memo and the stack
/// hold the same object and later opcodes (SETITEMS, APPENDS) fill it in place.
#[derive(Clone, Debug)]
enum Value {
    None,
    Bool(bool),
    Int(i128),
    /// Its value is not kept: no tensor needs one (checkpoint extras like a loss may hold floats).
    Float,
    Str(String),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float => "a float",
            Value::Str(_) => "a string",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a class or function",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
        }
    }
}

/// Why a pickle could not be read, before the file and section are known.
enum PickleError {
    Eof,
    Opcode { code: u8, offset: usize },
    Global { global: String, offset: usize },
    Malformed { offset: usize, why: String },
}

impl PickleError {
    fn at(self, path: &Path, section: &str) -> TorchFileError {
        let (path, section) = (path.to_path_buf(), section.to_string());
        match self {
            PickleError::Eof => TorchFileError::Truncated { path, section },
            PickleError::Opcode { code, offset } => {
                TorchFileError::UnknownOpcode { path, name: opcode_name(code), code, offset, section }
            }
            PickleError::Global { global, offset } => TorchFileError::ForbiddenGlobal { path, global, offset, section },
            PickleError::Malformed { offset, why } => TorchFileError::Malformed { path, offset, section, why },
        }
    }
}

const PROTO: u8 = 0x80;

/// Names of every pickle opcode (protocols 0–5), for refusals.
fn opcode_name(code: u8) -> &'static str {
    match code {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "(not a pickle opcode)",
    }
}

struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of the opcode being run, for errors.
    op_at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    /// Every storage the persistent ids named, by key (one object per key, shared by its views).
    storages: BTreeMap<String, Rc<StorageRef>>,
}

impl<'a> Unpickler<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Unpickler {
            data,
            pos,
            op_at: pos,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            storages: BTreeMap::new(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or(PickleError::Eof)?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn le(&mut self, n: usize) -> Result<u64, PickleError> {
        Ok(self.take(n)?.iter().rev().fold(0u64, |acc, &b| acc << 8 | b as u64))
    }

    fn bad<T>(&self, why: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError::Malformed { offset: self.op_at, why: why.into() })
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.bad("stack underflow");
        }
        Ok(self.stack.pop().unwrap())
    }

    fn top(&self) -> Result<&Value, PickleError> {
        match self.stack.last() {
            Some(v) => Ok(v),
            None => self.bad("stack underflow"),
        }
    }

    /// Everything above the most recent mark, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let Some(m) = self.marks.pop() else { return self.bad("no MARK on the stack") };
        Ok(self.stack.split_off(m))
    }

    fn text(&mut self, n: usize) -> Result<String, PickleError> {
        let b = self.take(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => self.bad("a string is not UTF-8"),
        }
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or(PickleError::Eof)?;
        let s = self.text(n)?;
        self.pos += 1;
        Ok(s)
    }

    fn global(&self, module: &str, name: &str) -> Result<Value, PickleError> {
        let g = match (module, name) {
            ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
            ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
            ("collections", "OrderedDict") => Global::OrderedDict,
            ("torch", s) if DType::from_storage(s).is_some() => Global::Storage(DType::from_storage(s).unwrap()),
            _ => return Err(PickleError::Global { global: format!("{module}.{name}"), offset: self.op_at }),
        };
        Ok(Value::Global(g))
    }

    fn memoize(&mut self, key: u64) -> Result<(), PickleError> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn get(&mut self, key: u64) -> Result<(), PickleError> {
        match self.memo.get(&key) {
            Some(v) => {
                self.stack.push(v.clone());
                Ok(())
            }
            None => self.bad(format!("memo entry {key} read before it was written")),
        }
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return self.bad("SETITEMS with an odd number of values");
        }
        let Value::Dict(d) = self.top()? else { return self.bad("SETITEM(S) on something not a dict") };
        let mut d = d.borrow_mut();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }

    fn uint(&self, v: &Value, what: &str) -> Result<usize, PickleError> {
        match v {
            Value::Int(i) if *i >= 0 && *i <= usize::MAX as i128 => Ok(*i as usize),
            other => self.bad(format!("{what} is {}, not a non-negative int", other.kind())),
        }
    }

    fn uints(&self, v: &Value, what: &str) -> Result<Vec<usize>, PickleError> {
        let Value::Tuple(t) = v else { return self.bad(format!("{what} is {}, not a tuple", v.kind())) };
        t.iter().map(|x| self.uint(x, what)).collect()
    }

    /// `('storage', torch.<T>Storage, key, location, numel[, view_metadata])`.
    fn persistent_load(&mut self, pid: Value) -> Result<Value, PickleError> {
        let Value::Tuple(t) = &pid else { return self.bad("a persistent id that is not a tuple") };
        match t.as_slice() {
            [Value::Str(tag), Value::Global(Global::Storage(dtype)), Value::Str(key), Value::Str(_location), numel, rest @ ..]
                if tag == "storage" && matches!(rest, [] | [Value::None]) =>
            {
                let numel = self.uint(numel, "a storage's element count")?;
                let s = match self.storages.get(key) {
                    Some(s) if s.dtype != *dtype || s.numel != numel => {
                        return self.bad(format!("storage `{key}` is named with two different types or sizes"))
                    }
                    Some(s) => s.clone(),
                    None => {
                        let s = Rc::new(StorageRef { key: key.clone(), dtype: *dtype, numel });
                        self.storages.insert(key.clone(), s.clone());
                        s
                    }
                };
                Ok(Value::Storage(s))
            }
            _ => self.bad("a persistent id that is not ('storage', torch.<T>Storage, key, location, numel) (storage views of torch < 0.4 are not read)"),
        }
    }

    fn reduce(&mut self, f: Value, args: Value) -> Result<Value, PickleError> {
        let Value::Tuple(a) = &args else { return self.bad("REDUCE arguments are not a tuple") };
        match (f, a.as_slice()) {
            (Value::Global(Global::OrderedDict), []) => Ok(Value::Dict(Default::default())),
            (Value::Global(Global::RebuildTensorV2), [storage, offset, size, stride, _grad, _hooks, ..])
                if a.len() <= 7 =>
            {
                let Value::Storage(storage) = storage else {
                    return self.bad(format!("_rebuild_tensor_v2 on {}, not a storage", storage.kind()));
                };
                let (size, stride) = (self.uints(size, "a tensor size")?, self.uints(stride, "a tensor stride")?);
                if size.len() != stride.len() {
                    return self.bad(format!("tensor size {size:?} and stride {stride:?} differ in rank"));
                }
                let offset = self.uint(offset, "a tensor offset")?;
                Ok(Value::Tensor(Rc::new(TensorRef { storage: storage.clone(), offset, size, stride })))
            }
            (Value::Global(Global::RebuildParameter), [t @ Value::Tensor(_), _grad, _hooks]) => Ok(t.clone()),
            (f, _) => self.bad(format!("cannot call {} with {} arguments", f.kind(), a.len())),
        }
    }

    /// Runs to STOP and returns the pickled object.
    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            self.op_at = self.pos;
            let code = self.take(1)?[0];
            match code {
                PROTO => {
                    self.take(1)?;
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint only
                }
                b'.' => {
                    let v = self.pop()?;
                    return if self.stack.is_empty() && self.marks.is_empty() {
                        Ok(v)
                    } else {
                        self.bad("STOP with more than one value on the stack")
                    };
                }
                b'(' => self.marks.push(self.stack.len()),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = self.le(4)? as u32 as i32;
                    self.stack.push(Value::Int(v as i128));
                }
                b'K' => {
                    let v = self.le(1)?;
                    self.stack.push(Value::Int(v as i128));
                }
                b'M' => {
                    let v = self.le(2)?;
                    self.stack.push(Value::Int(v as i128));
                }
                0x8a => {
                    let n = self.le(1)? as usize;
                    if n > 16 {
                        return self.bad(format!("a {n}-byte integer"));
                    }
                    let b = self.take(n)?;
                    // Little-endian two's complement, sign-extended from its top byte.
                    let mut buf = [if b.last().is_some_and(|&x| x & 0x80 != 0) { 0xff } else { 0 }; 16];
                    buf[..n].copy_from_slice(b);
                    self.stack.push(Value::Int(i128::from_le_bytes(buf)));
                }
                b'G' => {
                    self.take(8)?;
                    self.stack.push(Value::Float);
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match code {
                        b'X' => self.le(4)?,
                        0x8c => self.le(1)?,
                        _ => self.le(8)?,
                    };
                    let s = self.text(usize::try_from(n).map_err(|_| PickleError::Eof)?)?;
                    self.stack.push(Value::Str(s));
                }
                b'c' => {
                    let (module, name) = (self.line()?, self.line()?);
                    let g = self.global(&module, &name)?;
                    self.stack.push(g);
                }
                0x93 => {
                    let (name, module) = (self.pop()?, self.pop()?);
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return self.bad("STACK_GLOBAL on values that are not strings");
                    };
                    let g = self.global(&module, &name)?;
                    self.stack.push(g);
                }
                b'q' => {
                    let k = self.le(1)?;
                    self.memoize(k)?;
                }
                b'r' => {
                    let k = self.le(4)?;
                    self.memoize(k)?;
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memoize(k)?;
                }
                b'h' => {
                    let k = self.le(1)?;
                    self.get(k)?;
                }
                b'j' => {
                    let k = self.le(4)?;
                    self.get(k)?;
                }
                b'}' => self.stack.push(Value::Dict(Default::default())),
                b'd' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Dict(Default::default()));
                    self.set_items(items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b']' => self.stack.push(Value::List(Default::default())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))));
                }
                b'a' | b'e' => {
                    let items = if code == b'a' { vec![self.pop()?] } else { self.pop_mark()? };
                    let Value::List(l) = self.top()? else { return self.bad("APPEND(S) on something not a list") };
                    l.borrow_mut().extend(items);
                }
                b')' => self.stack.push(Value::Tuple(Rc::new(vec![]))),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => {
                    let n = (code - 0x84) as usize;
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() < floor + n {
                        return self.bad("stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent_load(pid)?;
                    self.stack.push(v);
                }
                b'R' => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    let v = self.reduce(f, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    // OrderedDict state (a state dict's `_metadata` attribute): not needed for the tensors.
                    let _state = self.pop()?;
                    if !matches!(self.top()?, Value::Dict(_)) {
                        return self.bad(format!("BUILD on {}", self.top()?.kind()));
                    }
                }
                other => return Err(PickleError::Opcode { code: other, offset: self.op_at }),
            }
        }
    }
}
