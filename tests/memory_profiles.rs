//! Timeline, style-transfer and backend-profile rules on real fixtures, through the library.

use std::path::PathBuf;

use nnmem::load::{load, InputSpec, LoadOptions};
use nnmem::memory::{analyse, Category, LossLayers, MemorySettings, Optimizer, Phase, Profile, Scenario};

fn fixture(name: &str, input: Option<&str>) -> nnmem::graph::Graph {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/caffe").join(name);
    let mut o = LoadOptions::default();
    if let Some(i) = input {
        o.inputs.push(InputSpec::parse(i).unwrap());
    }
    load(&path, &o).expect("fixture loads")
}

#[test]
fn timeline_follows_execution_order_and_matches_live_bytes() {
    let g = fixture("seed_cnn.prototxt", None);
    let s = MemorySettings { scenarios: vec![Scenario::Training], ..Default::default() };
    let r = &analyse(&g, &s).scenarios[0];
    let fwd: Vec<_> = r.timeline.iter().filter(|t| t.phase == Phase::Forward).collect();
    let bwd: Vec<_> = r.timeline.iter().filter(|t| t.phase == Phase::Backward).collect();
    assert!(fwd.windows(2).all(|w| w[0].node < w[1].node));
    assert!(bwd.windows(2).all(|w| w[0].node > w[1].node));
    for t in &fwd {
        assert_eq!(t.breakdown.total(), r.nodes[t.node.unwrap()].live_bytes_after);
    }
    for t in &bwd {
        assert_eq!(Some(t.breakdown.total()), r.nodes[t.node.unwrap()].live_bytes_after_backward);
    }
    // Nothing on the timeline exceeds the peak (which also sees transients),
    // and the peak is one step's high point.
    assert!(r.timeline.iter().all(|t| t.breakdown.total() <= t.during.total() && t.during.total() <= r.peak_bytes));
    assert!(r.timeline.iter().any(|t| t.during.total() == r.peak_bytes));
    // The loss and the optimizer step are steps of their own.
    assert_eq!(r.timeline.last().unwrap().phase, Phase::Step);
}

#[test]
fn persistent_profiles_never_free() {
    let g = fixture("seed_cnn.prototxt", None);
    for p in [Profile::caffe(), Profile::torch_nn(), Profile::tiny_dnn()] {
        let s = MemorySettings { scenarios: vec![Scenario::Training], profile: p.clone(), threads: 2, ..Default::default() };
        let r = &analyse(&g, &s).scenarios[0];
        assert!(r.timeline.windows(2).all(|w| w[0].breakdown.total() <= w[1].breakdown.total()), "{}", p.name);
    }
}

#[test]
fn tiny_dnn_copies_scale_with_threads_not_batch() {
    let g1 = fixture("seed_cnn.prototxt", Some("data=1x3x512x512"));
    let g4 = fixture("seed_cnn.prototxt", Some("data=4x3x512x512"));
    let at = |g: &nnmem::graph::Graph, t: u32| {
        let s = MemorySettings { scenarios: vec![Scenario::Training], profile: Profile::tiny_dnn(), threads: t, ..Default::default() };
        let r = &analyse(g, &s).scenarios[0];
        r.peak_bytes - r.peak_breakdown.get(Category::Inputs)
    };
    assert_eq!(at(&g1, 4), at(&g4, 4));
    // Activations, deltas, weight gradients and scratch: all ×threads; weights once.
    let w = analyse(&g1, &MemorySettings { scenarios: vec![Scenario::Training], profile: Profile::tiny_dnn(), threads: 1, ..Default::default() }).scenarios[0]
        .peak_breakdown
        .get(Category::Weights);
    assert_eq!(at(&g1, 8) - w, 8 * (at(&g1, 1) - w));
}

#[test]
fn caffe_shares_one_column_buffer_and_torch_nn_keeps_one_per_conv() {
    let g = fixture("vgg19_neural_style_v2.prototxt", Some("data=1x3x64x64"));
    let inf = |p: Profile| analyse(&g, &MemorySettings { scenarios: vec![Scenario::Inference], profile: p, ..Default::default() }).scenarios.remove(0);
    // Largest column: conv1_2, 64·3·3 × 64·64 elements.
    let largest = 64 * 9 * 64 * 64 * 4;
    let caffe = inf(Profile::caffe());
    assert!(caffe.peak_breakdown.get(Category::Workspace) >= largest);
    assert!(caffe.peak_breakdown.get(Category::Workspace) < 2 * largest);
    let nn = inf(Profile::torch_nn());
    assert!(nn.peak_breakdown.get(Category::Workspace) > 3 * largest);
}

#[test]
fn style_transfer_state_is_image_sized() {
    let g = fixture("vgg19_neural_style_v2.prototxt", Some("data=1x3x128x128"));
    let run = |o: Optimizer| {
        let s = MemorySettings { scenarios: vec![Scenario::StyleTransfer], optimizer: o, ..Default::default() };
        analyse(&g, &s).scenarios.remove(0)
    };
    let image = 3 * 128 * 128 * 4u64;
    assert_eq!(run(Optimizer::Adam).peak_breakdown.get(Category::OptimizerState), 2 * image);
    assert_eq!(run(Optimizer::Lbfgs { history: 5 }).peak_breakdown.get(Category::OptimizerState), 15 * image);
    let sgd = run(Optimizer::Sgd);
    assert_eq!(sgd.settings.style_layers, ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]);
    assert_eq!(sgd.settings.content_layers, ["relu4_2"]);
    // Only conv1_2's and relu1_1's Gram path: moving the loss shallower lowers the peak.
    let s = MemorySettings {
        scenarios: vec![Scenario::StyleTransfer],
        loss_layers: LossLayers { style: vec!["relu1_1".into()], content: vec!["relu2_1".into()], placement: None },
        ..Default::default()
    };
    let shallow = analyse(&g, &s).scenarios.remove(0);
    assert!(shallow.peak_bytes < sgd.peak_bytes);
    assert!(shallow.peak_breakdown.get(Category::Weights) < sgd.peak_breakdown.get(Category::Weights));
}
