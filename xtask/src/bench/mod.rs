//! `cargo xtask bench <target>`: benchmarks that measure our code and its anchor in the
//! same run and print the ratio.

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which benchmark.
    #[command(subcommand)]
    target: Target,
}

#[derive(Debug, clap::Subcommand)]
enum Target {}

pub fn run(args: &Args) -> anyhow::Result<()> {
    match args.target {}
}
