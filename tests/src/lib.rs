//! End-to-end tests across the wxpay crates live in `tests/`; this library holds their helpers:
//! building and running the example binaries as a user would, through their environment.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// A fresh scratch directory under the system temp directory.
pub fn scratch_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("wxpay-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// The path of an example binary of wxpay-examples, built now with `cargo build` (a no-op
/// when `cargo test --workspace --all-features` already built it). `WXPAY_EXAMPLE_BIN_DIR`
/// names a directory of prebuilt example binaries instead.
pub fn example_binary(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("WXPAY_EXAMPLE_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Same package selection and features as the README's test command, so the build is shared.
    let output = Command::new(cargo)
        .current_dir(repo_root())
        .args([
            "build",
            "--workspace",
            "--all-features",
            "--example",
            name,
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running cargo build: {e}"));
    assert!(
        output.status.success(),
        "cargo build --example {name} failed"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo did not report the {name} executable"))
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// A child process killed (by its own pid) when dropped; its output goes to files.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// Where its stdout goes.
    pub stdout: PathBuf,
    /// Where its stderr goes.
    pub stderr: PathBuf,
}

impl Running {
    /// Starts `binary` in `dir` with `vars` on top of the environment less every `WXPAY_*`
    /// variable and `DATABASE_URL`.
    pub fn start(binary: &Path, dir: &Path, vars: &[(&str, String)]) -> Self {
        let stdout = dir.join("stdout.log");
        let stderr = dir.join("stderr.log");
        let mut command = Command::new(binary);
        command.current_dir(dir);
        for (key, _) in std::env::vars_os() {
            let key_text = key.to_string_lossy();
            if key_text.starts_with("WXPAY_") || key_text == "DATABASE_URL" {
                command.env_remove(&key);
            }
        }
        command.env("RUST_LOG", "info,sqlx=warn");
        for (key, value) in vars {
            command.env(key, value);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout log"))
            .stderr(std::fs::File::create(&stderr).expect("stderr log"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// Its output so far (stdout then stderr), for assertions and failure messages.
    pub fn output(&self) -> String {
        let out = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        format!("--- stdout\n{out}\n--- stderr\n{err}")
    }

    /// Waits until `GET {base}/health` answers 200, or panics with the output.
    pub async fn wait_healthy(&mut self, base: &str, timeout: Duration) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the app exited early ({status}):\n{}", self.output());
            }
            if let Ok(response) = http.get(format!("{base}/health")).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the app did not become healthy:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the process to exit by itself and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The WeChat Pay v3 production variables of the example shops for `sandbox`: listening on
/// `port`, a SQLite store in `dir`, the merchant key (and the platform public key unless
/// `certificate_mode`) written to files in `dir`.
pub fn v3_production_env(
    sandbox: &wxpay_sandbox::Sandbox,
    dir: &Path,
    port: u16,
    certificate_mode: bool,
) -> Vec<(&'static str, String)> {
    let merchant = sandbox.merchant();
    let key_file = dir.join("apiclient_key.pem");
    std::fs::write(&key_file, merchant.private_key_pem.as_deref().unwrap()).unwrap();
    let mut vars = vec![
        ("WXPAY_BIND", format!("127.0.0.1:{port}")),
        (
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("shop.db").display()),
        ),
        ("WXPAY_MCHID", merchant.mchid.clone()),
        ("WXPAY_APPID", merchant.appid.clone()),
        ("WXPAY_MERCHANT_SERIAL", merchant.serial.clone()),
        ("WXPAY_MERCHANT_KEY_FILE", key_file.display().to_string()),
        ("WXPAY_APIV3_KEY", sandbox.api_v3_key().to_owned()),
        (
            "WXPAY_NOTIFY_URL",
            format!("http://127.0.0.1:{port}/wxpay/notify"),
        ),
        ("WXPAY_API_BASE", sandbox.base_url().to_owned()),
    ];
    if !certificate_mode {
        let platform = sandbox.platform();
        let pub_file = dir.join("pub_key.pem");
        std::fs::write(&pub_file, &platform.public_key_pem).unwrap();
        vars.push((
            "WXPAY_PLATFORM_PUBLIC_KEY_FILE",
            pub_file.display().to_string(),
        ));
        vars.push((
            "WXPAY_PLATFORM_PUBLIC_KEY_ID",
            platform.public_key_id.clone(),
        ));
    }
    vars
}

/// The database URL in the environment variable `var`, or `None` (the test skips, with a note)
/// when it is not set outside CI. Under `CI=true` a missing URL fails the test.
pub fn database_url_or_skip(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("{var} is not set: under CI=true the tests that need it must run")
        }
        _ => {
            eprintln!("skipped: set {var} to run this test");
            None
        }
    }
}

/// `GET url` with `token` as the bearer, as JSON.
pub async fn get_json_authorized(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> serde_json::Value {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

/// The order's stored status, read through the admin API (`{base}/wxpay/admin/orders/{no}`
/// with the operator's `token`): what the store says, without the status route's upstream
/// query.
pub async fn stored_status(http: &reqwest::Client, base: &str, no: &str, token: &str) -> String {
    let detail = get_json_authorized(http, &format!("{base}/wxpay/admin/orders/{no}"), token).await;
    detail["order"]["status"]
        .as_str()
        .unwrap_or_else(|| panic!("{detail}"))
        .to_owned()
}

/// Precreates the catalog product `product_id` for `openid` on the shop at `base`: the JSAPI
/// parameters (with `out_trade_no`), ready for the sandbox to pay.
pub async fn precreate_product(
    http: &reqwest::Client,
    base: &str,
    openid: &str,
    product_id: &str,
) -> serde_json::Value {
    let params: serde_json::Value = http
        .post(format!("{base}/wxpay/precreate"))
        .json(&serde_json::json!({"openid": openid, "product_id": product_id}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("precreate on {base}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("precreate on {base}: not JSON: {e}"));
    assert!(params["out_trade_no"].is_string(), "precreate: {params}");
    params
}

/// Lines of the apps' logs that contain every one of `needles` (e.g. one event's id).
pub fn log_lines_with(apps: &[&Running], needles: &[&str]) -> usize {
    apps.iter()
        .map(|app| {
            app.output()
                .lines()
                .filter(|line| needles.iter().all(|needle| line.contains(needle)))
                .count()
        })
        .sum()
}

/// Waits up to `timeout` until the apps' logs have `want` lines with every one of `needles`,
/// then a second more, and checks there are exactly `want`: an event delivered once.
pub async fn assert_logged_exactly(
    apps: &[&Running],
    needles: &[&str],
    want: usize,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    while log_lines_with(apps, needles) < want {
        let outputs: Vec<String> = apps.iter().map(|app| app.output()).collect();
        assert!(
            Instant::now() < deadline,
            "{needles:?}: {} of {want} lines\n{}",
            log_lines_with(apps, needles),
            outputs.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(log_lines_with(apps, needles), want, "{needles:?}, exactly");
}
