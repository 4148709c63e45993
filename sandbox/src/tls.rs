//! The HTTPS listener of API v2's certificate calls (`/secapi/…`, e.g. refunds), which asks
//! every client for its certificate the way `api.mch.weixin.qq.com` does.
//!
//! API v2 authenticates a refund twice: the `sign` of the XML, and a TLS client certificate
//! (the merchant's API certificate, `apiclient_cert.pem` with `apiclient_key.pem`). The
//! sandbox issues, at start, a CA of its own, a server certificate for `127.0.0.1` and
//! `localhost`, and the merchant's client certificate with the `mchid` as its common name
//! ([`V2CertificateMaterial`]). A connection may come without a certificate (the ordinary API
//! v2 calls need none); one that presents a certificate must present one this CA issued, or
//! the handshake fails. Handlers read what the connection proved from [`ClientCertificate`].
//!
//! Sandbox choice: the real API certificate certifies the same key pair that signs API v3
//! requests; the sandbox gives the TLS identity a key pair of its own, so that a merchant
//! configured with only a public key still gets one.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::Layer;

use crate::error::SandboxError;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The certificates of the HTTPS listener ([`Sandbox::v2_certificates`](crate::Sandbox::v2_certificates)).
#[derive(Clone, Serialize)]
pub struct V2CertificateMaterial {
    /// The sandbox CA (PEM): trust it, instead of the system's roots, for
    /// [`Sandbox::v2_secure_base_url`](crate::Sandbox::v2_secure_base_url). It also issued the
    /// merchant's certificate.
    pub ca_certificate_pem: String,
    /// The merchant's API certificate (`apiclient_cert.pem`), its common name the `mchid`.
    pub merchant_certificate_pem: String,
    /// The certificate's private key (`apiclient_key.pem`, PKCS#8 PEM).
    pub merchant_key_pem: String,
}

impl std::fmt::Debug for V2CertificateMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V2CertificateMaterial")
            .field("ca_certificate_pem", &"…")
            .field("merchant_certificate_pem", &"…")
            .field("merchant_key_pem", &"<redacted>")
            .finish()
    }
}

/// What the TLS connection of a request proved: the common name of the client certificate it
/// presented (verified against the sandbox CA), or `None` when it presented none. Requests on
/// the plain HTTP listener carry no such extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClientCertificate {
    pub(crate) common_name: Option<String>,
}

/// The generated certificates and the TLS configuration that checks them.
pub(crate) struct TlsSetup {
    pub(crate) material: V2CertificateMaterial,
    pub(crate) acceptor: TlsAcceptor,
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Config(format!("sandbox TLS {what}: {e}"))
}

fn distinguished_name(entries: &[(rcgen::DnType, &str)]) -> rcgen::DistinguishedName {
    let mut dn = rcgen::DistinguishedName::new();
    for (kind, value) in entries {
        dn.push(kind.clone(), *value);
    }
    dn
}

/// Issues the CA, the server certificate and the merchant's client certificate for `mchid`.
pub(crate) fn generate(mchid: &str) -> Result<TlsSetup, SandboxError> {
    let now = time::OffsetDateTime::now_utc();
    let validity = |params: &mut rcgen::CertificateParams| {
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(5 * 365);
    };

    let mut ca_params = rcgen::CertificateParams::default();
    validity(&mut ca_params);
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    ca_params.distinguished_name = distinguished_name(&[
        (rcgen::DnType::OrganizationName, "wxpay-sandbox"),
        (rcgen::DnType::CommonName, "wxpay sandbox CA"),
    ]);
    let ca_key = rcgen::KeyPair::generate().map_err(|e| tls_error("CA key", e))?;
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)
        .map_err(|e| tls_error("CA certificate", e))?;

    let mut server_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(|e| tls_error("server certificate", e))?;
    validity(&mut server_params);
    server_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    server_params.distinguished_name =
        distinguished_name(&[(rcgen::DnType::CommonName, "wxpay sandbox API")]);
    let server_key = rcgen::KeyPair::generate().map_err(|e| tls_error("server key", e))?;
    let server_cert = server_params
        .signed_by(&server_key, &ca)
        .map_err(|e| tls_error("server certificate", e))?;

    let mut client_params = rcgen::CertificateParams::default();
    validity(&mut client_params);
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    client_params.distinguished_name = distinguished_name(&[
        (rcgen::DnType::CountryName, "CN"),
        (
            rcgen::DnType::OrganizationName,
            "Tenpay.com (wxpay sandbox)",
        ),
        (
            rcgen::DnType::OrganizationalUnitName,
            "wxpay sandbox merchant",
        ),
        (rcgen::DnType::CommonName, mchid),
    ]);
    let client_key = rcgen::KeyPair::generate().map_err(|e| tls_error("merchant key", e))?;
    let client_cert = client_params
        .signed_by(&client_key, &ca)
        .map_err(|e| tls_error("merchant certificate", e))?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.der().clone())
        .map_err(|e| tls_error("CA root", e))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| tls_error("client verifier", e))?;
    let server_key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("protocol versions", e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![server_cert.der().clone(), ca.der().clone()],
            server_key_der,
        )
        .map_err(|e| tls_error("server identity", e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    let pem = |text: String| text.replace("\r\n", "\n");
    Ok(TlsSetup {
        material: V2CertificateMaterial {
            ca_certificate_pem: pem(ca.pem()),
            merchant_certificate_pem: pem(client_cert.pem()),
            merchant_key_pem: pem(client_key.serialize_pem()),
        },
        acceptor: TlsAcceptor::from(Arc::new(config)),
    })
}

/// The common name of the first (leaf) certificate a client presented.
fn common_name(certificates: Option<&[CertificateDer<'_>]>) -> Option<String> {
    let leaf = certificates?.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let name = parsed.subject().iter_common_name().next()?;
    name.as_str().ok().map(str::to_owned)
}

/// Serves `app` over TLS on `listener`, each request carrying its connection's
/// [`ClientCertificate`], until the task is aborted (which also ends its connections).
pub(crate) async fn serve(listener: TcpListener, acceptor: TlsAcceptor, app: Router) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "sandbox TLS listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let acceptor = acceptor.clone();
        let app = app.clone();
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "sandbox TLS handshake refused");
                    return;
                }
                Err(_) => return,
            };
            let proof = ClientCertificate {
                common_name: common_name(tls.get_ref().1.peer_certificates()),
            };
            let service = TowerToHyperService::new(axum::Extension(proof).layer(app));
            let served = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "sandbox TLS connection ended with an error");
            }
        });
    }
}
