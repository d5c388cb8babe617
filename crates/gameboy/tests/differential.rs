//! Differential test against PyBoy 2.8.1 (the reference emulator) on the project's own
//! cartridge: every input script under `tests/reference/scripts/` is replayed in both
//! emulators and work RAM, HRAM and the rendered frame are compared every 25 frames and at
//! the end.
//!
//! Alignment: PyBoy's harness starts from a tiny boot ROM that leaves the post-boot state
//! (see `tests/reference/pyboy_runner.py`), as this core does. PyBoy ends a frame when LY
//! wraps from 153 to 0, this core when LY reaches 144; at each checkpoint our emulator
//! therefore runs on to LY 0 before RAM is compared, so both are at the same point of the
//! same frame. Needs the project venv (`.venv`, made by `scripts/test`).

use std::path::{Path, PathBuf};
use std::process::Command;

use gameboy::{GameBoy, InputScript};

const RAM_LEN: usize = 0x2000 + 0x7F;
const SCREEN_LEN: usize = 160 * 144;
const EVERY: u32 = 25;

/// mini-zelda's diagnostics that record which line LY showed when some work finished
/// (`dbg_update_ly`, `dbg_vblank_ly`, `dbg_ly`). They sample the exact cycle, and PyBoy and
/// this core time LY reads a few cycles apart (both pass the Mooneye PPU timing tests,
/// which only measure relative timing), so when the work ends right at a line boundary they
/// may differ by one line. They may not differ by more; everything else must be equal.
const LY_SAMPLES: [usize; 3] = [0xC0A1, 0xC0A2, 0xC0A6];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("repo root")
        .to_path_buf()
}

fn ram(gb: &GameBoy) -> Vec<u8> {
    (0xC000u16..=0xDFFF)
        .chain(0xFF80..=0xFFFE)
        .map(|a| gb.peek(a))
        .collect()
}

#[test]
fn mini_zelda_matches_pyboy() {
    let repo = repo();
    let rom_path = repo.join("cartridges/mini-zelda/mini-zelda.gb");
    let python = repo.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: create the project venv (scripts/test does) to run the PyBoy differential test",
        python.display()
    );
    let rom = std::fs::read(&rom_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (build it with `cargo xtask cartridges`)",
            rom_path.display()
        )
    });

    let mut scripts: Vec<PathBuf> = std::fs::read_dir(repo.join("tests/reference/scripts"))
        .expect("tests/reference/scripts")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty(), "no input scripts");
    let parsed: Vec<(InputScript, u32)> = scripts
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let s = InputScript::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let frames = s.entries().last().map_or(1, |&(f, _)| f + 1) as u32;
            (s, frames)
        })
        .collect();

    let out = std::env::temp_dir().join(format!("gameboy-diff-{}.bin", std::process::id()));
    let mut cmd = Command::new(&python);
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyboy_checkpoints.py"))
        .arg(&rom_path)
        .arg(&out);
    for (p, (_, frames)) in scripts.iter().zip(&parsed) {
        cmd.arg(format!("{}:{frames}:{EVERY}", p.display()));
    }
    let status = cmd.status().expect("run PyBoy");
    assert!(status.success(), "PyBoy checkpoint script failed: {status}");
    let data = std::fs::read(&out).expect("checkpoint file");
    let _ = std::fs::remove_file(&out);

    let record = 8 + RAM_LEN + SCREEN_LEN;
    assert_eq!(data.len() % record, 0, "checkpoint file size");
    let mut records = data.chunks_exact(record).peekable();
    let mut failures = Vec::new();
    let mut compared = 0;
    for (index, ((script, frames), path)) in parsed.iter().zip(&scripts).enumerate() {
        let mut gb = GameBoy::new(rom.clone()).unwrap();
        for n in 1..=*frames {
            gb.set_buttons(script.buttons_at(n as u64 - 1));
            let checkpoint = n % EVERY == 0 || n == *frames;
            gb.run_frame(checkpoint);
            if !checkpoint {
                continue;
            }
            let rec = records
                .next()
                .expect("PyBoy wrote fewer checkpoints than expected");
            let idx = u32::from_le_bytes(rec[0..4].try_into().unwrap()) as usize;
            let frame = u32::from_le_bytes(rec[4..8].try_into().unwrap());
            assert_eq!((idx, frame), (index, n), "checkpoint order");
            let shades = gb.frame().to_vec();
            assert!(gb.run_until_ly(0), "LY 0 not reached after frame {n}");
            let ours = ram(&gb);
            let theirs = &rec[8..8 + RAM_LEN];
            let pixels = &rec[8 + RAM_LEN..];
            compared += 1;
            let ram_diffs: Vec<String> = ours
                .iter()
                .zip(theirs)
                .enumerate()
                .map(|(i, (a, b))| {
                    let addr = if i < 0x2000 {
                        0xC000 + i
                    } else {
                        0xFF80 + i - 0x2000
                    };
                    (addr, *a, *b)
                })
                .filter(|&(addr, a, b)| {
                    a != b && !(LY_SAMPLES.contains(&addr) && a.abs_diff(b) <= 1)
                })
                .map(|(addr, a, b)| format!("{addr:04X}: ours {a:02X} pyboy {b:02X}"))
                .collect();
            let pixel_diffs = shades.iter().zip(pixels).filter(|(a, b)| a != b).count();
            if !ram_diffs.is_empty() || pixel_diffs != 0 {
                failures.push(format!(
                    "{} frame {n}: {} RAM bytes differ [{}], {pixel_diffs} pixels differ",
                    path.file_name().unwrap().to_string_lossy(),
                    ram_diffs.len(),
                    ram_diffs
                        .iter()
                        .take(12)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    assert!(
        records.next().is_none(),
        "PyBoy wrote more checkpoints than expected"
    );
    eprintln!(
        "compared {compared} checkpoints over {} scripts",
        scripts.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {compared} checkpoints differ from PyBoy:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
