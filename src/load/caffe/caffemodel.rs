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
            scope: Default::default(),
            call: None,
        });
    }
    g.warn("a .caffemodel holds weights only: activation shapes need the prototxt (load it with --weights FILE)");
    g
}

fn read_layers(path: &Path) -> Result<Vec<StoredLayer>, LoadError> {
    let opened = crate::load::input::open_file(path)?;
    decode_layers(path, &opened.data()?)
}

/// Layers of a caffemodel, V1 and V2 together (the largest real net,
/// Inception-ResNet-v2, has 987; each layer with blobs becomes a node).
pub const MAX_LAYERS: u64 = 25_000;
/// Blobs of a caffemodel, all layers together (each becomes a weight tensor).
pub const MAX_BLOBS: u64 = 100_000;
/// Dims of one blob shape.
pub const MAX_RANK: u64 = 64;
/// One name or type string.
pub const MAX_STRING_BYTES: usize = 64 << 10;
/// Estimated memory of every message and string the decoder keeps.
pub const MAX_KEPT_BYTES: u64 = 40 << 20;

/// Counts, before prost decodes anything, what decoding would keep (layers,
/// blobs, dims, strings; payloads are stepped over) and refuses a file over
/// the limits — a small file of millions of empty layers or blobs, or one
/// 200 MiB name, decoded into gigabytes. The walk stops quietly where the wire
/// data goes wrong; the decoder then reports it, and decodes nothing past it.
fn check_budget(bytes: &[u8]) -> Result<usize, String> {
    use crate::load::onnx::proto::{field_iter, Field, Wire};
    use std::mem::size_of;
    let (mut layers, mut blobs, mut kept) = (0u64, 0u64, 0u64);
    let over = |what: String| format!("{what}; nnmem refuses caffemodels this large (docs/security.md)");
    let string = |f: &Field<'_>, kept: &mut u64| -> Result<(), String> {
        if f.bytes.len() > MAX_STRING_BYTES {
            return Err(over(format!("a name or type of {} bytes, more than nnmem's limit of {MAX_STRING_BYTES}", f.bytes.len())));
        }
        *kept += f.bytes.len() as u64 + size_of::<String>() as u64;
        Ok(())
    };
    let blob = |b: &[u8], kept: &mut u64, blobs: &mut u64| -> Result<(), String> {
        *blobs += 1;
        if *blobs > MAX_BLOBS {
            return Err(over(format!("more than {MAX_BLOBS} weight blobs")));
        }
        *kept += size_of::<BlobProto>() as u64 + 16;
        for f in field_iter(b).map_while(Result::ok).filter(|f| f.number == 7 && f.wire == Wire::Len) {
            let mut rank = 0u64;
            for d in field_iter(f.bytes).map_while(Result::ok).filter(|d| d.number == 1) {
                rank += match d.wire {
                    Wire::Len => d.bytes.iter().filter(|&&x| x < 0x80).count() as u64,
                    _ => 1,
                };
            }
            if rank > MAX_RANK {
                return Err(over(format!("a blob shape of more than {MAX_RANK} dims")));
            }
            *kept += 8 * rank;
        }
        Ok(())
    };
    for net_field in field_iter(bytes).map_while(Result::ok) {
        let layer_fields = match (net_field.number, net_field.wire) {
            (1, Wire::Len) => {
                string(&net_field, &mut kept)?;
                continue;
            }
            (2 | 100, Wire::Len) => net_field.bytes,
            _ => continue,
        };
        layers += 1;
        if layers > MAX_LAYERS {
            return Err(over(format!("more than {MAX_LAYERS} layers")));
        }
        kept += size_of::<LayerParameter>().max(size_of::<V1LayerParameter>()) as u64;
        let v1 = net_field.number == 2;
        for f in field_iter(layer_fields).map_while(Result::ok).filter(|f| f.wire == Wire::Len) {
            match (v1, f.number) {
                (false, 1..=4) | (true, 2..=4) => string(&f, &mut kept)?,
                (false, 7) | (true, 6) => blob(f.bytes, &mut kept, &mut blobs)?,
                (true, 1) => {
                    // A V0 layer inside: name 1, type 2, blobs 50.
                    kept += size_of::<V0LayerParameter>() as u64;
                    for g in field_iter(f.bytes).map_while(Result::ok).filter(|g| g.wire == Wire::Len) {
                        match g.number {
                            1 | 2 => string(&g, &mut kept)?,
                            50 => blob(g.bytes, &mut kept, &mut blobs)?,
                            _ => {}
                        }
                        if kept > MAX_KEPT_BYTES {
                            break;
                        }
                    }
                }
                _ => {}
            }
            if kept > MAX_KEPT_BYTES {
                break;
            }
        }
        if kept > MAX_KEPT_BYTES {
            return Err(over(format!(
                "decoding would keep more than {} MiB of layers, blobs and names (after {layers} layers)",
                MAX_KEPT_BYTES >> 20
            )));
        }
    }
    Ok(layers as usize)
}

fn decode_layers(path: &Path, bytes: &[u8]) -> Result<Vec<StoredLayer>, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Format { path: path.to_path_buf(), message: "the file is empty, not a caffemodel".into() });
    }
    check_budget(bytes).map_err(|message| LoadError::Format { path: path.to_path_buf(), message })?;
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
