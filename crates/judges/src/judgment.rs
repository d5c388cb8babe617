//! The typed results each judge returns, their JSON schemas (sent as `response_format`) and
//! the checks a parsed reply must pass.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Highest value of every 0..=N score.
pub const SCORE_MAX: u8 = 10;
/// Longest one-line summary accepted, in characters.
pub const SUMMARY_MAX_CHARS: usize = 160;
/// Longest plan step accepted, in characters.
pub const PLAN_STEP_MAX_CHARS: usize = 80;
/// Most plan steps accepted.
pub const PLAN_MAX_STEPS: usize = 5;
/// Longest comparison analysis accepted, in characters.
pub const ANALYSIS_MAX_CHARS: usize = 300;

/// A result type a judge returns: deserialised from the reply's JSON content, then checked.
pub trait Judgment: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Schema name sent in `response_format.json_schema.name`.
    const NAME: &'static str;
    /// The JSON schema of the reply.
    fn schema() -> Value;
    /// Checks the constraints serde cannot express (ranges, lengths).
    fn validate(&self) -> Result<(), String>;
    /// Canonicalises a parsed reply (run before `validate`); nothing by default.
    fn normalise(&mut self) {}
}

fn check_score(name: &str, v: u8) -> Result<(), String> {
    if v > SCORE_MAX {
        return Err(format!("`{name}` is {v}, above the maximum {SCORE_MAX}"));
    }
    Ok(())
}

fn check_text(name: &str, s: &str, max: usize) -> Result<(), String> {
    let n = s.chars().count();
    if n > max {
        return Err(format!("`{name}` has {n} characters, more than {max}"));
    }
    if s.contains('\n') {
        return Err(format!("`{name}` must be one line"));
    }
    Ok(())
}

/// An integer 0..=10, also spelt out as an enum: grammar engines that ignore
/// `minimum`/`maximum` (llama.cpp's) all honour `enum`.
fn score_schema() -> Value {
    let values: Vec<u8> = (0..=SCORE_MAX).collect();
    json!({"type": "integer", "minimum": 0, "maximum": SCORE_MAX, "enum": values})
}

/// `/vision`: how the segment's keyframes and state text score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionScore {
    /// What Link did, one line.
    pub summary: String,
    /// 0..=10: how much the game advanced.
    pub progress: u8,
    /// 0..=10: how new the places and situations are.
    pub novelty: u8,
    /// 0..=10: how much danger Link is in at the end.
    pub danger: u8,
}

impl Judgment for VisionScore {
    const NAME: &'static str = "vision_score";
    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "summary": {"type": "string", "maxLength": SUMMARY_MAX_CHARS},
                "progress": score_schema(),
                "novelty": score_schema(),
                "danger": score_schema(),
            },
            "required": ["summary", "progress", "novelty", "danger"],
            "additionalProperties": false,
        })
    }
    fn validate(&self) -> Result<(), String> {
        check_text("summary", &self.summary, SUMMARY_MAX_CHARS)?;
        check_score("progress", self.progress)?;
        check_score("novelty", self.novelty)?;
        check_score("danger", self.danger)
    }
}

/// A milestone the state judge can name (the same list for the model and the offline judge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subgoal {
    /// Entered a room never visited before.
    NewRoom,
    /// Went from the overworld into a dungeon.
    EnteredDungeon,
    /// Rupee count went up.
    GotRupees,
    /// Small-key count went up.
    GotSmallKey,
    /// Small-key count went down inside a dungeon (a locked door or block opened).
    UsedSmallKey,
    /// Health went up.
    Healed,
    /// A heart container was added.
    GotHeartContainer,
    /// An instrument was collected.
    GotInstrument,
    /// A dialog box was opened and closed again.
    ReadDialog,
}

impl Subgoal {
    /// Every subgoal, in schema order.
    pub const ALL: [Subgoal; 9] = [
        Subgoal::NewRoom,
        Subgoal::EnteredDungeon,
        Subgoal::GotRupees,
        Subgoal::GotSmallKey,
        Subgoal::UsedSmallKey,
        Subgoal::Healed,
        Subgoal::GotHeartContainer,
        Subgoal::GotInstrument,
        Subgoal::ReadDialog,
    ];

    /// The snake_case name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Subgoal::NewRoom => "new_room",
            Subgoal::EnteredDungeon => "entered_dungeon",
            Subgoal::GotRupees => "got_rupees",
            Subgoal::GotSmallKey => "got_small_key",
            Subgoal::UsedSmallKey => "used_small_key",
            Subgoal::Healed => "healed",
            Subgoal::GotHeartContainer => "got_heart_container",
            Subgoal::GotInstrument => "got_instrument",
            Subgoal::ReadDialog => "read_dialog",
        }
    }
}

/// `/state`: progress from the decoded state sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateScore {
    /// Milestones reached during the segment, each at most once.
    pub subgoals_reached: Vec<Subgoal>,
    /// 0..=10: how much the game advanced.
    pub progress: u8,
}

impl Judgment for StateScore {
    const NAME: &'static str = "state_score";
    fn schema() -> Value {
        let names: Vec<&str> = Subgoal::ALL.iter().map(|s| s.name()).collect();
        json!({
            "type": "object",
            "properties": {
                "subgoals_reached": {
                    "type": "array",
                    "items": {"type": "string", "enum": names},
                    "maxItems": Subgoal::ALL.len(),
                },
                "progress": score_schema(),
            },
            "required": ["subgoals_reached", "progress"],
            "additionalProperties": false,
        })
    }
    fn validate(&self) -> Result<(), String> {
        check_score("progress", self.progress)
    }
    fn normalise(&mut self) {
        // A subgoal named twice is still one subgoal (grammar-guided decoding cannot
        // enforce `uniqueItems`, so small models repeat items).
        let mut seen = Vec::with_capacity(self.subgoals_reached.len());
        self.subgoals_reached.retain(|g| {
            let new = !seen.contains(g);
            seen.push(*g);
            new
        });
    }
}

/// `/puzzle`: a short plan for the dungeon room and whether its puzzle advanced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PuzzlePlan {
    /// Ordered subgoals, first to do first.
    pub plan: Vec<String>,
    /// The room's puzzle advanced during the segment.
    pub puzzle_advanced: bool,
}

impl Judgment for PuzzlePlan {
    const NAME: &'static str = "puzzle_plan";
    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "plan": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1, "maxLength": PLAN_STEP_MAX_CHARS},
                    "minItems": 1,
                    "maxItems": PLAN_MAX_STEPS,
                },
                "puzzle_advanced": {"type": "boolean"},
            },
            "required": ["plan", "puzzle_advanced"],
            "additionalProperties": false,
        })
    }
    fn validate(&self) -> Result<(), String> {
        if self.plan.is_empty() || self.plan.len() > PLAN_MAX_STEPS {
            return Err(format!(
                "`plan` has {} steps, expected 1 to {PLAN_MAX_STEPS}",
                self.plan.len()
            ));
        }
        for (i, step) in self.plan.iter().enumerate() {
            if step.trim().is_empty() {
                return Err(format!("`plan[{i}]` is empty"));
            }
            check_text(&format!("plan[{i}]"), step, PLAN_STEP_MAX_CHARS)?;
        }
        Ok(())
    }
}

/// A Game Boy input the dialog judge can advise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// Press A.
    A,
    /// Press B.
    B,
    /// Press Up.
    Up,
    /// Press Down.
    Down,
    /// Press Left.
    Left,
    /// Press Right.
    Right,
    /// Press Start.
    Start,
    /// Press Select.
    Select,
    /// Press nothing.
    None,
}

impl Input {
    /// Every input, in schema order.
    pub const ALL: [Input; 9] = [
        Input::A,
        Input::B,
        Input::Up,
        Input::Down,
        Input::Left,
        Input::Right,
        Input::Start,
        Input::Select,
        Input::None,
    ];

    /// The snake_case name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Input::A => "a",
            Input::B => "b",
            Input::Up => "up",
            Input::Down => "down",
            Input::Left => "left",
            Input::Right => "right",
            Input::Start => "start",
            Input::Select => "select",
            Input::None => "none",
        }
    }
}

/// `/dialog`: whether an open dialog was handled and what to press next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialogAdvice {
    /// The dialog was read through and closed (or answered) during the segment.
    pub handled: bool,
    /// The input advised next.
    pub next_input: Input,
}

impl Judgment for DialogAdvice {
    const NAME: &'static str = "dialog_advice";
    fn schema() -> Value {
        let names: Vec<&str> = Input::ALL.iter().map(|s| s.name()).collect();
        json!({
            "type": "object",
            "properties": {
                "handled": {"type": "boolean"},
                "next_input": {"type": "string", "enum": names},
            },
            "required": ["handled", "next_input"],
            "additionalProperties": false,
        })
    }
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Which of two segments made more progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preference {
    /// The first segment.
    First,
    /// The second segment.
    Second,
    /// Neither, or the judge cannot tell (a Bradley-Terry label of 0.5).
    Tie,
}

impl Preference {
    /// The Bradley-Terry target: probability that the first segment is preferred.
    pub fn first_wins_probability(self) -> f64 {
        match self {
            Preference::First => 1.0,
            Preference::Second => 0.0,
            Preference::Tie => 0.5,
        }
    }
}

/// Compare mode (`/vision`, `/state`): a short analysis, then the preference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    /// The judge's reasoning, one line; written before the label, as RL-VLM-F does.
    pub analysis: String,
    /// Which segment made more progress.
    pub more_progress: Preference,
}

impl Judgment for Comparison {
    const NAME: &'static str = "comparison";
    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "analysis": {"type": "string", "maxLength": ANALYSIS_MAX_CHARS},
                "more_progress": {"type": "string", "enum": ["first", "second", "tie"]},
            },
            "required": ["analysis", "more_progress"],
            "additionalProperties": false,
        })
    }
    fn validate(&self) -> Result<(), String> {
        check_text("analysis", &self.analysis, ANALYSIS_MAX_CHARS)
    }
}

/// Parses and checks a reply's content. Tolerates surrounding whitespace and a Markdown
/// code fence (servers without guided decoding add one); nothing else.
pub fn parse_reply<T: Judgment>(content: &str) -> Result<T, String> {
    let mut text = content.trim();
    if let Some(rest) = text.strip_prefix("```") {
        let rest = rest.strip_prefix("json").unwrap_or(rest);
        text = rest.strip_suffix("```").unwrap_or(rest).trim();
    }
    let mut value: T = serde_json::from_str(text).map_err(|e| {
        let mut shown: String = content.chars().take(200).collect();
        if shown.len() < content.len() {
            shown.push('…');
        }
        format!(
            "reply does not match the `{}` schema: {e}; content: {shown:?}",
            T::NAME
        )
    })?;
    value.normalise();
    value
        .validate()
        .map_err(|e| format!("reply violates the `{}` schema: {e}", T::NAME))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_replies() {
        let v: VisionScore =
            parse_reply(r#"{"summary":"walked east","progress":3,"novelty":5,"danger":1}"#)
                .unwrap();
        assert_eq!(v.progress, 3);
        let s: StateScore = parse_reply(
            "```json\n{\"subgoals_reached\":[\"new_room\",\"got_rupees\"],\"progress\":6}\n```",
        )
        .unwrap();
        assert_eq!(
            s.subgoals_reached,
            vec![Subgoal::NewRoom, Subgoal::GotRupees]
        );
        let s: StateScore =
            parse_reply(r#"{"subgoals_reached":["healed","new_room","healed"],"progress":1}"#)
                .unwrap();
        assert_eq!(
            s.subgoals_reached,
            vec![Subgoal::Healed, Subgoal::NewRoom],
            "repeats are dropped"
        );
        let d: DialogAdvice = parse_reply(r#"{"handled":false,"next_input":"a"}"#).unwrap();
        assert_eq!(d.next_input, Input::A);
        let c: Comparison = parse_reply(r#"{"analysis":"x","more_progress":"tie"}"#).unwrap();
        assert_eq!(c.more_progress.first_wins_probability(), 0.5);
    }

    #[test]
    fn rejects_replies_outside_the_schema() {
        let cases = [
            parse_reply::<VisionScore>(r#"{"summary":"x","progress":11,"novelty":0,"danger":0}"#)
                .err(),
            parse_reply::<VisionScore>(r#"{"summary":"x","progress":1,"novelty":0}"#).err(),
            parse_reply::<VisionScore>(r#"{"summary":"a\nb","progress":1,"novelty":0,"danger":0}"#)
                .err(),
            parse_reply::<VisionScore>(
                r#"{"summary":"x","progress":1,"novelty":0,"danger":0,"extra":1}"#,
            )
            .err(),
            parse_reply::<StateScore>(r#"{"subgoals_reached":["won_game"],"progress":1}"#).err(),
            parse_reply::<PuzzlePlan>(r#"{"plan":[],"puzzle_advanced":true}"#).err(),
            parse_reply::<DialogAdvice>(r#"{"handled":"yes","next_input":"a"}"#).err(),
            parse_reply::<Comparison>("The first one made more progress.").err(),
        ];
        for (i, e) in cases.iter().enumerate() {
            assert!(e.is_some(), "case {i} was accepted");
        }
        let e =
            parse_reply::<VisionScore>(r#"{"summary":"x","progress":11,"novelty":0,"danger":0}"#)
                .unwrap_err();
        assert!(e.contains("progress") && e.contains("vision_score"), "{e}");
    }

    #[test]
    fn schemas_list_every_field_as_required() {
        for schema in [
            VisionScore::schema(),
            StateScore::schema(),
            PuzzlePlan::schema(),
            DialogAdvice::schema(),
            Comparison::schema(),
        ] {
            let props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
            let required: Vec<&str> = schema["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(props.len(), required.len(), "{schema}");
            for p in props {
                assert!(
                    required.contains(&p.as_str()),
                    "{p} not required in {schema}"
                );
            }
        }
    }
}
