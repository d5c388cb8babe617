//! `zelda-rl emu` and `zelda-rl rom` end to end, through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn zelda_rl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zelda-rl"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run zelda-rl")
}

fn rom() -> String {
    repo()
        .join("cartridges/mini-zelda/mini-zelda.gb")
        .display()
        .to_string()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zelda-rl-emu-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn rom_info_prints_the_header() {
    let out = zelda_rl(&["rom", "info", &rom()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("MINIZELDA"), "{text}");
    assert!(text.contains("0x01 MBC1"), "{text}");
    assert!(
        text.contains("header checksum: ") && text.contains("valid"),
        "{text}"
    );
    assert!(text.contains("SHA-1:"), "{text}");

    let out = zelda_rl(&["rom", "info", &rom(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["title"], "MINIZELDA");
    assert_eq!(v["rom_size"], 65536);
    assert_eq!(v["supported"], true);
}

#[test]
fn rom_info_rejects_truncated_and_malformed_files() {
    let data = std::fs::read(rom()).unwrap();
    let short = tmp("short.gb");
    std::fs::write(&short, &data[..0x120]).unwrap();
    let out = zelda_rl(&["rom", "info", short.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("short.gb") && err.contains("truncated"),
        "{err}"
    );

    let mut bad = data.clone();
    bad[0x148] = 0x42;
    let path = tmp("badsize.gb");
    std::fs::write(&path, &bad).unwrap();
    let out = zelda_rl(&["rom", "info", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("0x0148"));

    // An unknown cartridge type still gets its header printed, marked not runnable.
    let mut mbc7 = data;
    mbc7[0x147] = 0x22;
    let path = tmp("mbc7.gb");
    std::fs::write(&path, &mbc7).unwrap();
    let out = zelda_rl(&["rom", "info", path.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("MBC7") && text.contains("NOT runnable"),
        "{text}"
    );
}

#[test]
fn emu_run_writes_ram_dump_screenshot_and_json() {
    let script = tmp("walk.txt");
    std::fs::write(&script, "0 -\n150 RIGHT\n180 -\n").unwrap();
    let ram = tmp("ram.bin");
    let png = tmp("shot.png");
    let out = zelda_rl(&[
        "emu",
        "run",
        "--rom",
        &rom(),
        "--frames",
        "200",
        "--input",
        script.to_str().unwrap(),
        "--dump-ram",
        ram.to_str().unwrap(),
        "--screenshot",
        png.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frames"], 200);
    assert!(v["wall_seconds"].as_f64().unwrap() > 0.0);
    let dump = std::fs::read(&ram).unwrap();
    assert_eq!(dump.len(), 0x2000 + 0x7F);
    let shot = std::fs::read(&png).unwrap();
    assert_eq!(&shot[..8], b"\x89PNG\r\n\x1a\n");
    // Same command, same bytes (determinism through the CLI).
    let ram2 = tmp("ram2.bin");
    let out = zelda_rl(&[
        "emu",
        "run",
        "--rom",
        &rom(),
        "--frames",
        "200",
        "--input",
        script.to_str().unwrap(),
        "--dump-ram",
        ram2.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert_eq!(std::fs::read(&ram2).unwrap(), dump);
}

#[test]
fn emu_run_reports_bad_input_scripts_by_file_and_line() {
    let script = tmp("bad.txt");
    std::fs::write(&script, "0 A\n5 JUMP\n").unwrap();
    let out = zelda_rl(&[
        "emu",
        "run",
        "--rom",
        &rom(),
        "--input",
        script.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.txt") && err.contains("line 2") && err.contains("JUMP"),
        "{err}"
    );
}

#[test]
fn emu_run_until_ld_b_b_needs_the_breakpoint() {
    // mini-zelda never executes LD B,B: the run ends with an error after --frames.
    let out = zelda_rl(&[
        "emu",
        "run",
        "--rom",
        &rom(),
        "--frames",
        "30",
        "--until-ld-b-b",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("LD B,B not reached"));
}

#[test]
fn emu_bench_prints_rates() {
    let out = zelda_rl(&[
        "emu",
        "bench",
        "--rom",
        &rom(),
        "--frames",
        "200",
        "--render",
        "last",
        "--step-frames",
        "4",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frames"], 200);
    assert_eq!(v["steps"], 50);
    assert!(v["steps_per_second"].as_f64().unwrap() > 0.0);
}
