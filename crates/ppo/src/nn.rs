//! Small functional neural-network toolkit on burn: the CNN+MLP trunk shared by the policy and the
//! reward model, CleanRL-style orthogonal init, Adam with PyTorch semantics, and a training step
//! with global-norm gradient clipping.
//!
//! Parameters are plain (non-autodiff) flat `Tensor<1>`s. A training step wraps them as fresh
//! autodiff leaves, runs the loss closure, reads the leaf gradients and applies Adam on the plain
//! tensors. Keeping the optimiser in this crate (instead of burn-optim) gives global-norm clipping
//! (burn's built-in clipping is per tensor), a state keyed by parameter name (burn keys it by
//! random `ParamId`s and silently re-initialises state it cannot match) and exact resumes.

use std::collections::BTreeMap;

use burn::tensor::activation::relu;
use burn::tensor::module::{conv2d, linear};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::container::HostTensor;
use crate::rng::HostRng;

/// Which burn backend runs the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// burn-flex: pure-Rust CPU backend (default; multi-threaded through rayon).
    Flex,
    /// burn-tch on LibTorch, CPU (needs the `tch` cargo feature).
    LibTorchCpu,
    /// burn-tch on LibTorch, CUDA device `n` (needs the `tch` feature and a CUDA libtorch).
    LibTorchCuda(usize),
}

impl Backend {
    /// Parses `flex`, `tch-cpu`, `tch-cuda` or `tch-cuda:N`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "flex" => Ok(Self::Flex),
            "tch-cpu" => Ok(Self::LibTorchCpu),
            "tch-cuda" => Ok(Self::LibTorchCuda(0)),
            _ => match s.strip_prefix("tch-cuda:") {
                Some(n) => n
                    .parse()
                    .map(Self::LibTorchCuda)
                    .map_err(|_| format!("bad CUDA index in backend `{s}`")),
                None => Err(format!(
                    "unknown backend `{s}` (expected flex, tch-cpu, tch-cuda or tch-cuda:N)"
                )),
            },
        }
    }

    /// Short name, the inverse of [`Backend::parse`].
    pub fn name(&self) -> String {
        match self {
            Self::Flex => "flex".into(),
            Self::LibTorchCpu => "tch-cpu".into(),
            Self::LibTorchCuda(n) => format!("tch-cuda:{n}"),
        }
    }

    /// Whether this build can run the backend.
    pub fn available(&self) -> bool {
        match self {
            Self::Flex => true,
            Self::LibTorchCpu | Self::LibTorchCuda(_) => cfg!(feature = "tch"),
        }
    }

    /// The burn device (without autodiff).
    pub fn device(&self) -> Result<Device, String> {
        match self {
            Self::Flex => Ok(Device::flex()),
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            // burn-tch is deprecated upstream but is the working GPU path here
            Self::LibTorchCpu => Ok(Device::libtorch()),
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            Self::LibTorchCuda(n) => {
                // The GPU does the math; libtorch's OpenMP pool (one spinning thread per
                // core after every op) only took the cores from the env threads: on a
                // 16-core H100 box it made env stepping 5x slower.
                static ONE_THREAD: std::sync::Once = std::sync::Once::new();
                ONE_THREAD.call_once(|| tch::set_num_threads(1));
                Ok(Device::libtorch_cuda(*n))
            }
            #[cfg(not(feature = "tch"))]
            other => Err(format!(
                "backend `{}` needs the `tch` cargo feature of crate ppo",
                other.name()
            )),
        }
    }
}

/// One convolution layer of the frame encoder (square kernel, no padding).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvLayer {
    /// Output channels.
    pub out_channels: usize,
    /// Kernel size (square).
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
}

/// Shapes of the shared trunk: conv stack over frames, MLP over features, one hidden layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    /// Input channels (stacked greyscale frames).
    pub frame_stack: usize,
    /// Frame height in pixels.
    pub height: usize,
    /// Frame width in pixels.
    pub width: usize,
    /// Convolution stack, applied in order, each followed by ReLU.
    pub convs: Vec<ConvLayer>,
    /// Length of the feature vector (0 = frames only).
    pub features: usize,
    /// Width of the feature embedding layer (0 = concatenate raw features).
    pub feature_hidden: usize,
    /// Width of the shared hidden layer after concatenation.
    pub hidden: usize,
}

impl EncoderConfig {
    /// Nature-CNN (8x8/4 -> 32, 4x4/2 -> 64, 3x3/1 -> 64) with a 64-wide feature embedding and a
    /// 512 hidden layer.
    pub fn nature(frame_stack: usize, height: usize, width: usize, features: usize) -> Self {
        Self {
            frame_stack,
            height,
            width,
            convs: vec![
                ConvLayer {
                    out_channels: 32,
                    kernel: 8,
                    stride: 4,
                },
                ConvLayer {
                    out_channels: 64,
                    kernel: 4,
                    stride: 2,
                },
                ConvLayer {
                    out_channels: 64,
                    kernel: 3,
                    stride: 1,
                },
            ],
            features,
            feature_hidden: 64,
            hidden: 512,
        }
    }

    /// Bytes of one observation's frames (`frame_stack * height * width`).
    pub fn frame_len(&self) -> usize {
        self.frame_stack * self.height * self.width
    }

    /// Output (channels, height, width) of the conv stack, or an error naming the layer that
    /// does not fit.
    pub fn conv_output(&self) -> Result<(usize, usize, usize), String> {
        let (mut c, mut h, mut w) = (self.frame_stack, self.height, self.width);
        for (i, l) in self.convs.iter().enumerate() {
            if l.kernel == 0 || l.stride == 0 || l.out_channels == 0 {
                return Err(format!(
                    "convs[{i}]: kernel, stride and out_channels must be > 0"
                ));
            }
            if h < l.kernel || w < l.kernel {
                return Err(format!(
                    "convs[{i}]: kernel {} does not fit a {h}x{w} input",
                    l.kernel
                ));
            }
            h = (h - l.kernel) / l.stride + 1;
            w = (w - l.kernel) / l.stride + 1;
            c = l.out_channels;
        }
        Ok((c, h, w))
    }

    /// Checks that all sizes are usable.
    pub fn validate(&self) -> Result<(), String> {
        if self.frame_stack == 0 || self.height == 0 || self.width == 0 {
            return Err("frame_stack, height and width must be > 0".into());
        }
        if self.hidden == 0 {
            return Err("hidden must be > 0".into());
        }
        self.conv_output().map(|_| ())
    }

    fn flat_conv(&self) -> usize {
        let (c, h, w) = self.conv_output().expect("validated config");
        c * h * w
    }

    fn feature_out(&self) -> usize {
        match (self.features, self.feature_hidden) {
            (0, _) => 0,
            (d, 0) => d,
            (_, h) => h,
        }
    }
}

/// How a parameter is initialised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Orthogonal over the `[rows, cols]` view, scaled by `gain` (PyTorch `orthogonal_`).
    Orthogonal {
        /// Output rows of the PyTorch-layout matrix.
        rows: usize,
        /// Inputs per row.
        cols: usize,
        /// Scale.
        gain: f64,
        /// Stored transposed (`[cols, rows]`), as burn's `linear` expects `[in, out]`.
        transposed: bool,
    },
    /// All zeros (biases, as CleanRL's `layer_init` does).
    Zeros,
}

/// A named parameter and its shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Name used in checkpoints (e.g. `conv0.weight`).
    pub name: String,
    /// Shape as used in the forward pass.
    pub shape: Vec<usize>,
    /// Initialiser.
    pub init: Init,
}

impl ParamSpec {
    /// Number of scalars.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// An output head of the trunk.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadSpec {
    /// Name (parameters are `head.<name>.weight/bias`).
    pub name: String,
    /// Output width.
    pub size: usize,
    /// Orthogonal init gain (CleanRL: 0.01 policy, 1 value).
    pub gain: f64,
}

/// The CNN+MLP network: trunk plus linear heads.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvMlp {
    /// Trunk shapes.
    pub encoder: EncoderConfig,
    /// Output heads.
    pub heads: Vec<HeadSpec>,
}

fn linear_specs(out: &mut Vec<ParamSpec>, name: &str, fan_in: usize, fan_out: usize, gain: f64) {
    out.push(ParamSpec {
        name: format!("{name}.weight"),
        shape: vec![fan_in, fan_out],
        init: Init::Orthogonal {
            rows: fan_out,
            cols: fan_in,
            gain,
            transposed: true,
        },
    });
    out.push(ParamSpec {
        name: format!("{name}.bias"),
        shape: vec![fan_out],
        init: Init::Zeros,
    });
}

impl ConvMlp {
    /// All parameters, in forward order.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let e = &self.encoder;
        let relu_gain = 2f64.sqrt();
        let mut specs = Vec::new();
        let mut c_in = e.frame_stack;
        for (i, l) in e.convs.iter().enumerate() {
            let cols = c_in * l.kernel * l.kernel;
            specs.push(ParamSpec {
                name: format!("conv{i}.weight"),
                shape: vec![l.out_channels, c_in, l.kernel, l.kernel],
                init: Init::Orthogonal {
                    rows: l.out_channels,
                    cols,
                    gain: relu_gain,
                    transposed: false,
                },
            });
            specs.push(ParamSpec {
                name: format!("conv{i}.bias"),
                shape: vec![l.out_channels],
                init: Init::Zeros,
            });
            c_in = l.out_channels;
        }
        if e.features > 0 && e.feature_hidden > 0 {
            linear_specs(&mut specs, "feat", e.features, e.feature_hidden, relu_gain);
        }
        linear_specs(
            &mut specs,
            "fc",
            e.flat_conv() + e.feature_out(),
            e.hidden,
            relu_gain,
        );
        for h in &self.heads {
            linear_specs(
                &mut specs,
                &format!("head.{}", h.name),
                e.hidden,
                h.size,
                h.gain,
            );
        }
        specs
    }

    /// Forward pass. `frames` is `[B, C, H, W]` scaled to [0, 1]; `features` is `[B, D]`
    /// (ignored when the config has no features). Returns one `[B, size]` tensor per head.
    pub fn forward(
        &self,
        params: &[Tensor<1>],
        frames: Tensor<4>,
        features: Tensor<2>,
    ) -> Vec<Tensor<2>> {
        let e = &self.encoder;
        let mut i = 0;
        let mut x = frames;
        let mut c_in = e.frame_stack;
        for l in &e.convs {
            let w = params[i]
                .clone()
                .reshape([l.out_channels, c_in, l.kernel, l.kernel]);
            let b = params[i + 1].clone();
            let opts = ConvOptions::new([l.stride, l.stride], [0, 0], [1, 1], 1);
            x = relu(conv2d(x, w, Some(b), opts));
            c_in = l.out_channels;
            i += 2;
        }
        let [batch, c, h, w] = x.dims();
        let mut z = x.reshape([batch, c * h * w]);
        if e.features > 0 {
            let mut f = features;
            if e.feature_hidden > 0 {
                let w = params[i].clone().reshape([e.features, e.feature_hidden]);
                f = relu(linear(f, w, Some(params[i + 1].clone())));
                i += 2;
            }
            z = Tensor::cat(vec![z, f], 1);
        }
        let fan_in = e.flat_conv() + e.feature_out();
        let w = params[i].clone().reshape([fan_in, e.hidden]);
        z = relu(linear(z, w, Some(params[i + 1].clone())));
        i += 2;
        let mut outs = Vec::with_capacity(self.heads.len());
        for h in &self.heads {
            let w = params[i].clone().reshape([e.hidden, h.size]);
            outs.push(linear(z.clone(), w, Some(params[i + 1].clone())));
            i += 2;
        }
        outs
    }
}

/// PyTorch-style orthogonal init of a `[rows, cols]` matrix, row-major, times `gain`.
///
/// Draws a Gaussian `max x min` matrix, orthonormalises its columns by modified Gram-Schmidt in
/// f64 (which yields the sign-corrected Q of a QR decomposition), and transposes when
/// `rows < cols`, exactly as `torch.nn.init.orthogonal_` lays it out.
pub fn orthogonal(rows: usize, cols: usize, gain: f64, rng: &mut HostRng) -> Vec<f32> {
    let (a, b) = (rows.max(cols), rows.min(cols));
    // b column vectors of length a.
    let mut q: Vec<Vec<f64>> = (0..b)
        .map(|_| (0..a).map(|_| rng.normal()).collect())
        .collect();
    for j in 0..b {
        for k in 0..j {
            let (done, rest) = q.split_at_mut(j);
            let qk = &done[k];
            let qj = &mut rest[0];
            let dot: f64 = qk.iter().zip(qj.iter()).map(|(x, y)| x * y).sum();
            for (y, x) in qj.iter_mut().zip(qk) {
                *y -= dot * x;
            }
        }
        let norm = q[j].iter().map(|x| x * x).sum::<f64>().sqrt();
        for y in &mut q[j] {
            *y /= norm;
        }
    }
    let mut out = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            // Q is a x b with a = max(rows, cols); weight = Q if rows >= cols else Q^T.
            let v = if rows >= cols { q[c][r] } else { q[r][c] };
            out[r * cols + c] = (gain * v) as f32;
        }
    }
    out
}

fn init_values(spec: &ParamSpec, rng: &mut HostRng) -> Vec<f32> {
    match spec.init {
        Init::Zeros => vec![0.0; spec.numel()],
        Init::Orthogonal {
            rows,
            cols,
            gain,
            transposed,
        } => {
            let w = orthogonal(rows, cols, gain, rng);
            if !transposed {
                return w;
            }
            let mut t = vec![0f32; w.len()];
            for r in 0..rows {
                for c in 0..cols {
                    t[c * rows + r] = w[r * cols + c];
                }
            }
            t
        }
    }
}

/// Uploads host values as a flat tensor.
pub fn upload(data: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = data.len();
    Tensor::from_data(TensorData::new(data, [n]), device)
}

/// Uploads a `[batch, d]` feature matrix. With `d == 0` (frames-only configs) it returns a
/// `[batch, 1]` placeholder that [`ConvMlp::forward`] ignores, avoiding zero-sized tensors.
pub fn features_tensor(features: &[f32], batch: usize, d: usize, device: &Device) -> Tensor<2> {
    if d == 0 {
        return Tensor::zeros([batch, 1], device);
    }
    Tensor::from_data(TensorData::new(features.to_vec(), [batch, d]), device)
}

/// Reads a tensor back as f32 values.
pub fn download<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .expect("f32 tensor data")
}

/// A set of named flat parameters on one device.
#[derive(Clone)]
pub struct ParamSet {
    /// Specs in forward order.
    pub specs: Vec<ParamSpec>,
    /// Flat values (no autodiff), same order as `specs`.
    pub values: Vec<Tensor<1>>,
    /// Device holding the values.
    pub device: Device,
}

impl ParamSet {
    /// Initialises parameters from a seed (host RNG, so identical on every backend).
    pub fn init(specs: Vec<ParamSpec>, rng: &mut HostRng, device: &Device) -> Self {
        let values = specs
            .iter()
            .map(|s| upload(init_values(s, rng), device))
            .collect();
        Self {
            specs,
            values,
            device: device.clone(),
        }
    }

    /// Loads parameters named `<prefix><name>` from host tensors, checking every shape and that
    /// no tensor is missing.
    pub fn from_host(
        specs: Vec<ParamSpec>,
        tensors: &BTreeMap<String, HostTensor>,
        prefix: &str,
        device: &Device,
    ) -> Result<Self, String> {
        let mut values = Vec::with_capacity(specs.len());
        for s in &specs {
            let key = format!("{prefix}{}", s.name);
            let t = tensors
                .get(&key)
                .ok_or_else(|| format!("tensor `{key}` is missing"))?;
            if t.shape != s.shape {
                return Err(format!(
                    "tensor `{key}` has shape {:?}, the model expects {:?}",
                    t.shape, s.shape
                ));
            }
            values.push(upload(t.data.clone(), device));
        }
        Ok(Self {
            specs,
            values,
            device: device.clone(),
        })
    }

    /// Copies every parameter to the host as `<prefix><name>`.
    pub fn to_host(&self, prefix: &str) -> BTreeMap<String, HostTensor> {
        tensors_to_host(&self.specs, &self.values, prefix)
    }

    /// Total number of scalars.
    pub fn numel(&self) -> usize {
        self.specs.iter().map(ParamSpec::numel).sum()
    }
}

fn tensors_to_host(
    specs: &[ParamSpec],
    values: &[Tensor<1>],
    prefix: &str,
) -> BTreeMap<String, HostTensor> {
    specs
        .iter()
        .zip(values)
        .map(|(s, v)| {
            (
                format!("{prefix}{}", s.name),
                HostTensor::new(s.shape.clone(), download(v.clone())),
            )
        })
        .collect()
}

/// Adam hyper-parameters (PyTorch semantics; CleanRL uses eps = 1e-5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamConfig {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon (added after the bias-corrected square root).
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-5,
        }
    }
}

/// Parameters plus Adam state: everything a training step changes.
#[derive(Clone)]
pub struct Trainable {
    /// Parameters.
    pub params: ParamSet,
    /// Adam settings.
    pub adam: AdamConfig,
    /// First moments, per parameter.
    pub m: Vec<Tensor<1>>,
    /// Second moments, per parameter.
    pub v: Vec<Tensor<1>>,
    /// Number of optimiser steps taken (Adam's `t`).
    pub step: u64,
}

/// Result of one optimisation step.
pub struct StepOutput<A> {
    /// Whatever the loss closure returned beside the loss.
    pub aux: A,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

impl Trainable {
    /// Fresh optimiser state (zero moments) for `params`.
    pub fn new(params: ParamSet, adam: AdamConfig) -> Self {
        let zeros: Vec<Tensor<1>> = params
            .specs
            .iter()
            .map(|s| Tensor::zeros([s.numel()], &params.device))
            .collect();
        Self {
            params,
            adam,
            m: zeros.clone(),
            v: zeros,
            step: 0,
        }
    }

    /// Host copy of the optimiser moments as `adam_m/<name>` and `adam_v/<name>`.
    pub fn moments_to_host(&self) -> BTreeMap<String, HostTensor> {
        let mut out = tensors_to_host(&self.params.specs, &self.m, "adam_m/");
        out.extend(tensors_to_host(&self.params.specs, &self.v, "adam_v/"));
        out
    }

    /// Restores moments saved by [`Trainable::moments_to_host`], checking shapes.
    pub fn moments_from_host(
        &mut self,
        tensors: &BTreeMap<String, HostTensor>,
        step: u64,
    ) -> Result<(), String> {
        let specs = self.params.specs.clone();
        let dev = self.params.device.clone();
        self.m = ParamSet::from_host(specs.clone(), tensors, "adam_m/", &dev)?.values;
        self.v = ParamSet::from_host(specs, tensors, "adam_v/", &dev)?.values;
        self.step = step;
        Ok(())
    }

    /// One optimisation step: `loss_fn` gets autodiff leaves for every parameter (same order as
    /// the specs) and returns a scalar loss plus auxiliary values. Gradients are clipped to
    /// `max_grad_norm` by their global L2 norm (as `torch.nn.utils.clip_grad_norm_`), then Adam
    /// updates the parameters with learning rate `lr`.
    pub fn step<A>(
        &mut self,
        lr: f64,
        max_grad_norm: Option<f64>,
        loss_fn: impl FnOnce(&[Tensor<1>]) -> (Tensor<1>, A),
    ) -> StepOutput<A> {
        let device = self.params.device.clone();
        let leaves: Vec<Tensor<1>> = self
            .params
            .values
            .iter()
            .map(|p| p.clone().autodiff().require_grad())
            .collect();
        let (loss, aux) = loss_fn(&leaves);
        let grads = loss.backward();
        let gs: Vec<Tensor<1>> = leaves
            .iter()
            .zip(&self.params.specs)
            .map(|(l, s)| {
                l.grad(&grads)
                    .unwrap_or_else(|| Tensor::zeros([s.numel()], &device))
            })
            .collect();
        drop(leaves);

        let squares: Vec<Tensor<1>> = gs.iter().map(|g| g.clone().square().sum()).collect();
        let total: f32 = Tensor::cat(squares, 0).sum().into_scalar();
        let grad_norm = (total as f64).sqrt();
        let clip = match max_grad_norm {
            Some(max) => (max / (grad_norm + 1e-6)).min(1.0),
            None => 1.0,
        };

        self.step += 1;
        let t = self.step as i32;
        let AdamConfig { beta1, beta2, eps } = self.adam;
        let bc1 = 1.0 - beta1.powi(t);
        let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt();
        let step_size = lr / bc1;
        for (i, g) in gs.into_iter().enumerate() {
            let g = if clip < 1.0 { g.mul_scalar(clip) } else { g };
            let m = self.m[i]
                .clone()
                .mul_scalar(beta1)
                .add(g.clone().mul_scalar(1.0 - beta1));
            let v = self.v[i]
                .clone()
                .mul_scalar(beta2)
                .add(g.square().mul_scalar(1.0 - beta2));
            let denom = v.clone().sqrt().div_scalar(bc2_sqrt).add_scalar(eps);
            let p = self.params.values[i]
                .clone()
                .sub(m.clone().div(denom).mul_scalar(step_size));
            self.params.values[i] = p;
            self.m[i] = m;
            self.v[i] = v;
        }
        StepOutput { aux, grad_norm }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_rows_or_columns_are_orthonormal() {
        let mut rng = HostRng::new(1);
        for (rows, cols) in [(4, 9), (9, 4), (5, 5)] {
            let w = orthogonal(rows, cols, 2.0, &mut rng);
            // The smaller dimension's vectors are orthogonal with norm `gain`.
            let (n, len) = (rows.min(cols), rows.max(cols));
            let at = |i: usize, k: usize| {
                if rows <= cols {
                    w[i * cols + k]
                } else {
                    w[k * cols + i]
                }
            };
            for i in 0..n {
                for j in 0..n {
                    let dot: f32 = (0..len).map(|k| at(i, k) * at(j, k)).sum();
                    let want = if i == j { 4.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-4, "{rows}x{cols} ({i},{j}) {dot}");
                }
            }
        }
    }

    #[test]
    fn nature_encoder_shapes() {
        let e = EncoderConfig::nature(4, 72, 80, 50);
        assert_eq!(e.conv_output().unwrap(), (64, 5, 6));
        let bad = EncoderConfig::nature(4, 20, 20, 0);
        assert!(bad.conv_output().unwrap_err().contains("convs[2]"));
    }

    #[test]
    fn backend_names_round_trip() {
        for b in [
            Backend::Flex,
            Backend::LibTorchCpu,
            Backend::LibTorchCuda(3),
        ] {
            assert_eq!(Backend::parse(&b.name()).unwrap(), b);
        }
        assert!(Backend::parse("cuda").is_err());
    }

    /// Adam with clipping against values computed by hand with PyTorch's formulas.
    #[test]
    fn adam_step_matches_pytorch_formula() {
        let device = Device::flex();
        let specs = vec![ParamSpec {
            name: "w".into(),
            shape: vec![2],
            init: Init::Zeros,
        }];
        let mut params = ParamSet::init(specs, &mut HostRng::new(0), &device);
        params.values[0] = upload(vec![1.0, -2.0], &device);
        let mut tr = Trainable::new(params, AdamConfig::default());
        // loss = 3*w0 + 4*w1 -> grad (3, 4), norm 5, clipped to norm 1 -> (0.6, 0.8).
        let coeff = upload(vec![3.0, 4.0], &device);
        for _ in 0..2 {
            let c = coeff.clone();
            let out = tr.step(0.1, Some(1.0), move |p| ((p[0].clone() * c).sum(), ()));
            assert!((out.grad_norm - 5.0).abs() < 1e-5);
        }
        // PyTorch: m_hat = g, v_hat = g^2 each step (constant grad), so the update is
        // lr * g / (|g| + eps) per step, twice.
        let got = download(tr.params.values[0].clone());
        let exp0 = 1.0 - 2.0 * 0.1 * 0.6 / (0.6 + 1e-5);
        let exp1 = -2.0 - 2.0 * 0.1 * 0.8 / (0.8 + 1e-5);
        assert!((got[0] as f64 - exp0).abs() < 1e-6, "{got:?}");
        assert!((got[1] as f64 - exp1).abs() < 1e-6, "{got:?}");
        assert_eq!(tr.step, 2);
    }
}
