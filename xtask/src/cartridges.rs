//! `cargo xtask cartridges`: build every cartridge under `cartridges/` from source with
//! Debian's SDCC, and (with `--check`) prove the committed `.gb` is what the source builds.
//!
//! Each cartridge folder holds a `cartridge.toml` naming its sources and header fields.
//! The build runs in a temporary folder so a failed or partial build never touches the
//! committed ROM; the result replaces it atomically.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// Options of `cargo xtask cartridges`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rebuild and compare with the committed ROMs instead of overwriting them; fails on any
    /// difference (the reproducible-build check CI runs).
    #[arg(long)]
    check: bool,
    /// Only this cartridge (folder name under `cartridges/`).
    name: Option<String>,
}

/// What `cartridge.toml` says about one cartridge.
#[derive(Debug)]
struct Manifest {
    /// Output file name, relative to the cartridge folder.
    output: String,
    /// Assembly sources, linked first in the order given (crt0 first).
    asm: Vec<String>,
    /// C sources.
    c: Vec<String>,
    /// Extra flags for every `sdcc -c`.
    cflags: Vec<String>,
    /// Extra flags for the link step.
    ldflags: Vec<String>,
    /// Flags for `makebin` (header fields: `-yt`, `-yo`, `-ya`, `-yn`, ...).
    makebin: Vec<String>,
}

pub fn run(args: &Args) -> Result<()> {
    let root = crate::repo_root().join("cartridges");
    let mut names = Vec::new();
    for entry in fs::read_dir(&root).with_context(|| format!("reading {}", root.display()))? {
        let path = entry?.path();
        if path.join("cartridge.toml").is_file() {
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    names.sort();
    if let Some(only) = &args.name {
        ensure!(
            names.contains(only),
            "no cartridge `{only}` under {} (have: {})",
            root.display(),
            names.join(", ")
        );
        names.retain(|n| n == only);
    }
    check_tools()?;
    let mut mismatches = Vec::new();
    for name in &names {
        let dir = root.join(name);
        let manifest = Manifest::load(&dir.join("cartridge.toml"))?;
        let built = build(&dir, &manifest).with_context(|| format!("building cartridge {name}"))?;
        let target = dir.join(&manifest.output);
        if args.check {
            let committed = fs::read(&target)
                .with_context(|| format!("reading committed ROM {}", target.display()))?;
            match first_difference(&committed, &built) {
                None => println!(
                    "{name}: {} matches its source ({} bytes)",
                    manifest.output,
                    built.len()
                ),
                Some(offset) => {
                    println!(
                        "{name}: {} differs from a fresh build at offset {offset:#07x} (committed {} bytes, built {} bytes)",
                        manifest.output,
                        committed.len(),
                        built.len()
                    );
                    mismatches.push(name.clone());
                }
            }
        } else {
            write_atomic(&target, &built)?;
            println!("{name}: wrote {} ({} bytes)", target.display(), built.len());
        }
    }
    if !mismatches.is_empty() {
        bail!(
            "committed ROMs differ from their sources: {} (run `cargo xtask cartridges` and commit)",
            mismatches.join(", ")
        );
    }
    Ok(())
}

fn check_tools() -> Result<()> {
    for tool in ["sdcc", "sdasgb", "makebin"] {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        ensure!(
            found,
            "`{tool}` not found: install Debian's sdcc (`apt-get install sdcc`)"
        );
    }
    Ok(())
}

fn build(dir: &Path, m: &Manifest) -> Result<Vec<u8>> {
    let tmp = TempDir::new(dir)?;
    let mut objects = Vec::new();
    for src in &m.asm {
        let obj = tmp.path().join(object_name(src));
        run_tool(
            Command::new("sdasgb")
                .arg("-plosgff")
                .arg("-o")
                .arg(&obj)
                .arg(dir.join(src)),
        )?;
        objects.push(obj);
    }
    for src in &m.c {
        let obj = tmp.path().join(object_name(src));
        run_tool(
            Command::new("sdcc")
                .arg("-msm83")
                .arg("-c")
                .args(&m.cflags)
                .arg("-I")
                .arg(dir)
                .arg("-o")
                .arg(&obj)
                .arg(dir.join(src)),
        )?;
        objects.push(obj);
    }
    let ihx = tmp.path().join("out.ihx");
    run_tool(
        Command::new("sdcc")
            .arg("-msm83")
            .arg("--no-std-crt0")
            .args(&m.ldflags)
            .arg("-o")
            .arg(&ihx)
            .args(&objects),
    )?;
    let gb = tmp.path().join("out.gb");
    run_tool(
        Command::new("makebin")
            .arg("-Z")
            .args(&m.makebin)
            .arg(&ihx)
            .arg(&gb),
    )?;
    Ok(fs::read(&gb)?)
}

fn object_name(src: &str) -> String {
    let stem = Path::new(src).file_stem().unwrap().to_string_lossy();
    format!("{}.rel", stem)
}

fn run_tool(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("starting {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    let common = a.len().min(b.len());
    (0..common)
        .find(|&i| a[i] != b[i])
        .or((a.len() != b.len()).then_some(common))
}

/// Writes `bytes` to `path` via a temporary file in the same folder, fsync and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().context("output has no parent folder")?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    {
        let mut f =
            fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))?;
    Ok(())
}

impl Manifest {
    /// Parses the small TOML subset `cartridge.toml` uses: `key = "string"` and
    /// `key = ["a", "b"]` lines, `#` comments.
    fn load(path: &Path) -> Result<Self> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut m = Manifest {
            output: String::new(),
            asm: Vec::new(),
            c: Vec::new(),
            cflags: Vec::new(),
            ldflags: Vec::new(),
            makebin: Vec::new(),
        };
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("{}:{}", path.display(), lineno + 1);
            let (key, value) = line
                .split_once('=')
                .with_context(|| format!("{}: expected `key = value`", at()))?;
            let key = key.trim();
            let value = value.trim();
            let list = || {
                parse_list(value)
                    .with_context(|| format!("{}: `{key}` must be a list of strings", at()))
            };
            match key {
                "output" => {
                    m.output = parse_string(value)
                        .with_context(|| format!("{}: `output` must be a string", at()))?
                }
                "asm" => m.asm = list()?,
                "c" => m.c = list()?,
                "cflags" => m.cflags = list()?,
                "ldflags" => m.ldflags = list()?,
                "makebin" => m.makebin = list()?,
                other => bail!("{}: unknown key `{other}`", at()),
            }
        }
        ensure!(!m.output.is_empty(), "{}: missing `output`", path.display());
        ensure!(
            !m.asm.is_empty() || !m.c.is_empty(),
            "{}: no sources",
            path.display()
        );
        Ok(m)
    }
}

fn parse_string(v: &str) -> Option<String> {
    let inner = v.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('"')).then(|| inner.to_string())
}

fn parse_list(v: &str) -> Option<Vec<String>> {
    let inner = v.strip_prefix('[')?.strip_suffix(']')?.trim();
    if inner.is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_string)
        .collect()
}

/// A scratch folder next to the cartridge, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(near: &Path) -> Result<Self> {
        let path = near.join(format!("build/tmp-{}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path)?;
        }
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
