//! The reward model must learn known orderings and scores, and its file must round-trip and
//! refuse to load for another cartridge.

use ppo::rng::HostRng;
use ppo::{ConvLayer, EncoderConfig};
use reward_model::{
    Backend, Dataset, ModelIdentity, Objective, Pair, PairRule, Requirement, RewardModel,
    RewardModelError, RewardNetConfig, Sample, Shaper, ShapingConfig, TrainConfig, train,
};

const H: usize = 12;
const W: usize = 12;

fn net() -> RewardNetConfig {
    RewardNetConfig {
        encoder: EncoderConfig {
            frame_stack: 1,
            height: H,
            width: W,
            convs: vec![ConvLayer {
                out_channels: 4,
                kernel: 4,
                stride: 2,
            }],
            features: 2,
            feature_hidden: 8,
            hidden: 16,
        },
    }
}

fn identity() -> ModelIdentity {
    ModelIdentity {
        cartridge_sha1: "0123456789abcdef0123456789abcdef01234567".into(),
        feature_layout_version: 3,
    }
}

/// Samples whose hidden utility is the number of bright rows in the frame (0..=H); features are
/// noise. Only the frame tells the utility.
fn frame_ordered(n: usize, seed: u64) -> (Dataset, Vec<f32>) {
    let mut rng = HostRng::new(seed);
    let mut samples = Vec::new();
    let mut utility = Vec::new();
    for _ in 0..n {
        let k = rng.below(H + 1);
        let mut frames = vec![0u8; H * W];
        for y in 0..k {
            for x in 0..W {
                frames[y * W + x] = 200 + rng.below(56) as u8;
            }
        }
        samples.push(Sample {
            frames,
            features: vec![rng.normal() as f32, rng.normal() as f32],
            score: None,
        });
        utility.push(k as f32);
    }
    (
        Dataset {
            samples,
            pairs: vec![],
        },
        utility,
    )
}

fn bt_config(seed: u64) -> TrainConfig {
    TrainConfig {
        seed,
        objective: Objective {
            regression: 0.0,
            bradley_terry: 1.0,
        },
        epochs: 15,
        batch_size: 32,
        learning_rate: 3e-3,
        val_fraction: 0.25,
        pair_rule: PairRule {
            margin: 0.0,
            tie_margin: None,
            max_pairs: 1500,
        },
        ..Default::default()
    }
}

#[test]
fn bradley_terry_learns_a_known_ordering() {
    let (mut ds, utility) = frame_ordered(240, 1);
    // Compare-mode pairs: random pairs labelled by the hidden utility, ties 0.5.
    let mut rng = HostRng::new(2);
    for _ in 0..3000 {
        let (a, b) = (rng.below(240), rng.below(240));
        if a == b {
            continue;
        }
        let label = match utility[a].total_cmp(&utility[b]) {
            std::cmp::Ordering::Greater => 1.0,
            std::cmp::Ordering::Less => 0.0,
            std::cmp::Ordering::Equal => 0.5,
        };
        ds.pairs.push(Pair { a, b, label });
    }
    let model = train(&ds, &net(), identity(), &bt_config(3), Backend::Flex).unwrap();
    let r = model.report();
    eprintln!("BT report: {r:?}");
    assert!(
        r.val_pairs > 50,
        "too few validation pairs: {}",
        r.val_pairs
    );
    assert!(
        r.val.pair_accuracy > 0.9,
        "held-out pair accuracy {}",
        r.val.pair_accuracy
    );
    assert!(r.epoch_losses.last() < r.epoch_losses.first());
}

#[test]
fn regression_fits_scores_and_derived_pairs_rank() {
    // Score = utility / H, visible only in the frame.
    let (mut ds, utility) = frame_ordered(240, 4);
    for (s, u) in ds.samples.iter_mut().zip(&utility) {
        s.score = Some(u / H as f32);
    }
    let cfg = TrainConfig {
        objective: Objective {
            regression: 1.0,
            bradley_terry: 0.0,
        },
        pair_rule: PairRule {
            margin: 0.1,
            tie_margin: None,
            max_pairs: 1500,
        },
        ..bt_config(5)
    };
    let model = train(&ds, &net(), identity(), &cfg, Backend::Flex).unwrap();
    let r = model.report();
    eprintln!("regression report: {r:?}");
    // Variance of the targets is about 0.1; require most of it explained.
    assert!(r.val.mse < 0.01, "held-out MSE {}", r.val.mse);
    // Pairs derived from the held-out scores are ordered correctly.
    assert!(r.val.strict_pairs > 50);
    assert!(
        r.val.pair_accuracy > 0.9,
        "derived-pair accuracy {}",
        r.val.pair_accuracy
    );
}

#[test]
fn export_import_round_trip_and_determinism() {
    let (mut ds, utility) = frame_ordered(80, 6);
    for (s, u) in ds.samples.iter_mut().zip(&utility) {
        s.score = Some(u / H as f32);
    }
    let cfg = TrainConfig {
        epochs: 2,
        ..bt_config(7)
    };
    let cfg = TrainConfig {
        objective: Objective::default(),
        ..cfg
    };
    let m1 = train(&ds, &net(), identity(), &cfg, Backend::Flex).unwrap();
    let m2 = train(&ds, &net(), identity(), &cfg, Backend::Flex).unwrap();
    let bytes = m1.to_bytes();
    assert_eq!(bytes, m2.to_bytes(), "same seed must give the same bytes");

    let loaded = RewardModel::from_bytes(&bytes, Backend::Flex, &identity().into()).unwrap();
    assert_eq!(loaded.norm(), m1.norm());
    assert_eq!(loaded.report(), m1.report());
    assert_eq!(loaded.to_bytes(), bytes);
    let frames: Vec<u8> = ds.samples[..5]
        .iter()
        .flat_map(|s| s.frames.clone())
        .collect();
    let feats: Vec<f32> = ds.samples[..5]
        .iter()
        .flat_map(|s| s.features.clone())
        .collect();
    assert_eq!(
        loaded.raw(&frames, &feats, 5).unwrap(),
        m1.raw(&frames, &feats, 5).unwrap()
    );
    assert!(loaded.raw(&frames[1..], &feats, 5).is_err());

    // Normalisation: over the training samples the normalised output has mean 0, std 1.
    let tr: Vec<usize> = (0..80).collect();
    let f_all: Vec<u8> = tr
        .iter()
        .flat_map(|&i| ds.samples[i].frames.clone())
        .collect();
    let x_all: Vec<f32> = tr
        .iter()
        .flat_map(|&i| ds.samples[i].features.clone())
        .collect();
    let n = loaded.normalised(&f_all, &x_all, 80).unwrap();
    assert!(n.iter().all(|v| v.is_finite()));

    // Shaper from the stored stats: the median threshold removes about half of the rewards.
    let shaper = Shaper::new(ShapingConfig::default(), loaded.norm()).unwrap();
    let raw = loaded.raw(&f_all, &x_all, 80).unwrap();
    let zeroed = raw
        .iter()
        .filter(|&&r| shaper.learned_term(r, 1) == 0.0)
        .count();
    assert!(
        (20..=60).contains(&zeroed),
        "{zeroed} of 80 zeroed by the median threshold"
    );
}

#[test]
fn wrong_cartridge_layout_or_corruption_is_a_clear_error() {
    let (mut ds, utility) = frame_ordered(40, 8);
    for (s, u) in ds.samples.iter_mut().zip(&utility) {
        s.score = Some(u / H as f32);
    }
    let cfg = TrainConfig {
        epochs: 1,
        objective: Objective::default(),
        ..bt_config(9)
    };
    let bytes = train(&ds, &net(), identity(), &cfg, Backend::Flex)
        .unwrap()
        .to_bytes();

    let other = ModelIdentity {
        cartridge_sha1: "ffffffffffffffffffffffffffffffffffffffff".into(),
        ..identity()
    };
    let e = RewardModel::from_bytes(&bytes, Backend::Flex, &other.into())
        .err()
        .unwrap();
    assert!(matches!(e, RewardModelError::WrongCartridge { .. }), "{e}");
    assert!(e.to_string().contains("0123456789abcdef"), "{e}");

    let layout = ModelIdentity {
        feature_layout_version: 4,
        ..identity()
    };
    let e = RewardModel::from_bytes(&bytes, Backend::Flex, &layout.into())
        .err()
        .unwrap();
    assert!(matches!(e, RewardModelError::FeatureLayout { .. }), "{e}");
    assert!(e.to_string().contains("version 3"), "{e}");
    // A newer env that reads layout 3's inputs unchanged loads it; one that does not, not.
    let reads = |oldest_layout| Requirement {
        cartridge_sha1: identity().cartridge_sha1,
        oldest_layout,
        layout: 5,
    };
    assert!(RewardModel::from_bytes(&bytes, Backend::Flex, &reads(2)).is_ok());
    assert!(RewardModel::from_bytes(&bytes, Backend::Flex, &reads(3)).is_ok());
    let e = RewardModel::from_bytes(&bytes, Backend::Flex, &reads(4))
        .err()
        .unwrap();
    assert!(e.to_string().contains("layouts 4 to 5"), "{e}");

    let mut bad = bytes.clone();
    let i = bad.len() - 7;
    bad[i] ^= 0x10;
    let e = RewardModel::from_bytes(&bad, Backend::Flex, &identity().into())
        .err()
        .unwrap();
    assert!(matches!(e, RewardModelError::Container(_)), "{e}");

    // Bad training inputs name what is wrong.
    let mut broken = ds.clone();
    broken.pairs.push(Pair {
        a: 0,
        b: 400,
        label: 1.0,
    });
    let e = train(&broken, &net(), identity(), &cfg, Backend::Flex)
        .err()
        .unwrap();
    assert!(e.to_string().contains("pair 0"), "{e}");
    let bad_id = ModelIdentity {
        cartridge_sha1: "xyz".into(),
        ..identity()
    };
    assert!(train(&ds, &net(), bad_id, &cfg, Backend::Flex).is_err());
}
