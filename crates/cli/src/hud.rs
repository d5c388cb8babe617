//! `zelda-rl hud`: the live web page of the agents (see the `hud` crate).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::common::{StoreArgs, runtime};

/// Options of `zelda-rl hud`.
#[derive(Debug, Args)]
pub struct HudArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address the page is served on (`0.0.0.0:8080` in a pod; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Serve Prometheus metrics on this address (`/metrics`).
    #[arg(long)]
    metrics_addr: Option<String>,
    /// Cartridge stored segments are replayed on (default: the bundled mini-zelda);
    /// segments of another cartridge show their stored keyframes. Deliberately not read from
    /// `ROM`: the HUD's pod does not mount the ROM.
    #[arg(long)]
    rom: Option<PathBuf>,
    /// Run shown first (default: the run the workers last published).
    #[arg(long, env = "RUN")]
    run: Option<String>,
}

/// Runs `zelda-rl hud` until interrupted.
pub fn run(args: HudArgs) -> Result<()> {
    if let Some(run) = &args.run {
        crate::rollout::validate_run_id(run)?;
    }
    let (rom, rom_name) = match &args.rom {
        Some(p) => (
            std::fs::read(p).with_context(|| format!("reading ROM {}", p.display()))?,
            p.display().to_string(),
        ),
        None => (
            zelda::MINI_ZELDA.to_vec(),
            "mini-zelda (bundled)".to_string(),
        ),
    };
    gameboy::GameBoy::new(rom.clone()).with_context(|| format!("ROM {rom_name}"))?;
    let store = args.store.open()?;
    let metrics = telemetry::Metrics::new();
    let metrics_server = args
        .metrics_addr
        .as_deref()
        .map(|addr| telemetry::serve_metrics(metrics.clone(), addr))
        .transpose()?;
    let rt = runtime()?;
    rt.block_on(async move {
        if let Err(e) = store.check().await {
            // The live view works without the store; the browser and scores say what failed.
            tracing::warn!(store = store.url(), error = %e, "store not reachable; segments and scores unavailable until it is");
        }
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        // Tests and scripts read the real port from this line.
        println!("HUD on http://{addr}/");
        if let Some(m) = &metrics_server {
            println!("metrics on http://{}/metrics", m.local_addr());
        }
        std::io::stdout().flush()?;
        tracing::info!(%addr, store = store.url(), rom = rom_name, "HUD serving");
        let hud = hud::Hud::new(hud::HudConfig {
            store,
            rom,
            rom_name,
            run: args.run,
            metrics,
        });
        hud::serve(listener, hud, hud::shutdown_signal()).await?;
        tracing::info!("HUD stopped");
        Ok(())
    })
}
