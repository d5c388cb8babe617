//! End to end in a real browser: the HUD server, a real rollout (4 mini-zelda envs, random
//! policy) publishing to it over HTTP and writing segments to the store the HUD reads, and
//! headless Chromium (Debian's `chromium` driven through `chromedriver`, WebDriver protocol)
//! loading the page. Asserts from the screenshot's pixels that the screens and the map with
//! every agent are drawn, then plays a stored segment in the segment browser. Saves the
//! screenshot as `docs/hud.png` for the README.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian packages `chromium` and
//! `chromium-driver`; `scripts/test` installs them). Without them the test fails and says so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ENVS: usize = 4;
const WINDOW: (u32, u32) = (1400, 2300);

struct Driver {
    child: Child,
    base: String,
    session: Option<String>,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    async fn start() -> Driver {
        for (bin, pkg) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: install Debian's `{pkg}` (apt-get install chromium chromium-driver); scripts/test does"
            );
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on {base}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut d = Driver {
            child,
            base,
            session: None,
            http,
            _profile: profile,
        };
        // The launch flags that work on this project's machines (shared/research/stack.md):
        // no sandbox as root, no GPU, and no background networking (the network is closed).
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
                    format!("--user-data-dir={}", d._profile.path().display()),
                    format!("--window-size={},{}", WINDOW.0, WINDOW.1),
                ]
            }
        }}});
        // Chromium's start-up can time out on a loaded 2-core machine ("chrome not
        // reachable"); that is the machine, not the page, so the session start is retried.
        let mut last = String::new();
        for attempt in 1..=3 {
            match d.try_call("POST", "/session", Some(caps.clone())).await {
                Ok(v) => {
                    d.session = Some(v["sessionId"].as_str().expect("session id").to_string());
                    return d;
                }
                Err(e) => {
                    eprintln!("webdriver session start, attempt {attempt}: {e}");
                    last = e;
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
        panic!("webdriver session did not start in 3 attempts: {last}");
    }

    async fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{}", self.base, path);
        let req = match method {
            "POST" => self.http.post(&url).json(&body.unwrap_or(json!({}))),
            "DELETE" => self.http.delete(&url),
            _ => self.http.get(&url),
        };
        let resp = req
            .send()
            .await
            .map_err(|e| format!("webdriver {method} {path}: {e}"))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .map_err(|e| format!("webdriver {method} {path}: {status}, not JSON: {e}"))?;
        if !status.is_success() {
            return Err(format!("webdriver {method} {path}: {status} {v}"));
        }
        Ok(v.get("value").cloned().unwrap_or(Value::Null))
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn s(&self) -> String {
        format!("/session/{}", self.session.as_ref().unwrap())
    }

    async fn goto(&self, url: &str) {
        self.call(
            "POST",
            &format!("{}/url", self.s()),
            Some(json!({"url": url})),
        )
        .await;
    }

    async fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            &format!("{}/execute/sync", self.s()),
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn wait_for(&self, what: &str, script: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(script).await;
            if v.as_bool() == Some(true)
                || (v.is_object() && v.get("ok") == Some(&Value::Bool(true)))
            {
                return v;
            }
            if Instant::now() > deadline {
                let state = self.eval("return JSON.stringify({snapshots: hud.snapshots, agents: hud.agents.length, screens: hud.screens.length, rooms: hud.rooms, replay: hud.replay})").await;
                panic!("timed out waiting for {what}; last: {v}; page state: {state}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn screenshot(&self) -> Vec<u8> {
        let v = self
            .call("GET", &format!("{}/screenshot", self.s()), None)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 screenshot"))
            .expect("screenshot base64")
    }

    async fn click(&self, css: &str) {
        let el = self
            .call(
                "POST",
                &format!("{}/element", self.s()),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        let id = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("element id")
            .to_string();
        self.call(
            "POST",
            &format!("{}/element/{id}/click", self.s()),
            Some(json!({})),
        )
        .await;
    }

    async fn quit(mut self) {
        if self.session.is_some() {
            let _ = self
                .http
                .delete(format!("{}{}", self.base, self.s()))
                .send()
                .await;
            self.session = None;
        }
    }
}

/// An RGBA screenshot.
struct Shot {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Shot {
    fn decode(png_bytes: &[u8]) -> Shot {
        let mut dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
        dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = dec.read_info().expect("screenshot PNG");
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).expect("screenshot frame");
        let ch = match info.color_type {
            png::ColorType::Rgba => 4,
            png::ColorType::Rgb => 3,
            other => panic!("unexpected screenshot colour type {other:?}"),
        };
        let (w, h) = (info.width as usize, info.height as usize);
        let mut px = Vec::with_capacity(w * h * 4);
        for p in buf[..w * h * ch].chunks_exact(ch) {
            px.extend_from_slice(&[p[0], p[1], p[2], 255]);
        }
        Shot { w, h, px }
    }

    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y.min(self.h - 1) * self.w + x.min(self.w - 1)) * 4;
        [self.px[i], self.px[i + 1], self.px[i + 2]]
    }

    /// Pixels of a rectangle (page CSS pixels; the device scale factor is 1).
    fn region(&self, x: f64, y: f64, w: f64, h: f64) -> Vec<[u8; 3]> {
        let (x0, y0) = (x.max(0.0) as usize, y.max(0.0) as usize);
        let (x1, y1) = (
            ((x + w) as usize).min(self.w),
            ((y + h) as usize).min(self.h),
        );
        let mut out = Vec::new();
        for yy in y0..y1 {
            for xx in x0..x1 {
                out.push(self.at(xx, yy));
            }
        }
        out
    }
}

fn saturated(p: [u8; 3]) -> bool {
    let max = *p.iter().max().unwrap() as i32;
    let min = *p.iter().min().unwrap() as i32;
    max - min > 90
}

fn docs_png() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/hud.png")
}

fn write_atomic(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("png.tmp");
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The rollout side: real envs, a random policy, segments to the store, the HUD feed.
fn spawn_rollout(
    store_url: String,
    hud_url: String,
    run: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let rom = zelda::MINI_ZELDA.to_vec();
        let gb = gameboy::GameBoy::new(rom.clone()).unwrap();
        let ctx = rollout::SegmentContext {
            run: run.clone(),
            burst: 0,
            worker: 0,
            policy: "random".into(),
            cartridge_sha1: hex_sha1(&gb),
            cartridge_title: gb.header().title.clone(),
            config_hash: "test".into(),
        };
        drop(gb);
        let seg_cfg = rollout::RecorderConfig {
            steps: 48,
            keyframe_interval: 8,
        };
        let mut envs = rollout::VecEnv::new(
            &rom,
            None,
            ENVS,
            zelda::EnvConfig::default(),
            zelda::RewardConfig::default(),
            2,
            7,
            ctx,
            seg_cfg,
            true,
        )
        .unwrap();
        let store = episodes::Store::open(&store_url).unwrap();
        let exporter = rollout::SegmentExporter::spawn(store, 64);
        let mut policy = rollout::RandomPolicy::new(envs.n_actions(), 11);
        use rollout::Policy as _;
        let mut feed = telemetry::HudFeed::new(&hud_url, &run, "0", envs.len()).unwrap();
        let mut actions = vec![0usize; envs.len()];
        let mut steps = 0u64;
        while !stop.load(Ordering::Relaxed) {
            policy.act(envs.frames(), envs.features(), &mut actions);
            envs.step(&actions);
            steps += 1;
            for seg in envs.take_segments() {
                exporter.submit(seg).unwrap();
            }
            for i in 0..envs.len() {
                let env = envs.env(i);
                feed.observe(
                    i,
                    telemetry::EnvTick {
                        state: envs.state(i),
                        reward: envs.reward(i),
                        done: envs.terminated(i) || envs.truncated(i),
                        episode: env.episode(),
                        step: env.steps(),
                    },
                );
            }
            for ep in envs.take_episodes() {
                feed.episode_finished((&ep).into());
            }
            feed.maybe_publish(|i| &envs.env(i).gameboy().frame()[..]);
        }
        let stats = feed.finish(
            Duration::from_secs(2),
            |i| &envs.env(i).gameboy().frame()[..],
        );
        assert!(stats.sent > 0, "{stats:?}");
        exporter.finish().unwrap();
        steps
    })
}

fn hex_sha1(gb: &gameboy::GameBoy) -> String {
    gb.rom_sha1().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hud_in_chromium_shows_agents_map_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let store_url = dir.path().join("runs").display().to_string();
    let store = episodes::Store::open(&store_url).unwrap();
    let store_check = store.clone();
    let run = "hud-browser".to_string();
    let hud = hud::Hud::new(hud::HudConfig {
        store,
        rom: zelda::MINI_ZELDA.to_vec(),
        rom_name: "mini-zelda".into(),
        run: Some(run.clone()),
        metrics: telemetry::Metrics::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(hud::serve(listener, hud, async {
        let _ = stop_rx.await;
    }));
    let hud_url = format!("http://{addr}");

    let stop = Arc::new(AtomicBool::new(false));
    let rollout = spawn_rollout(store_url, hud_url.clone(), run.clone(), stop.clone());

    let driver = Driver::start().await;
    driver.goto(&format!("{hud_url}/")).await;
    // Every agent on the map and on the screen grid, and room art loaded for at least one room.
    driver
        .wait_for(
            "4 agents, 4 screens and room art",
            &format!(
                "const h = window.hud; const ok = h.snapshots > 0 && h.agents.length === {ENVS} && h.screens.length === {ENVS} \
                 && h.rooms.some(r => r.art) && [...document.querySelectorAll('.screen img')].every(i => i.complete && i.naturalWidth === 160); \
                 return {{ok, agents: h.agents, rooms: h.rooms, screens: h.screens}};"
            ),
            Duration::from_secs(90),
        )
        .await;
    // Pause the picture (the page's pause button; snapshots keep arriving) so what the page
    // reports and the screenshot show the same moment.
    driver.click("#pause").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let state = driver
        .eval(
            "const h = window.hud; renderMaps(lastSnapshot); renderScreens(lastSnapshot); \
             return {paused: h.paused, agents: h.agents, rooms: h.rooms, screens: h.screens};",
        )
        .await;
    assert_eq!(state["paused"], true);
    assert_eq!(state["agents"].as_array().unwrap().len(), ENVS, "{state}");
    let shot = Shot::decode(&driver.screenshot().await);
    let bg = [0x0d, 0x0f, 0x12];

    // Agents: a saturated marker (the room art and the page are grey) at each agent's spot.
    for a in state["agents"].as_array().unwrap() {
        let (x, y) = (a["x"].as_f64().unwrap(), a["y"].as_f64().unwrap());
        let around = shot.region(x - 2.0, y - 2.0, 5.0, 5.0);
        let coloured = around.iter().filter(|p| saturated(**p)).count();
        assert!(
            coloured >= 10,
            "agent {} at ({x}, {y}) is not drawn: {around:?}",
            a["id"]
        );
    }
    // Map: every visited room is filled (art or a shaded block), not the canvas background.
    let rooms = state["rooms"].as_array().unwrap();
    assert!(!rooms.is_empty());
    for r in rooms {
        let px = shot.region(
            r["x"].as_f64().unwrap() + 2.0,
            r["y"].as_f64().unwrap() + 2.0,
            r["w"].as_f64().unwrap() - 4.0,
            r["h"].as_f64().unwrap() - 4.0,
        );
        let filled = px.iter().filter(|p| **p != bg).count();
        assert!(
            filled * 10 >= px.len() * 9,
            "room {r} is not drawn ({filled} of {} pixels)",
            px.len()
        );
        if r["art"].as_bool() == Some(true) {
            let mut greys: Vec<[u8; 3]> = px.iter().filter(|p| !saturated(**p)).copied().collect();
            greys.sort();
            greys.dedup();
            assert!(greys.len() >= 3, "room art of {r} is flat: {greys:?}");
        }
    }
    // Screens: real game pictures, several grey levels, not one flat colour.
    for s in state["screens"].as_array().unwrap() {
        let px = shot.region(
            s["x"].as_f64().unwrap(),
            s["y"].as_f64().unwrap(),
            s["w"].as_f64().unwrap(),
            s["h"].as_f64().unwrap(),
        );
        let mut levels: Vec<[u8; 3]> = px.clone();
        levels.sort();
        levels.dedup();
        assert!(
            levels.len() >= 3,
            "screen {} shows {} colours",
            s["id"],
            levels.len()
        );
        let darkest = px.iter().filter(|p| p[0] < 0x30).count();
        assert!(
            darkest > 0 && darkest < px.len() / 2,
            "screen {} looks blank",
            s["id"]
        );
    }

    driver.click("#pause").await;

    // Judge scores: the real evaluator (offline judges) scores the segments written so far;
    // the page polls `<run>/scores/` and shows each line with its keyframe.
    let deadline = Instant::now() + Duration::from_secs(60);
    while store_check
        .list(&format!("{run}/segments"))
        .await
        .unwrap()
        .len()
        < ENVS
    {
        assert!(Instant::now() < deadline, "the rollout wrote no segments");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let opts = evaluator::Options {
        run: run.clone(),
        judges: judges::Judges::offline(),
        mode: evaluator::Mode::Score,
        concurrency: 4,
        out: evaluator::Mode::Score.default_out().to_string(),
        retry_failed: false,
        seed: 0,
        progress: false,
    };
    let summary = evaluator::evaluate(&store_check, &opts, &evaluator::Metrics::new())
        .await
        .unwrap();
    assert!(summary.items >= ENVS, "{summary:?}");
    let scores = driver
        .wait_for(
            "judge scores with their keyframes",
            "const imgs = [...document.querySelectorAll('#scores tbody img')]; \
             return {ok: window.hud.scores > 0 && imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth === 160), \
                     n: window.hud.scores, summaries: [...document.querySelectorAll('#scores td.summary')].map(t => t.textContent)};",
            Duration::from_secs(30),
        )
        .await;
    assert!(
        scores["summaries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| !s.as_str().unwrap().is_empty()),
        "score lines without summary: {scores}"
    );

    // Segment browser: wait for a stored segment, pick it, watch it play.
    driver.click("#refresh-segments").await;
    driver
        .wait_for(
            "a segment in the list",
            "if (document.querySelectorAll('#segment-list option').length === 0) document.getElementById('refresh-segments').click(); \
             return document.querySelectorAll('#segment-list option').length > 0;",
            Duration::from_secs(60),
        )
        .await;
    // Pick the biggest segment (the list shows sizes): a segment cut short by an episode
    // end may have too few frames to watch it play.
    driver
        .eval(
            "const opts = [...document.querySelectorAll('#segment-list option')]; \
             const kib = (o) => parseFloat((o.text.match(/\\(([0-9.]+) KiB\\)/) || [0, 0])[1]); \
             const best = opts.reduce((a, b) => (kib(b) > kib(a) ? b : a)); \
             const sel = document.getElementById('segment-list'); \
             sel.value = best.value; sel.dispatchEvent(new Event('change')); return best.value;",
        )
        .await;
    let replay = driver
        .wait_for(
            "the replay to play",
            "const r = window.hud.replay; return {ok: !!r && r.shown >= 6, replay: r};",
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(replay["replay"]["mode"], "replay", "{replay}");
    // Segments are 48 steps, or shorter when an episode ended inside one (the random
    // policy dies now and then): the first segment in the list may be either.
    assert!(
        (8..=48).contains(&replay["replay"]["frames"].as_u64().unwrap()),
        "{replay}"
    );
    let before = driver
        .eval("return Number(document.getElementById('seek').value)")
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = driver
        .eval("return Number(document.getElementById('seek').value)")
        .await;
    assert!(
        after.as_u64() > before.as_u64(),
        "the replay does not advance: {before} -> {after}"
    );
    let info = driver
        .eval("return document.getElementById('player-info').textContent")
        .await;
    assert!(info.as_str().unwrap().starts_with("step "), "{info}");

    // Pause it on a frame, so the screenshot is stable, and check the player's pixels.
    driver
        .eval("document.getElementById('play').click(); return true")
        .await;
    // Fit the window to the page, so the screenshot has no empty tail.
    let height = driver
        .eval("return document.documentElement.scrollHeight")
        .await
        .as_u64()
        .unwrap();
    driver
        .call(
            "POST",
            &format!("{}/window/rect", driver.s()),
            Some(json!({"width": WINDOW.0, "height": height.min(u64::from(WINDOW.1)) + 8})),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rect = driver
        .eval("const r = document.getElementById('player').getBoundingClientRect(); return [r.left, r.top, r.width, r.height];")
        .await;
    let png_bytes = driver.screenshot().await;
    let shot = Shot::decode(&png_bytes);
    let r: Vec<f64> = rect
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let mut levels = shot.region(r[0], r[1], r[2], r[3]);
    levels.sort();
    levels.dedup();
    assert!(
        levels.len() >= 3,
        "the player shows {} colours",
        levels.len()
    );
    let keyframes = driver
        .eval(
            "const box = document.querySelector('.scores-box').getBoundingClientRect(); \
             return [...document.querySelectorAll('#scores tbody img')].map(i => i.getBoundingClientRect()) \
               .filter(r => r.top >= box.top && r.bottom <= box.bottom) \
               .map(r => [r.left + scrollX, r.top + scrollY, r.width, r.height]);",
        )
        .await;
    assert!(
        !keyframes.as_array().unwrap().is_empty(),
        "no judged keyframe visible"
    );
    for k in keyframes.as_array().unwrap() {
        let k: Vec<f64> = k
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let mut levels = shot.region(k[0], k[1], k[2], k[3]);
        levels.sort();
        levels.dedup();
        assert!(
            levels.len() >= 3,
            "a judged keyframe shows {} colours",
            levels.len()
        );
    }
    write_atomic(&docs_png(), &png_bytes);

    driver.quit().await;
    stop.store(true, Ordering::Relaxed);
    let steps = tokio::task::spawn_blocking(move || rollout.join().unwrap())
        .await
        .unwrap();
    assert!(steps > 50, "{steps}");
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}
