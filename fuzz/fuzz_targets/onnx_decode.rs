//! The ONNX wire layer: nnmem's field walker over every nested message (depth
//! capped here, as any recursive walker must be) and the reduced prost schema.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nnmem::load::onnx::budget;
use nnmem::load::onnx::proto::{self, GraphProto, ModelProto, NodeMsg, NodeProto, TensorProto, ValueInfoProto, Wire};
use prost::Message;

fn walk(buf: &[u8], depth: usize) {
    let Ok(fields) = proto::fields(buf) else { return };
    for f in fields {
        match f.wire {
            Wire::Len => {
                assert!(f.bytes.len() <= buf.len());
                if depth < 8 {
                    walk(f.bytes, depth + 1);
                }
            }
            Wire::Fixed64 => assert_eq!(f.bytes.len(), 8),
            Wire::Fixed32 => assert_eq!(f.bytes.len(), 4),
            Wire::Varint => assert!((1..=10).contains(&f.bytes.len())),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    walk(data, 0);
    // The load budget's walk: never panics, and what it accepts is within its limits.
    if let Ok(t) = budget::walk(data) {
        assert!(t.nodes <= budget::MAX_NODES && t.kept <= budget::MAX_KEPT_BYTES, "{t:?}");
        assert!(t.opset_imports <= budget::MAX_OPSET_IMPORTS && t.attribute_string_bytes <= budget::MAX_ATTRIBUTE_STRING_BYTES);
        assert!(t.external.len() <= budget::MAX_EXTERNAL_LISTED);
    }
    let _ = ModelProto::decode(data);
    if let Ok(g) = GraphProto::decode(data) {
        for v in g.input.iter().chain(&g.output).chain(&g.value_info) {
            let _ = v.dims();
            let _ = v.elem_type().and_then(proto::dtype_of);
        }
        for t in &g.initializer {
            let _ = t.external_location();
        }
    }
    // The hand-read plain form of a node gives exactly what prost gives, errors
    // included. Compared as printed: a NaN float attribute is never == itself.
    let node = NodeProto::decode(data).map_err(|e| e.to_string());
    let by_prost = NodeMsg::decode(data).map(NodeProto::from).map_err(|e| e.to_string());
    assert_eq!(format!("{node:?}"), format!("{by_prost:?}"));
    let _ = TensorProto::decode(data);
    if let Ok(v) = ValueInfoProto::decode(data) {
        let _ = v.dims();
    }
});
