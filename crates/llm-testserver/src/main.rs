//! `llm-testserver`: the test server as a process, for benchmarks and manual runs.
//!
//! Prints `listening on http://ADDR` as its first stdout line once it accepts connections,
//! and runs until killed or until stdin closes (so it never outlives the parent that
//! spawned it with a pipe).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use llm_testserver::{ServerConfig, TestServer};
use tokio::io::AsyncReadExt as _;

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "llm-testserver",
    about = "OpenAI-compatible chat-completions test server"
)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Fixed time every reply takes, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Model names to serve (repeatable); none accepts any name.
    #[arg(long = "model")]
    models: Vec<String>,
    /// Worker threads of the server's runtime.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Exit when stdin reaches end of file.
    #[arg(long)]
    exit_on_stdin_eof: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    rt.block_on(async {
        let config = ServerConfig {
            delay: Duration::from_millis(args.delay_ms),
            models: args.models.clone(),
            record: false,
        };
        let server = TestServer::bind(args.addr, config)
            .await
            .with_context(|| format!("binding {}", args.addr))?;
        println!("listening on {}", server.base_url());
        if args.exit_on_stdin_eof {
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 64];
            while stdin.read(&mut buf).await.unwrap_or(0) > 0 {}
        } else {
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl-C")?;
        }
        server.shutdown();
        anyhow::Ok(())
    })
}
