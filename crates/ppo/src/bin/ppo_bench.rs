//! Learner micro-benchmark: PPO train step at batch 256 and batched inference latency, against
//! an anchor measured in the same run.
//!
//! The anchor re-creates the research benchmark (`shared/research/stack.md` section 1.1): burn's
//! stock `Conv2d`/`Linear` modules and burn-optim Adam with per-tensor norm clipping, on 256 x
//! 4x72x80 frames with 8 logits, full PPO loss. The research measured 0.29 s/step for it here.
//!
//! Run: `cargo run --release -p ppo --features bench --bin ppo-bench -- [--iters N]`.

use std::time::Instant;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig as BurnAdamConfig, GradientsParams};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{Device, Int, Tensor, TensorData};

use ppo::rng::HostRng;
use ppo::{ActMode, Backend, BurnPolicy, Minibatch, ObsBatch, PolicyConfig, PolicyNet, PpoConfig};

/// Research figures (stack.md 1.2), printed for reference only.
const RESEARCH_STEP_S: f64 = 0.29;
const RESEARCH_INFER_MS: [(usize, f64); 3] = [(1, 0.51), (16, 7.09), (64, 25.5)];

#[derive(Module, Debug)]
struct AnchorNet {
    c1: Conv2d,
    c2: Conv2d,
    c3: Conv2d,
    fc: Linear,
    pi: Linear,
    v: Linear,
}

impl AnchorNet {
    fn new(device: &Device) -> Self {
        Self {
            c1: Conv2dConfig::new([4, 32], [8, 8])
                .with_stride([4, 4])
                .init(device),
            c2: Conv2dConfig::new([32, 64], [4, 4])
                .with_stride([2, 2])
                .init(device),
            c3: Conv2dConfig::new([64, 64], [3, 3]).init(device),
            fc: LinearConfig::new(1920, 512).init(device),
            pi: LinearConfig::new(512, 8).init(device),
            v: LinearConfig::new(512, 1).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let x = relu(self.c1.forward(x));
        let x = relu(self.c2.forward(x));
        let x = relu(self.c3.forward(x));
        let [b, c, h, w] = x.dims();
        let z = relu(self.fc.forward(x.reshape([b, c * h * w])));
        (self.pi.forward(z.clone()), self.v.forward(z))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    f(); // warm-up
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        let s = Instant::now();
        f();
        t.push(s.elapsed().as_secs_f64());
    }
    median(t)
}

fn random_bytes(n: usize, rng: &mut HostRng) -> Vec<u8> {
    (0..n).map(|_| rng.below(256) as u8).collect()
}

fn anchor_step_s(iters: usize, frames: &[u8], b: usize) -> f64 {
    let device = Device::flex().autodiff();
    let mut net = AnchorNet::new(&device);
    let mut optim = BurnAdamConfig::new()
        .with_grad_clipping(Some(GradientClippingConfig::Norm(0.5)))
        .init();
    let x = Tensor::<4>::from_data(
        TensorData::new(ppo::policy::frames_to_f32(frames), [b, 4, 72, 80]),
        &device,
    );
    let mut rng = HostRng::new(5);
    let acts = Tensor::<2, Int>::from_data(
        TensorData::new(
            (0..b).map(|_| rng.below(8) as i64).collect::<Vec<_>>(),
            [b, 1],
        ),
        &device,
    );
    let adv = Tensor::<1>::from_data(
        TensorData::new((0..b).map(|_| rng.normal() as f32).collect::<Vec<_>>(), [b]),
        &device,
    );
    let ret = adv.clone().mul_scalar(0.5);
    let old_lp = Tensor::<1>::full([b], -(8f32.ln()), &device);
    time(iters, || {
        let (logits, v) = net.forward(x.clone());
        let lp = log_softmax(logits, 1);
        let new_lp = lp.clone().gather(1, acts.clone()).reshape([b]);
        let ent = (lp.clone().exp() * lp).sum_dim(1).neg().mean();
        let ratio = (new_lp - old_lp.clone()).exp();
        let pg = (adv.clone().neg() * ratio.clone())
            .max_pair(adv.clone().neg() * ratio.clamp(0.8, 1.2))
            .mean();
        let vl = (v.reshape([b]) - ret.clone())
            .square()
            .mean()
            .mul_scalar(0.5);
        let loss = pg + vl - ent.mul_scalar(0.01);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(2.5e-4, net.clone(), grads);
        let _ = net.fc.bias.as_ref().map(|b| b.val().into_data());
    })
}

fn anchor_infer_ms(reps: usize, frames: &[u8], b: usize) -> f64 {
    let device = Device::flex();
    let net = AnchorNet::new(&device);
    let x = Tensor::<4>::from_data(
        TensorData::new(
            ppo::policy::frames_to_f32(&frames[..b * 4 * 72 * 80]),
            [b, 4, 72, 80],
        ),
        &device,
    );
    1e3 * time(reps, || {
        let (l, v) = net.forward(x.clone());
        let _ = Tensor::cat(vec![l, v], 1).into_data();
    })
}

fn main() {
    let mut iters = 6usize;
    let mut features = 50usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--iters" => iters = args.next().and_then(|v| v.parse().ok()).expect("--iters N"),
            "--features" => {
                features = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--features D")
            }
            _ => {
                eprintln!("usage: ppo-bench [--iters N] [--features D]");
                std::process::exit(2);
            }
        }
    }
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    println!("ppo-bench: backend flex, rayon threads {threads}, {iters} timed iterations");

    let b = 256;
    let mut rng = HostRng::new(1);
    let frames = random_bytes(b * 4 * 72 * 80, &mut rng);
    let feats: Vec<f32> = (0..b * features).map(|_| rng.normal() as f32).collect();
    let actions: Vec<u32> = (0..b).map(|_| rng.below(15) as u32).collect();
    let old_lp = vec![-(15f32.ln()); b];
    let old_v = vec![0f32; b];
    let adv: Vec<f32> = (0..b).map(|_| rng.normal() as f32).collect();
    let ret: Vec<f32> = adv.iter().map(|a| a * 0.5).collect();

    let cfg = PolicyConfig::nature(features, 15);
    let mut net = BurnPolicy::new(&cfg, Default::default(), Backend::Flex, 0).expect("policy");
    println!(
        "policy: 4x72x80 frames + {features} features -> 15 actions, {} parameters",
        net.num_params()
    );
    let ppo_cfg = PpoConfig::default();
    let ours = time(iters, || {
        net.train_minibatch(
            &Minibatch {
                frames: &frames,
                features: &feats,
                rows: &[],
                actions: &actions,
                old_log_probs: &old_lp,
                old_values: &old_v,
                advantages: &adv,
                returns: &ret,
            },
            &ppo_cfg,
            2.5e-4,
        )
        .expect("train step");
    });
    let anchor = anchor_step_s(iters, &frames, b);
    println!(
        "train step, batch 256: ours {:.3} s | anchor (stock burn modules + burn-optim Adam) {:.3} s | ratio ours/anchor {:.2} | research figure {RESEARCH_STEP_S} s (ratio {:.2})",
        ours,
        anchor,
        ours / anchor,
        ours / RESEARCH_STEP_S
    );

    for (bs, research) in RESEARCH_INFER_MS {
        let reps = match bs {
            1 => 200,
            16 => 40,
            _ => 15,
        };
        let obs = ObsBatch {
            frames: &frames[..bs * 4 * 72 * 80],
            features: &feats[..bs * features],
            batch: bs,
        };
        let mut seed = 0u64;
        let act_ms = 1e3
            * time(reps, || {
                seed += 1;
                net.act(&obs, ActMode::Sample { seed }).expect("act");
            });
        let anchor_ms = anchor_infer_ms(reps, &frames, bs);
        println!(
            "act, batch {bs:>2}: ours {act_ms:.2} ms ({:.3} ms/obs) | anchor forward {anchor_ms:.2} ms | ratio {:.2} | research figure {research} ms",
            act_ms / bs as f64,
            act_ms / anchor_ms
        );
    }
}
