//! Loaders: one per file format, each returning the same intermediate `Graph`.
//!
//! A loader knows its format and nothing of memory. It resolves every tensor
//! shape it can (Caffe through nnmem's own shape rules; ONNX through them too,
//! node by node, and through tract for the nodes they cannot size) and records what it could
//! not as warnings on the graph.

/// Caffe: prototxt (V0/V1/V2) and .caffemodel.
pub mod caffe;
/// Opening inputs: regular files only, or standard input.
pub mod input;
/// ONNX: the reduced protobuf schema, own shape engine, tract fallback.
pub mod onnx;

use std::path::{Path, PathBuf};

use crate::graph::{Graph, ModelFormat};

/// Which Caffe phase to build (layers' include/exclude rules select on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CaffePhase {
    /// The TEST phase (deploy): Caffe's default.
    #[default]
    Test,
    /// The TRAIN phase.
    Train,
}

/// An input shape given on the command line: `data=1x3x224x224` or `1x3x224x224`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSpec {
    /// `None` when the user gave only dims (allowed when the model has one input).
    pub name: Option<String>,
    /// The extents, outermost first.
    pub dims: Vec<u64>,
}

impl InputSpec {
    /// Parse `[NAME=]D1xD2x…` (also `,` between dims).
    pub fn parse(text: &str) -> Result<InputSpec, String> {
        let (name, dims_text) = match text.rsplit_once('=') {
            Some((n, d)) if !n.is_empty() => (Some(n.to_string()), d),
            Some((_, _)) => return Err(format!("\"{text}\": the input name before '=' is empty")),
            None => (None, text),
        };
        let mut dims = Vec::new();
        for part in dims_text.split(['x', 'X', ',']) {
            let part = part.trim();
            let d: u64 = part
                .parse()
                .map_err(|_| format!("\"{text}\": \"{part}\" is not a dimension (expected NAME=1x3x224x224)"))?;
            dims.push(d);
        }
        if dims.is_empty() {
            return Err(format!("\"{text}\": no dimensions"));
        }
        Ok(InputSpec { name, dims })
    }
}

/// A symbolic ONNX dimension bound on the command line: `batch=8`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DimBinding {
    /// The symbol's name as the file (or nnmem) names it.
    pub symbol: String,
    /// Its value.
    pub value: u64,
}

impl DimBinding {
    /// Parse `SYMBOL=VALUE`.
    pub fn parse(text: &str) -> Result<DimBinding, String> {
        let (symbol, value) =
            text.split_once('=').ok_or_else(|| format!("\"{text}\": expected SYMBOL=VALUE, e.g. batch=8"))?;
        let value = value.trim().parse().map_err(|_| format!("\"{text}\": \"{value}\" is not a number"))?;
        if symbol.trim().is_empty() {
            return Err(format!("\"{text}\": the symbol name is empty"));
        }
        Ok(DimBinding { symbol: symbol.trim().to_string(), value })
    }
}

/// What the user told us about the model beyond the file itself.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--input` shapes.
    pub inputs: Vec<InputSpec>,
    /// Replaces only the first (batch) dimension of every image input.
    pub batch: Option<u64>,
    /// `--dim` bindings of free symbols.
    pub dims: Vec<DimBinding>,
    /// `None`: the file's `state { phase }`, else TEST.
    pub phase: Option<CaffePhase>,
    /// Caffe: a .caffemodel whose blob shapes are checked against the prototxt.
    pub weights: Option<PathBuf>,
    /// ONNX: which shape inference to use.
    pub onnx_shapes: OnnxShapes,
    /// `--input` specs this model cannot take (no input of that name; an
    /// unnamed spec for a model with several inputs) are skipped instead of
    /// refused: `audit` applies one set of flags to many models.
    pub lenient_inputs: bool,
    /// ONNX: count a probably tied embedding table and output projection
    /// (src/load/onnx/tied.rs) as one weight.
    pub tie_embeddings: bool,
}

/// How ONNX shapes are inferred.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnnxShapes {
    /// nnmem's own rules for every node; tract only for the nodes they cannot size.
    #[default]
    Auto,
    /// Always tract (the reference the own rules are tested against).
    Tract,
    /// Only nnmem's own rules: shapes stay unknown where they do not apply.
    Own,
}

/// A model file could not be read at all. Problems that leave part of the
/// graph usable are warnings on the `Graph` instead.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened or read.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// Prototxt syntax: file:line:column and what was expected.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What was expected.
        message: String,
    },
    /// A structural problem located by a layer or node name.
    #[error("{path}: {location}: {message}")]
    Model {
        /// The file.
        path: PathBuf,
        /// The layer or node (`layer "conv1"`, `node "Conv_0"`).
        location: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A problem of the file as a whole (unknown format, bad protobuf).
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The user's options do not fit the model (an --input name that is not an input).
    #[error("{message}")]
    Usage {
        /// What does not fit, and what would.
        message: String,
    },
}

/// The kinds of file nnmem reads. Not the same as `graph::ModelFormat`, the
/// format family a graph came from: a Caffe model comes as a prototxt (the
/// net) or a .caffemodel (weights only), both `ModelFormat::Caffe`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A Caffe net in protobuf text format.
    Prototxt,
    /// An ONNX model (binary protobuf).
    Onnx,
    /// Caffe weights (binary protobuf): its net's layers and blob shapes.
    CaffeModel,
}

impl FileKind {
    /// The format family of graphs loaded from this kind of file.
    pub fn model_format(self) -> ModelFormat {
        match self {
            FileKind::Prototxt | FileKind::CaffeModel => ModelFormat::Caffe,
            FileKind::Onnx => ModelFormat::Onnx,
        }
    }
}

/// Decide the kind of file from the extension, falling back to the first bytes.
pub fn sniff_file_kind(path: &Path, head: &[u8]) -> FileKind {
    match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref() {
        Some("prototxt") | Some("pbtxt") | Some("txt") => return FileKind::Prototxt,
        Some("onnx") => return FileKind::Onnx,
        Some("caffemodel") => return FileKind::CaffeModel,
        _ => {}
    }
    // Text prototxts start with printable ASCII; ONNX begins with field 1
    // (ir_version, varint: 0x08) and caffemodels with field 1 (name, 0x0a) or 100.
    let printable = head.iter().take(256).all(|&b| b == b'\t' || b == b'\n' || b == b'\r' || (0x20..0x7f).contains(&b));
    if printable && !head.is_empty() {
        FileKind::Prototxt
    } else if head.first() == Some(&0x08) {
        FileKind::Onnx
    } else {
        FileKind::CaffeModel
    }
}

/// Load any supported model file into a graph. The file is opened once
/// (regular files only, or standard input as `-`; see `input`), its format
/// sniffed from the name and first bytes, then read: a prototxt whole (up to
/// its size cap, checked while reading), an ONNX model or a caffemodel mapped.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Graph, LoadError> {
    let opened = input::open_model(path)?;
    let name = opened.name.clone();
    let head = opened.head()?;
    match sniff_file_kind(&name, &head) {
        FileKind::Prototxt => {
            let bytes = opened.read_all(caffe::MAX_PROTOTXT_BYTES, "a prototxt")?;
            caffe::load_prototxt_bytes(&name, &bytes, options)
        }
        FileKind::Onnx => onnx::load_onnx_bytes(&name, &opened.data()?, options),
        FileKind::CaffeModel => caffe::load_caffemodel_bytes(&name, &opened.data()?, options),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_spec_with_and_without_name() {
        assert_eq!(
            InputSpec::parse("data=1x3x512x512").unwrap(),
            InputSpec { name: Some("data".into()), dims: vec![1, 3, 512, 512] }
        );
        assert_eq!(InputSpec::parse("2,3,8,8").unwrap().dims, vec![2, 3, 8, 8]);
        assert!(InputSpec::parse("data=1xAx3").is_err());
        assert!(InputSpec::parse("=1x3").is_err());
        assert!(InputSpec::parse("data=-1x3").is_err());
    }

    #[test]
    fn file_kinds_and_their_format() {
        assert_eq!(sniff_file_kind(Path::new("a.prototxt"), b""), FileKind::Prototxt);
        assert_eq!(sniff_file_kind(Path::new("a.bin"), b"name: \"net\""), FileKind::Prototxt);
        assert_eq!(sniff_file_kind(Path::new("a.bin"), &[0x08, 0x07]), FileKind::Onnx);
        assert_eq!(sniff_file_kind(Path::new("a.bin"), &[0x0a, 0x03]), FileKind::CaffeModel);
        assert_eq!(FileKind::CaffeModel.model_format(), ModelFormat::Caffe);
        assert_eq!(FileKind::Prototxt.model_format(), ModelFormat::Caffe);
        assert_eq!(FileKind::Onnx.model_format(), ModelFormat::Onnx);
    }

    #[test]
    fn dim_binding_parses() {
        assert_eq!(DimBinding::parse("batch=8").unwrap(), DimBinding { symbol: "batch".into(), value: 8 });
        assert!(DimBinding::parse("batch").is_err());
    }
}
