//! How much of each route's prompts is a shared prefix (what prefix-hash routing and vLLM's
//! prefix cache reuse).
//!
//! Tokenizer-free: a request's prompt is the concatenation of its messages as
//! `role\ntext\n` with each image as a placeholder, measured in bytes of text. Estimated tokens
//! count 4 bytes of text per token and an image as Qwen2.5-VL encodes it (the picture resized
//! to multiples of 28 pixels, one token per 28x28 block, plus 2 delimiter tokens). Images come
//! after the shared prefix, so they only lengthen the unshared part.

use base64::Engine as _;
use serde::Serialize;

use crate::Task;
use crate::prompts::{Content, Message, Part};

/// Shared-prefix figures for one task's requests.
#[derive(Debug, Clone, Serialize)]
pub struct PrefixShare {
    /// The task measured.
    pub task: Task,
    /// Requests compared.
    pub requests: usize,
    /// Bytes every request's prompt text starts with.
    pub shared_bytes: usize,
    /// Mean prompt text bytes per request.
    pub mean_bytes: f64,
    /// `shared_bytes / mean_bytes`.
    pub byte_share: f64,
    /// Mean estimated prompt tokens per request, images included.
    pub mean_tokens: f64,
    /// Estimated shared tokens over estimated prompt tokens, images included.
    pub token_share: f64,
}

/// Placeholder for an image in the flattened prompt (never occurs in prompt text).
const IMAGE_MARK: &str = "\u{0}image\u{0}";

/// A request's prompt as flat text plus its estimated image tokens.
pub fn flatten(messages: &[Message]) -> (String, u64) {
    let mut text = String::new();
    let mut image_tokens = 0u64;
    for m in messages {
        text.push_str(m.role);
        text.push('\n');
        match &m.content {
            Content::Text(t) => text.push_str(t),
            Content::Parts(parts) => {
                for p in parts {
                    match p {
                        Part::Text { text: t } => text.push_str(t),
                        Part::ImageUrl { image_url } => {
                            text.push_str(IMAGE_MARK);
                            image_tokens += image_tokens_of(&image_url.url);
                        }
                    }
                }
            }
        }
        text.push('\n');
    }
    (text, image_tokens)
}

/// Qwen2.5-VL's token count for a data-URI PNG: 14-pixel patches merged 2x2, so one token
/// per 28x28 block of the picture rounded to multiples of 28, plus vision start/end tokens.
fn image_tokens_of(url: &str) -> u64 {
    let dims = url
        .strip_prefix("data:image/png;base64,")
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.get(..44)?)
                .ok()
        })
        .filter(|png| png.len() >= 24 && &png[12..16] == b"IHDR")
        .map(|png| {
            let w = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
            let h = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
            (w, h)
        });
    let (w, h) = dims.unwrap_or((160, 144));
    let blocks = |n: u32| u64::from(((n + 14) / 28).max(1));
    blocks(w) * blocks(h) + 2
}

fn common_prefix(a: &str, b: &str) -> usize {
    let n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    // Stay on a character boundary so the prefix is a valid string.
    (0..=n).rev().find(|&i| a.is_char_boundary(i)).unwrap_or(0)
}

/// Measures the prefix all `requests` (of one task) share.
pub fn measure(task: Task, requests: &[Vec<Message>]) -> PrefixShare {
    let flat: Vec<(String, u64)> = requests.iter().map(|m| flatten(m)).collect();
    let shared = match flat.split_first() {
        None => 0,
        Some(((first, _), rest)) => rest
            .iter()
            .fold(first.len(), |n, (t, _)| n.min(common_prefix(first, t))),
    };
    let n = flat.len().max(1) as f64;
    let mean_bytes = flat.iter().map(|(t, _)| t.len() as f64).sum::<f64>() / n;
    let mean_tokens = flat
        .iter()
        .map(|(t, img)| {
            (t.len() - t.matches(IMAGE_MARK).count() * IMAGE_MARK.len()) as f64 / 4.0 + *img as f64
        })
        .sum::<f64>()
        / n;
    PrefixShare {
        task,
        requests: flat.len(),
        shared_bytes: shared,
        mean_bytes,
        byte_share: if mean_bytes > 0.0 {
            shared as f64 / mean_bytes
        } else {
            0.0
        },
        mean_tokens,
        token_share: if mean_tokens > 0.0 {
            (shared as f64 / 4.0) / mean_tokens
        } else {
            0.0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{eventful, png};
    use crate::input::{Keyframe, SegmentInput};
    use crate::prompts::{RenderOptions, messages, prompt};

    #[test]
    fn the_system_prompt_is_the_shared_prefix() {
        let frames: Vec<Vec<u8>> = (0..4).map(|i| png(160, 144, i)).collect();
        let keys: Vec<Keyframe<'_>> = frames
            .iter()
            .enumerate()
            .map(|(i, p)| Keyframe {
                step: i as u64 * 10,
                png: p,
            })
            .collect();
        let segs: Vec<Vec<zelda::GameState>> =
            (0..8).map(|v| eventful(30 + v as usize, v)).collect();
        let ids: Vec<String> = (0..8).map(|v| format!("{v}-0/{v}")).collect();
        let opts = RenderOptions {
            keyframes: 4,
            state_lines: 40,
            system_as_user: false,
        };
        let reqs: Vec<Vec<Message>> = segs
            .iter()
            .zip(&ids)
            .map(|(s, id)| {
                let input = SegmentInput {
                    id,
                    first_step: 0,
                    states: s,
                    keyframes: &keys,
                };
                messages(Task::Vision, &input, opts).unwrap()
            })
            .collect();
        let share = measure(Task::Vision, &reqs);
        // "system\n" + system prompt + "\nuser\nSegment " is common to all.
        let expected =
            "system\n".len() + prompt(Task::Vision).system.len() + "\nuser\nSegment ".len();
        assert_eq!(share.shared_bytes, expected);
        assert!(
            share.byte_share > 0.5 && share.byte_share < 1.0,
            "{share:?}"
        );
        assert!(
            share.token_share < share.byte_share,
            "images lower the token share: {share:?}"
        );
        assert_eq!(
            image_tokens_of(&match Part::png(&frames[0]) {
                Part::ImageUrl { image_url } => image_url.url,
                Part::Text { .. } => unreachable!(),
            }),
            6 * 5 + 2
        );
    }
}
