//! `explain`: from the naive arithmetic people do first (learned weights
//! plus every neuron, times the element size) to the profile's peak, one
//! correction at a time. The steps telescope, so they add up exactly to the
//! peak; the rules behind each are in docs/memory-model.md ("nnmem explain").

use crate::graph::Graph;
use crate::memory::{self, Category, ConvWorkspace, MemorySettings, Scenario, ScenarioReport};
use crate::units::format_count;

/// One step: what it adds and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What the step adds, in a few words.
    pub what: String,
    /// The rule behind it (docs/memory-model.md's wording).
    pub why: String,
    /// Bytes this step adds (negative: removes).
    pub delta: i128,
    /// Running total after the step.
    pub total: u64,
}

/// The scenario explained: style transfer or training when asked, else training.
pub fn chosen(settings: &MemorySettings) -> Scenario {
    if settings.scenarios.contains(&Scenario::StyleTransfer) {
        Scenario::StyleTransfer
    } else if settings.scenarios.contains(&Scenario::Training) {
        Scenario::Training
    } else if settings.scenarios == [Scenario::Decode] {
        Scenario::Decode
    } else {
        Scenario::Inference
    }
}

/// The steps from the naive figure to the peak of `scenario` under `settings`.
pub fn steps(graph: &Graph, settings: &MemorySettings, scenario: Scenario) -> (Vec<Step>, ScenarioReport) {
    let mut one = settings.clone();
    one.scenarios = vec![scenario];
    let full = memory::analyse(graph, &one).scenarios.remove(0);
    // The same run with one worker, to isolate per-thread copies.
    let mut single = one.clone();
    single.threads = 1;
    let base = memory::analyse(graph, &single).scenarios.remove(0);
    let b = &base.peak_breakdown;
    let size = settings.dtype.size_bytes();
    let learned = graph.param_totals().params;
    let naive_w = learned.saturating_mul(size);
    let neurons = base.naive.activations_bytes;
    let mut out = Vec::new();
    let mut total: u64 = 0;
    let mut push = |what: String, why: String, delta: i128| {
        total = (i128::from(total) + delta).max(0) as u64;
        out.push(Step { what, why, delta, total });
    };
    push(
        "learned weights".into(),
        format!("{} parameters × {size} B", format_count(learned)),
        i128::from(naive_w),
    );
    push(
        "every neuron once".into(),
        format!("all layer outputs × {size} B, no reuse (what Netscope, torchsummary and Caffe's log add up)"),
        i128::from(neurons),
    );
    push(
        "weights as held".into(),
        match scenario {
            Scenario::StyleTransfer => "only the layers up to the deepest loss are loaded; running statistics and master copies count".into(),
            _ => "running statistics, half-precision compute copies and shared weights counted as the run holds them".into(),
        },
        i128::from(b.get(Category::Weights)) - i128::from(naive_w),
    );
    push(
        "the input".into(),
        match scenario {
            Scenario::StyleTransfer => "the image, and the style and content targets".into(),
            Scenario::Decode => "the new tokens and the past KV cache are resident".into(),
            _ => "the input batch itself is resident".into(),
        },
        i128::from(b.get(Category::Inputs)),
    );
    let alive = b.get(Category::Activations).saturating_add(b.get(Category::SavedForBackward));
    push(
        "activations alive at the peak".into(),
        match scenario {
            Scenario::Inference | Scenario::Decode => "only the outputs still to be read are alive; in-place layers share storage".into(),
            _ if settings.profile.persistent => {
                "every module or blob keeps its output for the run; in-place layers share".into()
            }
            _ => "what backward needs is kept (inputs of conv/linear, ReLU outputs, int64 pool indices, masks), the rest is freed; the big pre-pooling maps dominate".into(),
        },
        i128::from(alive) - i128::from(neurons),
    );
    push(
        "activation gradients".into(),
        match scenario {
            Scenario::Inference | Scenario::Decode => "none in inference".into(),
            Scenario::StyleTransfer => "gradients of the loss feature maps coexist with the saved maps (Gram and content terms)".into(),
            _ => "gradients flowing back through the activations at the peak step".into(),
        },
        i128::from(b.get(Category::ActivationGrads)),
    );
    push(
        "weight gradients and optimizer state".into(),
        match scenario {
            Scenario::Inference | Scenario::Decode => "none in inference".into(),
            Scenario::StyleTransfer => format!("the image's gradient and {} state ({} image-sized vectors)", settings.optimizer, settings.optimizer.state_copies()),
            _ => format!("one gradient per learned weight, {} keeps {} more copies", settings.optimizer, settings.optimizer.state_copies()),
        },
        i128::from(b.get(Category::WeightGrads)) + i128::from(b.get(Category::OptimizerState)),
    );
    push(
        "convolution scratch".into(),
        match settings.profile.conv_workspace {
            ConvWorkspace::OneDnnBlocked => "oneDNN's blocked copies of input, weights and output around each convolution".into(),
            ConvWorkspace::PerModuleColumns { .. } => "im2col: every conv module keeps C_in·kh·kw × H_out·W_out, ×(kh·kw) its input".into(),
            ConvWorkspace::SharedColumn => "im2col: one column buffer, the largest conv's C_in·kh·kw × H_out·W_out".into(),
            ConvWorkspace::Im2colPerImage | ConvWorkspace::Im2colPerThread => "im2col column buffers, ×(kh·kw) the input".into(),
            ConvWorkspace::CudnnCapped { .. } => "cuDNN workspace, capped per convolution".into(),
            ConvWorkspace::PaddedCopies => "zero-padded copies of conv inputs (and deltas); pool argmax maps".into(),
            ConvWorkspace::None => "none under this profile".into(),
        },
        i128::from(b.get(Category::Workspace)),
    );
    push(
        format!("per-thread copies (×{} workers)", one.threads),
        if settings.profile.per_thread_copies {
            format!("each of {} workers holds its own activations, deltas, weight gradients and scratch", one.threads)
        } else {
            "none: this profile shares buffers between threads".into()
        },
        i128::from(full.peak_bytes) - i128::from(base.peak_bytes),
    );
    (out, full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_add_up_to_the_peak() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/caffe/seed_cnn.prototxt");
        let graph = crate::load::load(&path, &Default::default()).expect("seed loads");
        for profile in crate::memory::Profile::NAMES {
            let settings = MemorySettings {
                profile: crate::memory::Profile::by_name(profile).unwrap(),
                threads: 8,
                ..Default::default()
            };
            for sc in [Scenario::Inference, Scenario::Training] {
                let (steps, report) = steps(&graph, &settings, sc);
                let sum: i128 = steps.iter().map(|s| s.delta).sum();
                assert_eq!(sum, i128::from(report.peak_bytes), "{profile} {sc:?}");
                assert_eq!(steps.last().unwrap().total, report.peak_bytes);
            }
        }
    }
}
