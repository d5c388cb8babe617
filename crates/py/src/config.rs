//! The `[env]` and `[reward]` tables of a zelda-rl settings file, read from TOML text.

use serde::Deserialize;
use zelda::{EnvConfig, RewardConfig};

/// Why a settings text was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The text is not TOML, a field is unknown or has the wrong type (the message shows
    /// the line, the field and what was expected).
    #[error("config_toml: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is out of range (the message names the field, e.g. `env.frame_skip`).
    #[error("config_toml: {0}")]
    Invalid(String),
}

/// A whole settings file: `[env]` and `[reward]` are used, the other tables of
/// `zelda-rl train` settings are accepted (so the same file works) and ignored; any other
/// top-level key is an error, so a misspelt `[evn]` is not silently dropped.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct SettingsFile {
    env: EnvConfig,
    reward: RewardConfig,
    #[allow(dead_code)]
    segments: Option<toml::Table>,
    #[allow(dead_code)]
    train: Option<toml::Table>,
    #[allow(dead_code)]
    ppo: Option<toml::Table>,
    #[allow(dead_code)]
    reward_model: Option<toml::Table>,
}

/// Reads the `[env]` and `[reward]` tables of `text` (`None`: the defaults) and checks
/// their ranges.
pub fn parse(text: Option<&str>) -> Result<(EnvConfig, RewardConfig), ConfigError> {
    let file: SettingsFile = match text {
        Some(t) => toml::from_str(t)?,
        None => SettingsFile::default(),
    };
    file.env.validate().map_err(ConfigError::Invalid)?;
    file.reward.validate().map_err(ConfigError::Invalid)?;
    Ok((file.env, file.reward))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_absent_are_the_defaults() {
        let (e, r) = parse(None).unwrap();
        assert_eq!(e, EnvConfig::default());
        assert_eq!(r, RewardConfig::default());
        let (e2, r2) = parse(Some("")).unwrap();
        assert_eq!((e2, r2), (e, r));
    }

    #[test]
    fn reads_env_and_reward_and_accepts_other_train_tables() {
        let (e, r) = parse(Some(
            "[env]\nframe_skip = 4\npress_frames = 2\n[reward]\nstep = -0.5\n\
             [train]\nenvs = 3\n[ppo]\ngamma = 0.9\n",
        ))
        .unwrap();
        assert_eq!((e.frame_skip, e.press_frames), (4, 2));
        assert_eq!(r.step, -0.5);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(Some("[env]\nframe_skipp = 4\n")).unwrap_err();
        assert!(e.to_string().contains("frame_skipp"), "{e}");
        let e = parse(Some("[env]\nframe_skip = \"four\"\n")).unwrap_err();
        assert!(e.to_string().contains("frame_skip"), "{e}");
        let e = parse(Some("[evn]\nframe_skip = 4\n")).unwrap_err();
        assert!(e.to_string().contains("evn"), "{e}");
        let e = parse(Some("[env]\npress_frames = 99\n")).unwrap_err();
        assert!(e.to_string().contains("env.press_frames"), "{e}");
        let e = parse(Some("[reward]\ndeath = nan\n")).unwrap_err();
        assert!(e.to_string().contains("reward.death"), "{e}");
    }
}
