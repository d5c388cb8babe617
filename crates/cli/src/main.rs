//! The `zelda-rl` binary: parse arguments, set up logging, dispatch.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = zelda_rl_cli::Cli::parse();
    zelda_rl_cli::init_logging(&cli.global);
    match zelda_rl_cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
