//! Accuracy suite: Blargg and Mooneye test ROMs from the `tgbr` 0.4.0 package.
//!
//! The ROMs are not in this repository. `tgbr` is declared as a never-compiled
//! dev-dependency, so `cargo fetch` downloads it and `cargo metadata` tells where it is.
//! Every ROM's verdict is compared with `tests/expected/roms.txt`; the test fails when
//! any verdict changes, in either direction. Set `GAMEBOY_BLESS=1` to rewrite the file
//! after checking a change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use gameboy::{GameBoy, Model};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Verdict from the text sent over serial ("Passed"/"Failed").
    BlarggSerial,
    /// Verdict from the result block at 0xA000 (signature DE B0 61, status at 0xA000).
    BlarggMemory,
    /// Verdict from the registers at `LD B,B` (Fibonacci 3 5 8 13 21 34 = pass).
    Mooneye,
    /// Verdict from the text on screen ("Passed"/"Failed"): ROMs without serial output or
    /// cartridge RAM. Blargg's font maps tile N to ASCII N, so the BG map is the text.
    BlarggScreen,
}

struct Rom {
    /// Path relative to tgbr's `tests/` folder.
    path: &'static str,
    kind: Kind,
    /// Emulated frames before giving up.
    max_frames: u32,
    /// The machine it runs on.
    model: Model,
}

impl Rom {
    /// Key in the results file: the path, prefixed with `cgb/` for CGB runs.
    fn key(&self) -> String {
        match self.model {
            Model::Dmg => self.path.to_string(),
            Model::Cgb => format!("cgb/{}", self.path),
        }
    }

    fn on_cgb(self) -> Rom {
        Rom {
            model: Model::Cgb,
            ..self
        }
    }
}

const fn blargg(path: &'static str, max_frames: u32) -> Rom {
    Rom {
        path,
        kind: Kind::BlarggSerial,
        max_frames,
        model: Model::Dmg,
    }
}

const fn blargg_mem(path: &'static str, max_frames: u32) -> Rom {
    Rom {
        path,
        kind: Kind::BlarggMemory,
        max_frames,
        model: Model::Dmg,
    }
}

const fn mooneye(path: &'static str) -> Rom {
    Rom {
        path,
        kind: Kind::Mooneye,
        max_frames: 1200,
        model: Model::Dmg,
    }
}

/// Mooneye acceptance tests that apply to a DMG: no model suffix, or a suffix whose model
/// list includes the DMG (-GS, -dmgABC*). -S, -dmg0, -mgb, -sgb* and CGB/AGB ones are out.
const MOONEYE_ACCEPTANCE: &[&str] = &[
    "add_sp_e_timing",
    "bits/mem_oam",
    "bits/reg_f",
    "bits/unused_hwio-GS",
    "boot_div-dmgABCmgb",
    "boot_hwio-dmgABCmgb",
    "boot_regs-dmgABC",
    "call_cc_timing",
    "call_cc_timing2",
    "call_timing",
    "call_timing2",
    "di_timing-GS",
    "div_timing",
    "ei_sequence",
    "ei_timing",
    "halt_ime0_ei",
    "halt_ime0_nointr_timing",
    "halt_ime1_timing",
    "halt_ime1_timing2-GS",
    "if_ie_registers",
    "instr/daa",
    "interrupts/ie_push",
    "intr_timing",
    "jp_cc_timing",
    "jp_timing",
    "ld_hl_sp_e_timing",
    "oam_dma/basic",
    "oam_dma/reg_read",
    "oam_dma/sources-GS",
    "oam_dma_restart",
    "oam_dma_start",
    "oam_dma_timing",
    "pop_timing",
    "ppu/hblank_ly_scx_timing-GS",
    "ppu/intr_1_2_timing-GS",
    "ppu/intr_2_0_timing",
    "ppu/intr_2_mode0_timing",
    "ppu/intr_2_mode0_timing_sprites",
    "ppu/intr_2_mode3_timing",
    "ppu/intr_2_oam_ok_timing",
    "ppu/lcdon_timing-GS",
    "ppu/lcdon_write_timing-GS",
    "ppu/stat_irq_blocking",
    "ppu/stat_lyc_onoff",
    "ppu/vblank_stat_intr-GS",
    "push_timing",
    "rapid_di_ei",
    "ret_cc_timing",
    "ret_timing",
    "reti_intr_timing",
    "reti_timing",
    "rst_timing",
    "serial/boot_sclk_align-dmgABCmgb",
    "timer/div_write",
    "timer/rapid_toggle",
    "timer/tim00",
    "timer/tim00_div_trigger",
    "timer/tim01",
    "timer/tim01_div_trigger",
    "timer/tim10",
    "timer/tim10_div_trigger",
    "timer/tim11",
    "timer/tim11_div_trigger",
    "timer/tima_reload",
    "timer/tima_write_reloading",
    "timer/tma_write_reloading",
];

const MOONEYE_MBC: &[&str] = &[
    "mbc1/bits_bank1",
    "mbc1/bits_bank2",
    "mbc1/bits_mode",
    "mbc1/bits_ramg",
    "mbc1/multicart_rom_8Mb",
    "mbc1/ram_256kb",
    "mbc1/ram_64kb",
    "mbc1/rom_16Mb",
    "mbc1/rom_1Mb",
    "mbc1/rom_2Mb",
    "mbc1/rom_4Mb",
    "mbc1/rom_512kb",
    "mbc1/rom_8Mb",
    "mbc2/bits_ramg",
    "mbc2/bits_romb",
    "mbc2/bits_unused",
    "mbc2/ram",
    "mbc2/rom_1Mb",
    "mbc2/rom_2Mb",
    "mbc2/rom_512kb",
    "mbc5/rom_16Mb",
    "mbc5/rom_1Mb",
    "mbc5/rom_2Mb",
    "mbc5/rom_32Mb",
    "mbc5/rom_4Mb",
    "mbc5/rom_512kb",
    "mbc5/rom_64Mb",
    "mbc5/rom_8Mb",
];

fn blargg_roms() -> Vec<Rom> {
    let mut v = vec![
        blargg("blargg/cpu_instrs/cpu_instrs.gb", 4000),
        blargg("blargg/cpu_instrs/individual/01-special.gb", 600),
        blargg("blargg/cpu_instrs/individual/02-interrupts.gb", 600),
        blargg("blargg/cpu_instrs/individual/03-op sp,hl.gb", 600),
        blargg("blargg/cpu_instrs/individual/04-op r,imm.gb", 600),
        blargg("blargg/cpu_instrs/individual/05-op rp.gb", 600),
        blargg("blargg/cpu_instrs/individual/06-ld r,r.gb", 600),
        blargg("blargg/cpu_instrs/individual/07-jr,jp,call,ret,rst.gb", 600),
        blargg("blargg/cpu_instrs/individual/08-misc instrs.gb", 600),
        blargg("blargg/cpu_instrs/individual/09-op r,r.gb", 1200),
        blargg("blargg/cpu_instrs/individual/10-bit ops.gb", 1600),
        blargg("blargg/cpu_instrs/individual/11-op a,(hl).gb", 1600),
        blargg("blargg/instr_timing/instr_timing.gb", 600),
        blargg("blargg/mem_timing/mem_timing.gb", 600),
        blargg("blargg/mem_timing/individual/01-read_timing.gb", 600),
        blargg("blargg/mem_timing/individual/02-write_timing.gb", 600),
        blargg("blargg/mem_timing/individual/03-modify_timing.gb", 600),
        blargg_mem("blargg/mem_timing-2/mem_timing.gb", 900),
        blargg_mem("blargg/mem_timing-2/rom_singles/01-read_timing.gb", 600),
        blargg_mem("blargg/mem_timing-2/rom_singles/02-write_timing.gb", 600),
        blargg_mem("blargg/mem_timing-2/rom_singles/03-modify_timing.gb", 600),
        blargg_mem("blargg/halt_bug.gb", 600),
        blargg_mem("blargg/oam_bug/oam_bug.gb", 4000),
        blargg_mem("blargg/oam_bug/rom_singles/1-lcd_sync.gb", 600),
        blargg_mem("blargg/oam_bug/rom_singles/2-causes.gb", 600),
        blargg_mem("blargg/oam_bug/rom_singles/3-non_causes.gb", 600),
        blargg_mem("blargg/oam_bug/rom_singles/4-scanline_timing.gb", 600),
        blargg_mem("blargg/oam_bug/rom_singles/5-timing_bug.gb", 600),
        blargg_mem("blargg/oam_bug/rom_singles/6-timing_no_bug.gb", 600),
        blargg_mem("blargg/oam_bug/rom_singles/7-timing_effect.gb", 900),
        blargg_mem("blargg/oam_bug/rom_singles/8-instr_effect.gb", 600),
    ];
    // Sound: what the registers show (no synthesis), DMG rules.
    for name in SOUND.iter().chain(&["12-wave write while on"]) {
        let path: &'static str =
            Box::leak(format!("blargg/dmg_sound/rom_singles/{name}.gb").into_boxed_str());
        v.push(blargg_mem(path, 1200));
    }
    v
}

/// Blargg's sound tests shared by dmg_sound and cgb_sound (one ROM each); the twelfth
/// differs: `12-wave write while on` (DMG) and `12-wave` (CGB).
const SOUND: &[&str] = &[
    "01-registers",
    "02-len ctr",
    "03-trigger",
    "04-sweep",
    "05-sweep details",
    "06-overflow on trigger",
    "07-len sweep period sync",
    "08-len ctr during power",
    "09-wave read while on",
    "10-wave trigger while on",
    "11-regs after power",
];

/// Mooneye tests for the CGB (run in DMG compatibility mode: they are DMG cartridges).
const MOONEYE_CGB: &[&str] = &[
    "misc/bits/unused_hwio-C",
    "misc/boot_div-cgbABCDE",
    "misc/boot_hwio-C",
    "misc/boot_regs-cgb",
    "misc/ppu/vblank_stat_intr-C",
];

/// ROMs run on a CGB: Blargg's CGB-flagged ROMs in CGB mode, the Mooneye CGB tests.
fn cgb_roms() -> Vec<Rom> {
    let mut v = vec![
        blargg("blargg/cpu_instrs/cpu_instrs.gb", 4000).on_cgb(),
        blargg("blargg/instr_timing/instr_timing.gb", 600).on_cgb(),
        Rom {
            path: "blargg/interrupt_time/interrupt_time.gb",
            kind: Kind::BlarggScreen,
            max_frames: 600,
            model: Model::Cgb,
        },
        blargg("blargg/mem_timing/mem_timing.gb", 600).on_cgb(),
        blargg_mem("blargg/mem_timing-2/mem_timing.gb", 900).on_cgb(),
        blargg_mem("blargg/halt_bug.gb", 600).on_cgb(),
    ];
    for p in MOONEYE_CGB {
        let path: &'static str = Box::leak(format!("mooneye-test-suite/{p}.gb").into_boxed_str());
        v.push(mooneye(path).on_cgb());
    }
    // Same tests with CGB rules for power-off and wave RAM.
    for name in SOUND.iter().chain(&["12-wave"]) {
        let path: &'static str =
            Box::leak(format!("blargg/cgb_sound/rom_singles/{name}.gb").into_boxed_str());
        v.push(blargg_mem(path, 1200).on_cgb());
    }
    v
}

fn all_roms() -> Vec<Rom> {
    let mut v = blargg_roms();
    v.extend(cgb_roms());
    for p in MOONEYE_ACCEPTANCE {
        let path: &'static str =
            Box::leak(format!("mooneye-test-suite/acceptance/{p}.gb").into_boxed_str());
        v.push(mooneye(path));
    }
    for p in MOONEYE_MBC {
        let path: &'static str =
            Box::leak(format!("mooneye-test-suite/emulator-only/{p}.gb").into_boxed_str());
        v.push(mooneye(path));
    }
    v
}

/// The `tests/` folder of the tgbr package, located with `cargo metadata`; runs
/// `cargo fetch` once if the package has not been downloaded yet.
fn rom_dir() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let locate = || -> Option<PathBuf> {
        let out = Command::new(&cargo)
            .args(["metadata", "--format-version", "1", "--manifest-path"])
            .arg(&manifest)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let pkg = meta["packages"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == "tgbr" && p["version"] == "0.4.0")?;
        let dir = PathBuf::from(pkg["manifest_path"].as_str()?)
            .parent()?
            .join("tests");
        dir.join("blargg").is_dir().then_some(dir)
    };
    if let Some(dir) = locate() {
        return dir;
    }
    let status = Command::new(&cargo)
        .args(["fetch", "--manifest-path"])
        .arg(&manifest)
        .status()
        .expect("run cargo fetch");
    assert!(
        status.success(),
        "cargo fetch failed: the test ROMs come from the tgbr 0.4.0 package"
    );
    locate().expect(
        "tgbr 0.4.0 test ROMs not found after cargo fetch (declared in crates/gameboy/Cargo.toml)",
    )
}

/// The visible 20x18 tiles of the BG map at 0x9800 as text, one line per row.
fn screen_text(gb: &GameBoy) -> String {
    let mut text = String::new();
    for row in 0..18u16 {
        for col in 0..20u16 {
            let t = gb.peek(0x9800 + row * 32 + col);
            text.push(if (0x20..0x7F).contains(&t) {
                t as char
            } else {
                ' '
            });
        }
        text.push('\n');
    }
    text
}

/// Runs one ROM to its verdict; the string explains it.
fn run(rom: &Rom, data: Vec<u8>) -> (Verdict, String) {
    let mut gb = match GameBoy::with_model(data, rom.model) {
        Ok(gb) => gb,
        Err(e) => return (Verdict::Fail, format!("load error: {e}")),
    };
    for frame in 0..rom.max_frames {
        match rom.kind {
            Kind::Mooneye => {
                if gb.run_frame_until_ld_b_b(false) {
                    let r = gb.registers();
                    let regs = [r.b, r.c, r.d, r.e, r.h, r.l];
                    return if regs == [3, 5, 8, 13, 21, 34] {
                        (Verdict::Pass, format!("frame {frame}"))
                    } else {
                        (Verdict::Fail, format!("registers {r}"))
                    };
                }
            }
            Kind::BlarggSerial => {
                gb.run_frame(false);
                let text = String::from_utf8_lossy(gb.serial_output());
                if text.contains("Passed") {
                    return (Verdict::Pass, format!("frame {frame}"));
                }
                if text.contains("Failed") {
                    return (Verdict::Fail, text.trim().replace('\n', " | "));
                }
            }
            Kind::BlarggScreen => {
                gb.run_frame(false);
                let text = screen_text(&gb);
                if text.contains("Passed") {
                    return (Verdict::Pass, format!("frame {frame}"));
                }
                if text.contains("Failed") {
                    return (Verdict::Fail, text.trim().replace('\n', " | "));
                }
            }
            Kind::BlarggMemory => {
                gb.run_frame(false);
                let sig = [gb.peek(0xA001), gb.peek(0xA002), gb.peek(0xA003)];
                let status = gb.peek(0xA000);
                if sig == [0xDE, 0xB0, 0x61] && status != 0x80 {
                    let mut text = String::new();
                    let mut a = 0xA004u16;
                    while gb.peek(a) != 0 && a < 0xBFFF {
                        text.push(gb.peek(a) as char);
                        a += 1;
                    }
                    let text = text.trim().replace('\n', " | ");
                    return if status == 0 {
                        (Verdict::Pass, format!("frame {frame}"))
                    } else {
                        (Verdict::Fail, format!("status {status}: {text}"))
                    };
                }
            }
        }
    }
    (
        Verdict::Fail,
        format!("no verdict after {} frames", rom.max_frames),
    )
}

fn expected_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected/roms.txt")
}

/// Expected verdict and comment (the explanation kept next to a known failure) per ROM.
fn read_expected() -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(expected_path()).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (entry, comment) = l.split_once('#').unwrap_or((l, ""));
            let (verdict, path) = entry.trim().split_once(' ')?;
            Some((
                path.trim().to_string(),
                (verdict.to_string(), comment.trim().to_string()),
            ))
        })
        .collect()
}

#[test]
fn test_roms_match_expected_results() {
    let dir = rom_dir();
    // GAMEBOY_ONLY=substring runs the matching ROMs and only reports (for debugging).
    let only = std::env::var("GAMEBOY_ONLY").ok();
    let roms: Vec<Rom> = all_roms()
        .into_iter()
        .filter(|r| only.as_deref().is_none_or(|o| r.key().contains(o)))
        .collect();
    let results = Mutex::new(BTreeMap::new());
    let next = Mutex::new(0usize);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(rom) = roms.get(i) else { break };
                    let data = std::fs::read(dir.join(rom.path))
                        .unwrap_or_else(|e| panic!("read {}: {e}", rom.path));
                    let r = run(rom, data);
                    results.lock().unwrap().insert(rom.key(), r);
                }
            });
        }
    });
    let results = results.into_inner().unwrap();

    let mut report = String::new();
    let count = |prefix: &str| {
        let all: Vec<_> = results
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .collect();
        let pass = all.iter().filter(|(_, (v, _))| *v == Verdict::Pass).count();
        (pass, all.len())
    };
    for (label, prefix) in [
        ("Blargg", "blargg/"),
        ("Mooneye acceptance (DMG)", "mooneye-test-suite/acceptance/"),
        ("Mooneye MBC1", "mooneye-test-suite/emulator-only/mbc1/"),
        ("Mooneye MBC2", "mooneye-test-suite/emulator-only/mbc2/"),
        ("Mooneye MBC5", "mooneye-test-suite/emulator-only/mbc5/"),
        ("CGB (Blargg and Mooneye)", "cgb/"),
    ] {
        let (p, n) = count(prefix);
        report.push_str(&format!("{label}: {p}/{n} pass\n"));
    }
    for (path, (v, why)) in &results {
        if *v == Verdict::Fail {
            report.push_str(&format!("  fail {path}: {why}\n"));
        }
    }
    eprintln!("{report}");
    if only.is_some() {
        return;
    }

    let expected = read_expected();
    let mut lines = String::from(
        "# Expected verdict per test ROM (tgbr 0.4.0 tests/ folder); `cargo test -p gameboy`\n\
         # fails when any verdict differs. Regenerate with GAMEBOY_BLESS=1 after checking.\n",
    );
    for (path, (v, _)) in &results {
        match expected.get(path) {
            Some((_, comment)) if !comment.is_empty() => {
                lines.push_str(&format!("{} {path}  # {comment}\n", v.as_str()))
            }
            _ => lines.push_str(&format!("{} {path}\n", v.as_str())),
        }
    }
    if std::env::var_os("GAMEBOY_BLESS").is_some() {
        std::fs::write(expected_path(), &lines).expect("write expected results");
        return;
    }
    let mut diffs = Vec::new();
    for (path, (v, why)) in &results {
        match expected.get(path) {
            Some((e, _)) if e == v.as_str() => {}
            Some((e, _)) => diffs.push(format!("{path}: expected {e}, got {} ({why})", v.as_str())),
            None => diffs.push(format!(
                "{path}: not in the expected list (got {})",
                v.as_str()
            )),
        }
    }
    for path in expected.keys() {
        if !results.contains_key(path) {
            diffs.push(format!("{path}: expected but not run"));
        }
    }
    assert!(
        diffs.is_empty(),
        "test ROM verdicts changed:\n{}\n(rerun with GAMEBOY_BLESS=1 to record new verdicts)",
        diffs.join("\n")
    );
}
