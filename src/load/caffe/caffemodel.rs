//! Binary `.caffemodel` reader: layer names, types and weight-blob shapes,
//! decoded with prost from a memory map through a reduced schema.
//!
//! The schema declares only the fields below (numbers from Caffe's published
//! `caffe.proto`). A blob's payload (`data` 5, `diff` 6, `double_data` 8,
//! `double_diff` 9) is not declared, so prost skips it by moving its cursor and
//! the weight pages are never read: a 240 MB file decodes in well under a
//! millisecond.

use std::path::Path;

use prost::Message;

use crate::graph::{DType, Graph, ModelFormat, Node, Shape, Tensor, TensorKind};
use crate::load::{LoadError, LoadOptions};
use crate::ops::{Op, UnknownOp};

/// NetParameter: name 1, layers 2 (V1), layer 100 (V2).
#[derive(Clone, PartialEq, Message)]
struct NetParameter {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, repeated, tag = "2")]
    layers: Vec<V1LayerParameter>,
    #[prost(message, repeated, tag = "100")]
    layer: Vec<LayerParameter>,
}

/// LayerParameter (V2): name 1, type 2, bottom 3, top 4, blobs 7.
#[derive(Clone, PartialEq, Message)]
struct LayerParameter {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    r#type: String,
    #[prost(string, repeated, tag = "3")]
    bottom: Vec<String>,
    #[prost(string, repeated, tag = "4")]
    top: Vec<String>,
    #[prost(message, repeated, tag = "7")]
    blobs: Vec<BlobProto>,
}

/// V1LayerParameter: layer 1 (a V0 layer inside), bottom 2, top 3, name 4,
/// type 5 (enum), blobs 6.
#[derive(Clone, PartialEq, Message)]
struct V1LayerParameter {
    #[prost(message, optional, tag = "1")]
    layer: Option<V0LayerParameter>,
    #[prost(string, repeated, tag = "2")]
    bottom: Vec<String>,
    #[prost(string, repeated, tag = "3")]
    top: Vec<String>,
    #[prost(string, tag = "4")]
    name: String,
    #[prost(int32, tag = "5")]
    r#type: i32,
    #[prost(message, repeated, tag = "6")]
    blobs: Vec<BlobProto>,
}

/// V0LayerParameter (2014 and older files): name 1, type 2, blobs 50.
#[derive(Clone, PartialEq, Message)]
struct V0LayerParameter {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    r#type: String,
    #[prost(message, repeated, tag = "50")]
    blobs: Vec<BlobProto>,
}

/// BlobProto header: num 1, channels 2, height 3, width 4 (legacy 4-D), shape 7.
#[derive(Clone, PartialEq, Message)]
struct BlobProto {
    #[prost(int32, tag = "1")]
    num: i32,
    #[prost(int32, tag = "2")]
    channels: i32,
    #[prost(int32, tag = "3")]
    height: i32,
    #[prost(int32, tag = "4")]
    width: i32,
    #[prost(message, optional, tag = "7")]
    shape: Option<BlobShape>,
}

/// BlobShape: dim 1 (packed int64).
#[derive(Clone, PartialEq, Message)]
struct BlobShape {
    #[prost(int64, repeated, tag = "1")]
    dim: Vec<i64>,
}

/// One layer of a caffemodel: name, type as Caffe spells it, blob shapes.
struct StoredLayer {
    name: String,
    type_name: String,
    blobs: Vec<Vec<u64>>,
}

/// Layer names and their blob shapes, in file order (layers without blobs included).
pub fn caffemodel_blob_shapes(path: &Path) -> Result<Vec<(String, Vec<Vec<u64>>)>, LoadError> {
    Ok(read_layers(path)?.into_iter().map(|l| (l.name, l.blobs)).collect())
}

/// A graph of the stored weights: one node per layer that holds blobs, each
/// blob a parameter tensor; no activations (a caffemodel has no input shapes).
pub fn load_caffemodel(path: &Path, _options: &LoadOptions) -> Result<Graph, LoadError> {
    Ok(weights_graph(path, read_layers(path)?))
}

/// `load_caffemodel` for a caffemodel held in memory; `path` names it in messages.
pub fn load_caffemodel_bytes(path: &Path, bytes: &[u8], _options: &LoadOptions) -> Result<Graph, LoadError> {
    Ok(weights_graph(path, decode_layers(path, bytes)?))
}

fn weights_graph(path: &Path, layers: Vec<StoredLayer>) -> Graph {
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut g = Graph::new(name, ModelFormat::Caffe);
    for layer in layers.into_iter().filter(|l| !l.blobs.is_empty()) {
        // Caffe's BatchNorm stores mean, variance and a scale factor: statistics, not weights.
        let trainable = layer.type_name != "BatchNorm" && layer.type_name != "BATCHNORM";
        let params = layer
            .blobs
            .iter()
            .enumerate()
            .map(|(i, dims)| {
                g.add_tensor(Tensor {
                    name: format!("{}/{i}", layer.name),
                    shape: Some(Shape(dims.clone())),
                    unknown: None,
                    dtype: DType::F32,
                    kind: TensorKind::Param,
                    trainable,
                    producer: None,
                })
            })
            .collect();
        g.nodes.push(Node {
            name: layer.name,
            source_type: layer.type_name.clone(),
            op: Op::Unknown(UnknownOp { type_name: layer.type_name }),
            inputs: Vec::new(),
            params,
            outputs: Vec::new(),
            in_place: false,
            attrs: Vec::new(),
            scope: Vec::new(),
            call: None,
        });
    }
    g.warn("a .caffemodel holds weights only: activation shapes need the prototxt (load it with --weights FILE)");
    g
}

fn read_layers(path: &Path) -> Result<Vec<StoredLayer>, LoadError> {
    let io = |cause| LoadError::Io { path: path.to_path_buf(), cause };
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.len() == 0 {
        return Err(LoadError::Format { path: path.to_path_buf(), message: "the file is empty, not a caffemodel".into() });
    }
    // SAFETY: read-only map, dropped before returning; see the ONNX loader for
    // the truncation caveat that every memory-mapped reader shares.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    decode_layers(path, &map)
}

fn decode_layers(path: &Path, bytes: &[u8]) -> Result<Vec<StoredLayer>, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Format { path: path.to_path_buf(), message: "the file is empty, not a caffemodel".into() });
    }
    let net = NetParameter::decode(bytes).map_err(|e| LoadError::Format {
        path: path.to_path_buf(),
        message: format!("not a valid caffemodel (binary NetParameter): {e}"),
    })?;
    let mut out = Vec::with_capacity(net.layer.len() + net.layers.len());
    for l in net.layer {
        let blobs = blob_shapes(path, &l.name, &l.blobs)?;
        out.push(StoredLayer { name: l.name, type_name: l.r#type, blobs });
    }
    for l in net.layers {
        // A V1 entry may wrap a V0 layer that holds the name, type and blobs.
        let (name, type_name, blobs) = match (&l.layer, l.name.is_empty()) {
            (Some(v0), true) => (v0.name.clone(), v0.r#type.clone(), &v0.blobs),
            _ => (l.name.clone(), v1_type_name(l.r#type).to_string(), &l.blobs),
        };
        let blobs = blob_shapes(path, &name, blobs)?;
        out.push(StoredLayer { name, type_name, blobs });
    }
    Ok(out)
}

fn blob_shapes(path: &Path, layer: &str, blobs: &[BlobProto]) -> Result<Vec<Vec<u64>>, LoadError> {
    blobs
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let dims: Vec<i64> = match &b.shape {
                Some(s) => s.dim.clone(),
                None => vec![b.num.into(), b.channels.into(), b.height.into(), b.width.into()],
            };
            dims.iter()
                .map(|&d| u64::try_from(d).ok())
                .collect::<Option<Vec<u64>>>()
                .ok_or_else(|| LoadError::Model {
                    path: path.to_path_buf(),
                    location: format!("layer \"{layer}\""),
                    message: format!("blob {i} has a negative dimension ({dims:?})"),
                })
        })
        .collect()
}

/// V1LayerParameter.LayerType names (caffe.proto enum values).
fn v1_type_name(t: i32) -> &'static str {
    match t {
        0 => "NONE",
        1 => "ACCURACY",
        2 => "BNLL",
        3 => "CONCAT",
        4 => "CONVOLUTION",
        5 => "DATA",
        6 => "DROPOUT",
        7 => "EUCLIDEAN_LOSS",
        8 => "FLATTEN",
        9 => "HDF5_DATA",
        10 => "HDF5_OUTPUT",
        11 => "IM2COL",
        12 => "IMAGE_DATA",
        13 => "INFOGAIN_LOSS",
        14 => "INNER_PRODUCT",
        15 => "LRN",
        16 => "MULTINOMIAL_LOGISTIC_LOSS",
        17 => "POOLING",
        18 => "RELU",
        19 => "SIGMOID",
        20 => "SOFTMAX",
        21 => "SOFTMAX_LOSS",
        22 => "SPLIT",
        23 => "TANH",
        24 => "WINDOW_DATA",
        25 => "ELTWISE",
        26 => "POWER",
        27 => "SIGMOID_CROSS_ENTROPY_LOSS",
        28 => "HINGE_LOSS",
        29 => "MEMORY_DATA",
        30 => "ARGMAX",
        31 => "THRESHOLD",
        32 => "DUMMY_DATA",
        33 => "SLICE",
        34 => "MVN",
        35 => "ABSVAL",
        36 => "SILENCE",
        37 => "CONTRASTIVE_LOSS",
        38 => "EXP",
        39 => "DECONVOLUTION",
        _ => "UNKNOWN_V1_TYPE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes a small V2 net with one conv layer whose blob carries 1 MB of data.
    fn v2_net() -> Vec<u8> {
        #[derive(Clone, PartialEq, Message)]
        struct FullBlob {
            #[prost(float, repeated, tag = "5")]
            data: Vec<f32>,
            #[prost(message, optional, tag = "7")]
            shape: Option<BlobShape>,
        }
        #[derive(Clone, PartialEq, Message)]
        struct FullLayer {
            #[prost(string, tag = "1")]
            name: String,
            #[prost(string, tag = "2")]
            r#type: String,
            #[prost(message, repeated, tag = "7")]
            blobs: Vec<FullBlob>,
        }
        #[derive(Clone, PartialEq, Message)]
        struct FullNet {
            #[prost(message, repeated, tag = "100")]
            layer: Vec<FullLayer>,
        }
        FullNet {
            layer: vec![FullLayer {
                name: "conv1".into(),
                r#type: "Convolution".into(),
                blobs: vec![
                    FullBlob { data: vec![0.5; 256 * 1024], shape: Some(BlobShape { dim: vec![64, 64, 8, 8] }) },
                    FullBlob { data: vec![0.0; 64], shape: Some(BlobShape { dim: vec![64] }) },
                ],
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn blob_shapes_without_payload() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("net.caffemodel");
        std::fs::write(&p, v2_net()).unwrap();
        let shapes = caffemodel_blob_shapes(&p).unwrap();
        assert_eq!(shapes, vec![("conv1".to_string(), vec![vec![64, 64, 8, 8], vec![64]])]);
        let g = load_caffemodel(&p, &LoadOptions::default()).unwrap();
        assert_eq!(g.param_totals().params, 64 * 64 * 8 * 8 + 64);
    }

    #[test]
    fn truncated_file_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cut.caffemodel");
        let bytes = v2_net();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(caffemodel_blob_shapes(&p), Err(LoadError::Format { .. })));
    }
}
