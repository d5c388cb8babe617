//! `cargo xtask gitops`: render every kustomization and validate the result offline.

/// Options of `cargo xtask gitops`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("gitops validation is not written yet")
}
