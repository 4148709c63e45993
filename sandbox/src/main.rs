//! `wxpay-sandbox`: run the WeChat Pay API v3 emulator locally.
//!
//! ```text
//! cargo run -p wxpay-sandbox -- [--bind 127.0.0.1:8787] [--allow-http-notify]
//!     [--mode public-key|certificate|both] [--keys-dir DIR] [--retry-scale N]
//!     [--mchid ID] [--appid ID] [--api-v3-key KEY] [--v2-api-key KEY]
//!     [--v2-sign-type MD5|HMAC-SHA256] [--gateway-biz-id ID] [--gateway-app-key KEY]
//!     [--gateway-client-id ID] [--qfpay-mchid ID]
//! ```
//! Every flag can also be given in the environment: `WXPAY_SANDBOX_BIND`,
//! `WXPAY_SANDBOX_ALLOW_HTTP_NOTIFY=1`, `WXPAY_SANDBOX_MODE`, `WXPAY_SANDBOX_KEYS_DIR`,
//! `WXPAY_SANDBOX_RETRY_SCALE`, `WXPAY_SANDBOX_MCHID`, `WXPAY_SANDBOX_APPID`,
//! `WXPAY_SANDBOX_APIV3_KEY`, `WXPAY_SANDBOX_V2_API_KEY`, `WXPAY_SANDBOX_V2_SIGN_TYPE`,
//! `WXPAY_SANDBOX_GATEWAY_BIZ_ID`, `WXPAY_SANDBOX_GATEWAY_APP_KEY`,
//! `WXPAY_SANDBOX_GATEWAY_CLIENT_ID`, `WXPAY_SANDBOX_QFPAY_MCHID`. It prints the shop's
//! environment for each provider (API v3, API v2, gateway, QFPay, weidoufu) and for the openid
//! endpoints. Ctrl-C stops it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use wxpay_sandbox::{PlatformMode, RetrySchedule, Sandbox, SandboxConfig, V2SignType};

const USAGE: &str = "usage: wxpay-sandbox [--bind ADDR] [--allow-http-notify] \
[--mode public-key|certificate|both] [--keys-dir DIR] [--retry-scale N] [--mchid ID] \
[--appid ID] [--api-v3-key KEY] [--v2-api-key KEY] [--v2-sign-type MD5|HMAC-SHA256] \
[--gateway-biz-id ID] [--gateway-app-key KEY] [--gateway-client-id ID] [--qfpay-mchid ID]";

struct Options {
    bind: SocketAddr,
    allow_http_notify: bool,
    mode: PlatformMode,
    keys_dir: PathBuf,
    retry_scale: u32,
    mchid: Option<String>,
    appid: Option<String>,
    api_v3_key: Option<String>,
    v2_api_key: Option<String>,
    v2_sign_type: V2SignType,
    gateway_biz_id: Option<String>,
    gateway_app_key: Option<String>,
    gateway_client_id: Option<String>,
    qfpay_mchid: Option<String>,
}

fn parse_sign_type(s: &str) -> Result<V2SignType, String> {
    V2SignType::parse(s).ok_or_else(|| format!("unknown v2 sign type {s:?} (MD5, HMAC-SHA256)"))
}

fn parse_mode(s: &str) -> Result<PlatformMode, String> {
    match s {
        "public-key" | "publickey" | "public_key" => Ok(PlatformMode::PublicKey),
        "certificate" | "cert" => Ok(PlatformMode::Certificate),
        "both" => Ok(PlatformMode::Both),
        other => Err(format!(
            "unknown mode {other:?} (public-key, certificate, both)"
        )),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        bind: env("WXPAY_SANDBOX_BIND")
            .unwrap_or_else(|| "127.0.0.1:8787".into())
            .parse()
            .map_err(|e| format!("WXPAY_SANDBOX_BIND: {e}"))?,
        allow_http_notify: env("WXPAY_SANDBOX_ALLOW_HTTP_NOTIFY")
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
        mode: env("WXPAY_SANDBOX_MODE").map_or(Ok(PlatformMode::PublicKey), |m| parse_mode(&m))?,
        keys_dir: env("WXPAY_SANDBOX_KEYS_DIR")
            .map_or_else(|| PathBuf::from("target/wxpay-sandbox"), PathBuf::from),
        retry_scale: env("WXPAY_SANDBOX_RETRY_SCALE")
            .map_or(Ok(1), |v| v.parse())
            .map_err(|e| format!("WXPAY_SANDBOX_RETRY_SCALE: {e}"))?,
        mchid: env("WXPAY_SANDBOX_MCHID"),
        appid: env("WXPAY_SANDBOX_APPID"),
        api_v3_key: env("WXPAY_SANDBOX_APIV3_KEY"),
        v2_api_key: env("WXPAY_SANDBOX_V2_API_KEY"),
        v2_sign_type: env("WXPAY_SANDBOX_V2_SIGN_TYPE")
            .map_or(Ok(V2SignType::Md5), |t| parse_sign_type(&t))?,
        gateway_biz_id: env("WXPAY_SANDBOX_GATEWAY_BIZ_ID"),
        gateway_app_key: env("WXPAY_SANDBOX_GATEWAY_APP_KEY"),
        gateway_client_id: env("WXPAY_SANDBOX_GATEWAY_CLIENT_ID"),
        qfpay_mchid: env("WXPAY_SANDBOX_QFPAY_MCHID"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--bind" => {
                o.bind = value("--bind")?
                    .parse()
                    .map_err(|e| format!("--bind: {e}"))?;
            }
            "--allow-http-notify" => o.allow_http_notify = true,
            "--mode" => o.mode = parse_mode(&value("--mode")?)?,
            "--keys-dir" => o.keys_dir = PathBuf::from(value("--keys-dir")?),
            "--retry-scale" => {
                o.retry_scale = value("--retry-scale")?
                    .parse()
                    .map_err(|e| format!("--retry-scale: {e}"))?;
            }
            "--mchid" => o.mchid = Some(value("--mchid")?),
            "--appid" => o.appid = Some(value("--appid")?),
            "--api-v3-key" => o.api_v3_key = Some(value("--api-v3-key")?),
            "--v2-api-key" => o.v2_api_key = Some(value("--v2-api-key")?),
            "--v2-sign-type" => o.v2_sign_type = parse_sign_type(&value("--v2-sign-type")?)?,
            "--gateway-biz-id" => o.gateway_biz_id = Some(value("--gateway-biz-id")?),
            "--gateway-app-key" => o.gateway_app_key = Some(value("--gateway-app-key")?),
            "--gateway-client-id" => o.gateway_client_id = Some(value("--gateway-client-id")?),
            "--qfpay-mchid" => o.qfpay_mchid = Some(value("--qfpay-mchid")?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(o)
}

fn write(dir: &Path, name: &str, contents: &str) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, contents)?;
    Ok(std::path::absolute(&path).unwrap_or(path))
}

#[allow(clippy::print_stdout)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let o = match parse_options() {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let mut config = SandboxConfig::default()
        .bind(o.bind)
        .allow_http_notify_url(o.allow_http_notify)
        .platform_mode(o.mode)
        .notify_retry_schedule(RetrySchedule::wechat().scaled_down(o.retry_scale));
    if let Some(m) = o.mchid {
        config = config.mchid(m);
    }
    if let Some(a) = o.appid {
        config = config.appid(a);
    }
    if let Some(k) = o.api_v3_key {
        config = config.api_v3_key(k);
    }
    config = config.v2_sign_type(o.v2_sign_type);
    if let Some(k) = o.v2_api_key {
        config = config.v2_api_key(k);
    }
    if let Some(b) = o.gateway_biz_id {
        config = config.gateway_biz_id(b);
    }
    if let Some(k) = o.gateway_app_key {
        config = config.gateway_app_key(k);
    }
    if let Some(c) = o.gateway_client_id {
        config = config.gateway_client_id(c);
    }
    if let Some(m) = o.qfpay_mchid {
        config = config.qfpay_mchid(m);
    }
    let sandbox = Sandbox::start(config).await?;
    std::fs::create_dir_all(&o.keys_dir)?;
    let merchant = sandbox.merchant();
    let platform = sandbox.platform();
    let key_file = write(
        &o.keys_dir,
        "merchant_private_key.pem",
        merchant.private_key_pem.as_deref().unwrap_or_default(),
    )?;
    let pub_file = write(
        &o.keys_dir,
        "platform_public_key.pem",
        &platform.public_key_pem,
    )?;
    let cert_file = match &platform.certificate_pem {
        Some(pem) => Some(write(&o.keys_dir, "platform_certificate.pem", pem)?),
        None => None,
    };
    let v2_tls = sandbox.v2_certificates();
    let v2_cert_file = write(
        &o.keys_dir,
        "v2_apiclient_cert.pem",
        &v2_tls.merchant_certificate_pem,
    )?;
    let v2_key_file = write(
        &o.keys_dir,
        "v2_apiclient_key.pem",
        &v2_tls.merchant_key_pem,
    )?;
    let v2_ca_file = write(&o.keys_dir, "v2_sandbox_ca.pem", &v2_tls.ca_certificate_pem)?;
    println!(
        "wxpay sandbox (WeChat Pay API v3, API v2, payment gateway, QFPay, weidoufu) listening on {}",
        sandbox.base_url()
    );
    println!("keys written to {}", o.keys_dir.display());
    println!(
        "pay sheet script: {}/sandbox/jsbridge.js",
        sandbox.base_url()
    );
    println!();
    println!("# environment for a shop on WeChat Pay API v3 (the default provider):");
    println!("WXPAY_API_BASE={}", sandbox.base_url());
    println!("WXPAY_MCHID={}", merchant.mchid);
    println!("WXPAY_APPID={}", merchant.appid);
    println!("WXPAY_MERCHANT_SERIAL={}", merchant.serial);
    println!("WXPAY_MERCHANT_KEY_FILE={}", key_file.display());
    println!("WXPAY_APIV3_KEY={}", sandbox.api_v3_key());
    println!("WXPAY_PLATFORM_PUBLIC_KEY_FILE={}", pub_file.display());
    println!("WXPAY_PLATFORM_PUBLIC_KEY_ID={}", platform.public_key_id);
    if let (Some(file), Some(serial)) = (cert_file, &platform.certificate_serial) {
        println!("WXPAY_PLATFORM_CERT_FILE={}", file.display());
        println!("WXPAY_PLATFORM_CERT_SERIAL={serial}");
    }
    println!();
    println!("# environment for a shop on WeChat Pay API v2:");
    println!("WXPAY_PROVIDER=v2");
    println!("WXPAY_API_BASE={}", sandbox.base_url());
    println!("WXPAY_MCHID={}", merchant.mchid);
    println!("WXPAY_APPID={}", merchant.appid);
    println!("WXPAY_API_KEY={}", sandbox.v2_api_key());
    println!("WXPAY_SIGN_TYPE={}", sandbox.v2_sign_type());
    println!("WXPAY_V2_CERT_FILE={}", v2_cert_file.display());
    println!("WXPAY_V2_KEY_FILE={}", v2_key_file.display());
    println!("WXPAY_V2_SECAPI_BASE={}", sandbox.v2_secure_base_url());
    println!("WXPAY_V2_CA_FILE={}", v2_ca_file.display());
    println!();
    println!("# environment for a shop on the payment gateway:");
    let gateway = sandbox.gateway();
    println!("WXPAY_PROVIDER=gateway");
    println!("WXPAY_APPID={}", merchant.appid);
    println!("WXPAY_GATEWAY_URL={}", sandbox.base_url());
    println!("WXPAY_GATEWAY_BIZ_ID={}", gateway.biz_id);
    println!("WXPAY_GATEWAY_APP_KEY={}", gateway.app_key);
    println!();
    println!("# environment for a shop on QFPay:");
    let qfpay = sandbox.qfpay();
    println!("WXPAY_PROVIDER=qfpay");
    println!("WXPAY_APPID={}", merchant.appid);
    println!("WXPAY_QFPAY_URL={}", sandbox.base_url());
    println!("WXPAY_QFPAY_APP_CODE={}", qfpay.app_code);
    println!("WXPAY_QFPAY_CLIENT_KEY={}", qfpay.client_key);
    if let Some(mchid) = &qfpay.mchid {
        println!("WXPAY_QFPAY_MCHID={mchid}");
    }
    println!();
    println!("# environment for a shop on weidoufu:");
    let weidoufu = sandbox.weidoufu();
    println!("WXPAY_PROVIDER=weidoufu");
    println!("WXPAY_APPID={}", merchant.appid);
    println!("WXPAY_WEIDOUFU_URL={}", sandbox.base_url());
    println!("WXPAY_WEIDOUFU_ACCESS_KEY={}", weidoufu.access_key);
    println!("WXPAY_WEIDOUFU_SECRET_KEY={}", weidoufu.secret_key);
    println!();
    println!("# environment for the openid endpoints (any provider):");
    println!("WXPAY_APP_SECRET={}", sandbox.app_secret());
    println!("WXPAY_WECHAT_API_URL={}", sandbox.base_url());
    println!("WXPAY_WECHAT_OPEN_URL={}", sandbox.base_url());
    tokio::signal::ctrl_c().await?;
    eprintln!("stopping");
    sandbox.shutdown().await;
    Ok(())
}
