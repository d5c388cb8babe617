//! Repository automation, run as `cargo xtask <command>`.
//!
//! Everything a contributor or CI needs beyond `cargo build`/`cargo test` lives here, so
//! that the steps are written once, in Rust, and work the same on every machine.

mod bench;
mod cartridges;
mod gitops;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "zelda-rl repository automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build the test cartridges under `cartridges/` with SDCC.
    Cartridges(cartridges::Args),
    /// Render and validate the GitOps tree under `gitops/`.
    Gitops(gitops::Args),
    /// Benchmarks that print ratios against their anchors measured in the same run.
    Bench(bench::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Cartridges(args) => cartridges::run(&args),
        Command::Gitops(args) => gitops::run(&args),
        Command::Bench(args) => bench::run(&args),
    }
}

/// The repository root (the parent of `xtask/`).
pub fn repo_root() -> std::path::PathBuf {
    let built = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the repository root");
    if built.join("xtask").is_dir() {
        return built.to_path_buf();
    }
    // A copied xtask binary (a GPU box without a toolchain) runs from a checkout elsewhere.
    std::env::current_dir().expect("the current directory is readable")
}
