//! The versioned prompt files under `prompts/`, compiled in, and the chat messages built
//! from them: the fixed system prompt first, the segment-specific part last.

use std::sync::LazyLock;

use base64::Engine as _;
use serde::Serialize;
use sha1::{Digest, Sha1};

use crate::Task;
use crate::input::{Keyframe, SegmentInput, states_text};

/// The prompt directory in use.
pub const PROMPT_VERSION: &str = "v1";

macro_rules! prompt_files {
    ($task:literal) => {
        (
            include_str!(concat!("../../../prompts/v1/", $task, ".system.md")),
            include_str!(concat!("../../../prompts/v1/", $task, ".user.md")),
        )
    };
}

/// One task's prompt pair.
#[derive(Debug)]
pub struct TaskPrompt {
    /// The system prompt and rubric, sent verbatim.
    pub system: &'static str,
    /// The user template with `{{name}}` placeholders.
    pub user: &'static str,
    /// `v1/<first 8 hex digits of SHA-1(system, NUL, user)>`.
    pub id: String,
}

impl TaskPrompt {
    fn new((system, user): (&'static str, &'static str)) -> Self {
        let mut h = Sha1::new();
        h.update(system.as_bytes());
        h.update([0u8]);
        h.update(user.as_bytes());
        let digest = hex::encode(h.finalize());
        Self {
            system: system.trim_end(),
            user: user.trim_end(),
            id: format!("{PROMPT_VERSION}/{}", &digest[..8]),
        }
    }
}

static PROMPTS: LazyLock<[TaskPrompt; 6]> = LazyLock::new(|| {
    [
        TaskPrompt::new(prompt_files!("vision")),
        TaskPrompt::new(prompt_files!("state")),
        TaskPrompt::new(prompt_files!("puzzle")),
        TaskPrompt::new(prompt_files!("dialog")),
        TaskPrompt::new(prompt_files!("vision-compare")),
        TaskPrompt::new(prompt_files!("state-compare")),
    ]
});

/// The compiled-in prompts of `task`.
pub fn prompt(task: Task) -> &'static TaskPrompt {
    let i = match task {
        Task::Vision => 0,
        Task::State => 1,
        Task::Puzzle => 2,
        Task::Dialog => 3,
        Task::VisionCompare => 4,
        Task::StateCompare => 5,
    };
    &PROMPTS[i]
}

/// Fills `{{name}}` placeholders; a placeholder without a value is an error.
pub fn render(template: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "unclosed `{{` in prompt template".to_string())?;
        let name = after[..end].trim();
        let value = vars
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("prompt template needs `{name}`, which has no value"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One chat message.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// `system` or `user`.
    pub role: &'static str,
    /// Text or text and image parts.
    pub content: Content,
}

/// A message's content.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Text and image parts, in order.
    Parts(Vec<Part>),
}

/// One content part.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image as a data URI.
    ImageUrl {
        /// `{"url": "data:image/png;base64,..."}`.
        image_url: ImageUrl,
    },
}

/// An image reference.
#[derive(Debug, Clone, Serialize)]
pub struct ImageUrl {
    /// `data:image/png;base64,...`.
    pub url: String,
}

impl Part {
    /// A PNG image part.
    pub fn png(png: &[u8]) -> Self {
        let mut url = String::with_capacity(22 + png.len().div_ceil(3) * 4);
        url.push_str("data:image/png;base64,");
        base64::engine::general_purpose::STANDARD.encode_string(png, &mut url);
        Part::ImageUrl {
            image_url: ImageUrl { url },
        }
    }
}

/// How the segment-specific part is built.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// Keyframes sent per segment to `/vision`.
    pub keyframes: usize,
    /// Change lines in the state text.
    pub state_lines: usize,
    /// Put the system prompt at the start of the user message instead of a system message.
    pub system_as_user: bool,
}

fn segment_vars<'a>(
    prefix: &str,
    input: &'a SegmentInput<'a>,
    states: &'a str,
    keyframes: usize,
) -> Vec<(String, String)> {
    vec![
        (format!("{prefix}segment"), input.id.to_string()),
        (format!("{prefix}first_step"), input.first_step.to_string()),
        (format!("{prefix}last_step"), input.last_step().to_string()),
        (format!("{prefix}keyframes"), keyframes.to_string()),
        (format!("{prefix}states"), states.to_string()),
    ]
}

fn render_owned(template: &str, vars: &[(String, String)]) -> Result<String, String> {
    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    render(template, &borrowed)
}

/// The fixed system prompt first, then the user content; one user message when the chat
/// template has no system role. Either way every request of a task starts with the same text.
fn assemble(task: Task, text: String, images: Vec<Part>, opts: RenderOptions) -> Vec<Message> {
    let system = prompt(task).system;
    let text = if opts.system_as_user {
        format!("{system}\n\n{text}")
    } else {
        text
    };
    let content = if images.is_empty() && !task.uses_images() {
        Content::Text(text)
    } else {
        let mut parts = Vec::with_capacity(images.len() + 1);
        parts.push(Part::Text { text });
        parts.extend(images);
        Content::Parts(parts)
    };
    let user = Message {
        role: "user",
        content,
    };
    if opts.system_as_user {
        vec![user]
    } else {
        vec![
            Message {
                role: "system",
                content: Content::Text(system.to_string()),
            },
            user,
        ]
    }
}

/// The messages for a single-segment task.
pub fn messages(
    task: Task,
    input: &SegmentInput<'_>,
    opts: RenderOptions,
) -> Result<Vec<Message>, String> {
    let states = states_text(input, opts.state_lines);
    let frames: Vec<Keyframe<'_>> = if task.uses_images() {
        input.pick_keyframes(opts.keyframes)
    } else {
        Vec::new()
    };
    let vars = segment_vars("", input, &states, frames.len());
    let text = render_owned(prompt(task).user, &vars)?;
    let images = frames.iter().map(|k| Part::png(k.png)).collect();
    Ok(assemble(task, text, images, opts))
}

/// The messages for a compare task: `a` is "first", `b` is "second".
pub fn compare_messages(
    task: Task,
    a: &SegmentInput<'_>,
    b: &SegmentInput<'_>,
    opts: RenderOptions,
) -> Result<Vec<Message>, String> {
    let (sa, sb) = (
        states_text(a, opts.state_lines),
        states_text(b, opts.state_lines),
    );
    let (fa, fb) = if task.uses_images() {
        (
            a.pick_keyframes(opts.keyframes),
            b.pick_keyframes(opts.keyframes),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let mut vars = segment_vars("a_", a, &sa, fa.len());
    vars.extend(segment_vars("b_", b, &sb, fb.len()));
    let text = render_owned(prompt(task).user, &vars)?;
    let images = fa
        .iter()
        .chain(fb.iter())
        .map(|k| Part::png(k.png))
        .collect();
    Ok(assemble(task, text, images, opts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{eventful, png};

    #[test]
    fn render_fills_and_rejects_missing_values() {
        assert_eq!(
            render("a {{x}} b {{ y }}", &[("x", "1"), ("y", "2")]).unwrap(),
            "a 1 b 2"
        );
        assert!(render("{{x}}", &[]).unwrap_err().contains("`x`"));
        assert!(render("{{x", &[("x", "1")]).is_err());
    }

    #[test]
    fn every_template_renders() {
        let states = eventful(20, 0);
        let frames = [png(160, 144, 0), png(160, 144, 1)];
        let keys: Vec<Keyframe<'_>> = frames
            .iter()
            .enumerate()
            .map(|(i, p)| Keyframe {
                step: i as u64,
                png: p,
            })
            .collect();
        let input = SegmentInput {
            id: "w1-e2/3",
            first_step: 40,
            states: &states,
            keyframes: &keys,
        };
        let opts = RenderOptions {
            keyframes: 4,
            state_lines: 40,
            system_as_user: false,
        };
        for task in Task::ALL {
            let msgs = if task.is_compare() {
                compare_messages(task, &input, &input, opts).unwrap()
            } else {
                messages(task, &input, opts).unwrap()
            };
            assert_eq!(msgs[0].role, "system");
            assert_eq!(msgs[1].role, "user");
            let json = serde_json::to_value(&msgs).unwrap();
            let user = json[1]["content"].to_string();
            assert!(user.contains("w1-e2/3"), "{task:?}: {user}");
            assert!(user.contains("rupees 10 -> 15"), "{task:?}: {user}");
            let images = user.matches("data:image/png;base64,").count();
            let expected = match task {
                Task::Vision => 2,
                Task::VisionCompare => 4,
                _ => 0,
            };
            assert_eq!(images, expected, "{task:?}");
            assert!(prompt(task).id.starts_with("v1/"));
        }
        // Without a system role the system prompt leads the single user message.
        let folded = RenderOptions {
            system_as_user: true,
            ..opts
        };
        let msgs = messages(Task::State, &input, folded).unwrap();
        assert_eq!(msgs.len(), 1);
        let Content::Text(text) = &msgs[0].content else {
            panic!("state sends text")
        };
        assert!(text.starts_with(prompt(Task::State).system), "{text}");
        assert!(text.ends_with(states_text(&input, 40).as_str()), "{text}");
    }
}
