//! The parameters a page passes to `WeixinJSBridge.invoke('getBrandWCPayRequest', …)` or a mini
//! program to `wx.requestPayment(…)`.

use crate::clock::Clock;
use crate::nonce::NonceSource;
use crate::provider::ClientParams;

use super::credentials::MerchantCredentials;

/// Signed JSAPI client parameters: the provider-neutral [`ClientParams`], with `signType`
/// `RSA` when made here.
pub type JsapiParams = ClientParams;

/// The message `paySign` covers: `appId\ntimeStamp\nnonceStr\npackage\n`.
pub fn pay_sign_message(app_id: &str, time_stamp: &str, nonce_str: &str, package: &str) -> Vec<u8> {
    format!("{app_id}\n{time_stamp}\n{nonce_str}\n{package}\n").into_bytes()
}

/// Signs API v3 parameters for `prepay_id` now, with a fresh nonce.
pub fn sign(
    credentials: &MerchantCredentials,
    prepay_id: &str,
    clock: &dyn Clock,
    nonces: &dyn NonceSource,
) -> JsapiParams {
    sign_at(
        credentials,
        prepay_id,
        clock.unix_seconds(),
        &nonces.nonce(),
    )
}

/// Signs API v3 parameters for `prepay_id` with a given timestamp and nonce.
pub fn sign_at(
    credentials: &MerchantCredentials,
    prepay_id: &str,
    timestamp: i64,
    nonce: &str,
) -> JsapiParams {
    let app_id = credentials.appid().to_owned();
    let time_stamp = timestamp.to_string();
    let package = format!("prepay_id={prepay_id}");
    let message = pay_sign_message(&app_id, &time_stamp, nonce, &package);
    let pay_sign = credentials.private_key().sign_base64(&message);
    ClientParams {
        app_id,
        time_stamp,
        nonce_str: nonce.to_owned(),
        package,
        sign_type: "RSA".to_owned(),
        pay_sign,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::credentials::MerchantPrivateKey;

    #[test]
    fn params_have_wechat_names_and_sign_the_documented_message() {
        let key = MerchantPrivateKey::from_pem(include_str!(
            "../../../testdata/vectors/test_key_pkcs8.pem"
        ))
        .unwrap();
        let credentials =
            MerchantCredentials::new("1900000001", "wxd678efh567hg6787", "S1", key).unwrap();
        let params = sign_at(
            &credentials,
            "wx201410272009395522657a690389285100",
            1414561699,
            "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
        );
        let json = serde_json::to_value(&params).unwrap();
        assert_eq!(json["appId"], "wxd678efh567hg6787");
        assert_eq!(json["timeStamp"], "1414561699");
        assert_eq!(
            json["package"],
            "prepay_id=wx201410272009395522657a690389285100"
        );
        assert_eq!(json["signType"], "RSA");
        let expected = credentials.private_key().sign_base64(
            b"wxd678efh567hg6787\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nprepay_id=wx201410272009395522657a690389285100\n",
        );
        assert_eq!(params.pay_sign, expected);
    }
}
