//! The agent's action set and how one action becomes button presses.

use gameboy::Buttons;
use serde::{Deserialize, Serialize};

/// One discrete action: a set of buttons pressed together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Press nothing.
    Noop,
    /// D-pad right.
    Right,
    /// D-pad left.
    Left,
    /// D-pad up.
    Up,
    /// D-pad down.
    Down,
    /// A (sword in mini-zelda and, by default, in the game).
    A,
    /// B (the equipped item).
    B,
    /// Right + A.
    RightA,
    /// Left + A.
    LeftA,
    /// Up + A.
    UpA,
    /// Down + A.
    DownA,
    /// Right + B.
    RightB,
    /// Left + B.
    LeftB,
    /// Up + B.
    UpB,
    /// Down + B.
    DownB,
    /// START (menus; off by default).
    Start,
    /// SELECT (menus; off by default).
    Select,
}

impl Action {
    /// Every action, in index order of the full set.
    pub const ALL: [Action; 17] = [
        Action::Noop,
        Action::Right,
        Action::Left,
        Action::Up,
        Action::Down,
        Action::A,
        Action::B,
        Action::RightA,
        Action::LeftA,
        Action::UpA,
        Action::DownA,
        Action::RightB,
        Action::LeftB,
        Action::UpB,
        Action::DownB,
        Action::Start,
        Action::Select,
    ];

    /// The buttons held for this action.
    pub fn buttons(self) -> Buttons {
        use Action::*;
        match self {
            Noop => Buttons::NONE,
            Right => Buttons::RIGHT,
            Left => Buttons::LEFT,
            Up => Buttons::UP,
            Down => Buttons::DOWN,
            A => Buttons::A,
            B => Buttons::B,
            RightA => Buttons::RIGHT | Buttons::A,
            LeftA => Buttons::LEFT | Buttons::A,
            UpA => Buttons::UP | Buttons::A,
            DownA => Buttons::DOWN | Buttons::A,
            RightB => Buttons::RIGHT | Buttons::B,
            LeftB => Buttons::LEFT | Buttons::B,
            UpB => Buttons::UP | Buttons::B,
            DownB => Buttons::DOWN | Buttons::B,
            Start => Buttons::START,
            Select => Buttons::SELECT,
        }
    }

    /// Kebab-case name, as in configs and segment metadata.
    pub fn name(self) -> &'static str {
        use Action::*;
        match self {
            Noop => "noop",
            Right => "right",
            Left => "left",
            Up => "up",
            Down => "down",
            A => "a",
            B => "b",
            RightA => "right-a",
            LeftA => "left-a",
            UpA => "up-a",
            DownA => "down-a",
            RightB => "right-b",
            LeftB => "left-b",
            UpB => "up-b",
            DownB => "down-b",
            Start => "start",
            Select => "select",
        }
    }

    /// Parses a kebab-case name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// The actions an agent chooses from; index `i` is the policy's output `i`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionSet(Vec<Action>);

impl ActionSet {
    /// The 15 default actions: no-op, 4 directions, A, B, direction+A and direction+B
    /// (as the most careful Link's Awakening env, ladx-rl, uses); with `start_select`, also
    /// START and SELECT.
    pub fn standard(start_select: bool) -> Self {
        let n = if start_select { 17 } else { 15 };
        Self(Action::ALL[..n].to_vec())
    }

    /// A custom set; errors on an empty or repeating list.
    pub fn new(actions: Vec<Action>) -> Result<Self, String> {
        if actions.is_empty() {
            return Err("the action set is empty".into());
        }
        for (i, a) in actions.iter().enumerate() {
            if actions[..i].contains(a) {
                return Err(format!("action `{}` is listed twice", a.name()));
            }
        }
        Ok(Self(actions))
    }

    /// Number of actions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true (construction rejects empty sets); present for clippy's sake.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The action at a policy index.
    pub fn get(&self, index: usize) -> Option<Action> {
        self.0.get(index).copied()
    }

    /// The actions in index order.
    pub fn actions(&self) -> &[Action] {
        &self.0
    }

    /// Their names in index order.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|a| a.name()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_sets() {
        assert_eq!(ActionSet::standard(false).len(), 15);
        assert_eq!(ActionSet::standard(true).len(), 17);
        assert!(
            !ActionSet::standard(false)
                .actions()
                .contains(&Action::Start)
        );
    }

    #[test]
    fn names_round_trip() {
        for a in Action::ALL {
            assert_eq!(Action::from_name(a.name()), Some(a));
        }
        assert_eq!(Action::from_name("jump"), None);
    }

    #[test]
    fn combos_press_both() {
        assert_eq!(Action::UpB.buttons(), Buttons::UP | Buttons::B);
        assert_eq!(Action::Noop.buttons(), Buttons::NONE);
    }

    #[test]
    fn custom_set_rejects_duplicates() {
        assert!(ActionSet::new(vec![Action::A, Action::A]).is_err());
        assert!(ActionSet::new(vec![]).is_err());
    }
}
