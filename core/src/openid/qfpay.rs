//! QFPay's openid flow (seed 002): the browser goes to `get_weixin_oauth_code` and comes back to
//! the redirect URI with `code`; `get_weixin_openid` exchanges the code for the openid. Both
//! requests are built and signed by [`QfpayClient`].

use async_trait::async_trait;

use crate::fields::OpenId;
use crate::qfpay::{QfpayClient, QfpayError, RespcdClass};

use super::{OAuthResolver, OpenidError, OpenidResolver};

/// The `respcd` of a request QFPay refused for its signature (QFPay's status codes): our
/// configuration is wrong, not the payer's code.
const SIGNATURE_ERROR: &str = "1108";

/// QFPay's openid flow, through a [`QfpayClient`]. Binding `qfpay:{app_code}`: the openids are
/// those of the official account QFPay pays with.
///
/// QFPay's page asks for a fresh `oauth_code` and openid for every payment; keep the token
/// lifetime ([`crate::engine::OpenidConfig::token_ttl`]) short with this resolver.
#[derive(Debug, Clone)]
pub struct QfpayOAuth {
    client: QfpayClient,
    binding: String,
}

impl QfpayOAuth {
    /// Uses `client`'s app code, key and host.
    pub fn new(client: QfpayClient) -> Self {
        let binding = format!("qfpay:{}", client.config().app_code);
        Self { client, binding }
    }
}

#[async_trait]
impl OpenidResolver for QfpayOAuth {
    fn binding(&self) -> &str {
        &self.binding
    }

    async fn resolve(&self, code: &str) -> Result<OpenId, OpenidError> {
        let openid = self.client.openid(code).await.map_err(openid_error)?;
        OpenId::try_from(openid)
            .map_err(|e| OpenidError::BadResponse(format!("the openid is not valid: {e}")))
    }
}

impl OAuthResolver for QfpayOAuth {
    /// `get_weixin_oauth_code` takes no `state`: it goes into the redirect URI's own query,
    /// which QFPay keeps and extends with `code`.
    fn authorize_url(&self, redirect_uri: &str, state: &str) -> Result<String, OpenidError> {
        let mut back = reqwest::Url::parse(redirect_uri)
            .map_err(|e| OpenidError::Config(format!("invalid redirect URI: {e}")))?;
        back.query_pairs_mut().append_pair("state", state);
        Ok(self.client.oauth_code_url(back.as_str()))
    }
}

fn openid_error(error: QfpayError) -> OpenidError {
    match error {
        QfpayError::Upstream {
            respcd,
            message,
            class,
        } => {
            if class == RespcdClass::Rejected && respcd != SIGNATURE_ERROR {
                OpenidError::CodeRejected {
                    upstream_code: respcd,
                    message,
                }
            } else {
                OpenidError::Rejected {
                    upstream_code: respcd,
                    message,
                }
            }
        }
        QfpayError::Deadline(_) => OpenidError::Timeout,
        QfpayError::Transport { source, .. } if source.is_timeout() => OpenidError::Timeout,
        QfpayError::Transport { source, .. } => {
            OpenidError::Transport(source.without_url().to_string())
        }
        QfpayError::Local(message) => OpenidError::Config(message),
        other => OpenidError::BadResponse(other.to_string()),
    }
}
