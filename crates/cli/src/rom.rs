//! `zelda-rl rom`: inspect ROM files.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use sha1::{Digest, Sha1};

/// `rom` subcommands.
#[derive(Debug, Subcommand)]
pub enum RomCommand {
    /// Print the cartridge header: title, type, sizes, checksums, SHA-1.
    Info(InfoArgs),
}

/// Options of `rom info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// ROM file.
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `rom` subcommand.
pub fn run(cmd: RomCommand) -> anyhow::Result<()> {
    match cmd {
        RomCommand::Info(args) => info(&args),
    }
}

fn size(bytes: usize) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

fn info(args: &InfoArgs) -> anyhow::Result<()> {
    let path = &args.file;
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let h = gameboy::Header::parse(&data).with_context(|| format!("{}", path.display()))?;
    let sha1 = hex::encode(Sha1::digest(&data));
    // Whether this emulator can run it (and if not, why).
    let runnable = gameboy::GameBoy::new(data.clone()).err();
    let ok = |b: bool| if b { "valid" } else { "INVALID" };
    if args.json {
        let v = serde_json::json!({
            "file": path.display().to_string(),
            "title": h.title,
            "cartridge_type": h.cartridge_type,
            "cartridge_type_name": h.cartridge_type_name(),
            "rom_size": h.rom_size,
            "file_size": data.len(),
            "ram_size": h.ram_size,
            "cgb_flag": h.cgb_flag,
            "sgb_flag": h.sgb_flag,
            "header_checksum": h.header_checksum,
            "header_checksum_computed": h.header_checksum_computed,
            "header_checksum_ok": h.header_checksum_ok(),
            "global_checksum": h.global_checksum,
            "global_checksum_computed": h.global_checksum_computed,
            "global_checksum_ok": h.global_checksum_ok(),
            "logo_ok": h.logo_ok,
            "sha1": sha1,
            "supported": runnable.is_none(),
            "unsupported_reason": runnable.as_ref().map(|e| e.to_string()),
        });
        println!("{v}");
        return Ok(());
    }
    println!("file:            {}", path.display());
    println!("title:           {}", h.title);
    println!(
        "cartridge type:  0x{:02X} {}",
        h.cartridge_type,
        h.cartridge_type_name()
    );
    println!(
        "ROM size:        {} (code 0x{:02X}); file is {}",
        size(h.rom_size),
        h.rom_size_code,
        size(data.len())
    );
    println!(
        "RAM size:        {} (code 0x{:02X})",
        size(h.ram_size),
        h.ram_size_code
    );
    println!(
        "CGB flag:        0x{:02X} ({})",
        h.cgb_flag,
        match h.cgb_flag {
            0xC0 => "CGB only",
            0x80 => "CGB enhanced, runs on DMG",
            _ => "DMG",
        }
    );
    println!("SGB flag:        0x{:02X}", h.sgb_flag);
    println!(
        "header checksum: 0x{:02X} (computed 0x{:02X}, {})",
        h.header_checksum,
        h.header_checksum_computed,
        ok(h.header_checksum_ok())
    );
    println!(
        "global checksum: 0x{:04X} (computed 0x{:04X}, {})",
        h.global_checksum,
        h.global_checksum_computed,
        ok(h.global_checksum_ok())
    );
    println!("logo:            {}", ok(h.logo_ok));
    println!("SHA-1:           {sha1}");
    match runnable {
        None => println!("emulator:        supported ({})", gameboy::VERSION),
        Some(e) => println!("emulator:        NOT runnable: {e}"),
    }
    Ok(())
}
