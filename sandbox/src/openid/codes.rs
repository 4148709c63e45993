//! The one-time codes the identity endpoints issue and redeem.
//!
//! WeChat's rule, for the OAuth2 `code` and the `wx.login` `js_code` alike: a code identifies one
//! payer, can be exchanged once, and expires if unused for 5 minutes
//! (<https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html>,
//! <https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/user-login/code2Session.html>).
//! QFPay documents its `oauth_code` as unique and usable once (seed 002); the sandbox gives it the
//! same 5 minutes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::crypto::{self, CryptoError};

/// How long a code can be redeemed after it was issued.
pub(crate) const CODE_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// At most this many codes are remembered at once (issued or used, not yet expired). Beyond it
/// the oldest is forgotten, so a page that calls `wx.login` in a loop cannot grow the sandbox's
/// memory without bound.
const MAX_REMEMBERED_CODES: usize = 10_000;

/// Length of an issued code: WeChat's codes are 32 characters (e.g.
/// `011QipnO1yMIla1VJdoO1FUrnO1Qipnv` in seed 002).
const CODE_LEN: usize = 32;

/// Which exchange a code was issued for. A code is only accepted by its own family's endpoint:
/// an OAuth2 code is not a `js_code`, and neither is a QFPay `oauth_code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CodeFamily {
    /// `GET /connect/oauth2/authorize` → `GET /sns/oauth2/access_token`.
    OfficialAccountOauth,
    /// `wx.login` (`POST /sandbox/wx-login`) → `GET /sns/jscode2session`.
    MiniProgramLogin,
    /// `GET /tool/v1/get_weixin_oauth_code` → `GET /tool/v1/get_weixin_openid`.
    Qfpay,
}

/// What redeeming a code yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Grant {
    /// The payer the code was issued for.
    pub(crate) openid: String,
    /// The OAuth2 scope requested when the code was issued (`None` outside OAuth2).
    pub(crate) scope: Option<String>,
}

/// Why a code was not redeemed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RedeemError {
    /// Unknown, expired, or issued for another family.
    Invalid,
    /// Already exchanged once.
    Used,
}

#[derive(Debug)]
struct IssuedCode {
    family: CodeFamily,
    grant: Grant,
    issued_at: Instant,
    used: bool,
}

impl IssuedCode {
    fn expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.issued_at) >= CODE_LIFETIME
    }
}

/// The codes issued and not yet expired (used ones are kept until they expire, so that a second
/// exchange is answered "code been used" rather than "invalid code").
#[derive(Debug, Default)]
pub(crate) struct CodeStore {
    codes: HashMap<String, IssuedCode>,
}

impl CodeStore {
    /// Issues a fresh code for `grant`, redeemable once at `family`'s endpoint.
    pub(crate) fn issue(
        &mut self,
        family: CodeFamily,
        grant: Grant,
        now: Instant,
    ) -> Result<String, CryptoError> {
        self.codes.retain(|_, c| !c.expired(now));
        while self.codes.len() >= MAX_REMEMBERED_CODES {
            let oldest = self
                .codes
                .iter()
                .min_by_key(|(_, c)| c.issued_at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.codes.remove(&k),
                None => break,
            };
        }
        let code = loop {
            let candidate = crypto::random_alnum(CODE_LEN)?;
            if !self.codes.contains_key(&candidate) {
                break candidate;
            }
        };
        self.codes.insert(
            code.clone(),
            IssuedCode {
                family,
                grant,
                issued_at: now,
                used: false,
            },
        );
        Ok(code)
    }

    /// Exchanges `code` at `family`'s endpoint. A refused exchange changes nothing: a code
    /// presented to the wrong endpoint stays redeemable at its own.
    pub(crate) fn redeem(
        &mut self,
        code: &str,
        family: CodeFamily,
        now: Instant,
    ) -> Result<Grant, RedeemError> {
        let Some(issued) = self.codes.get_mut(code) else {
            return Err(RedeemError::Invalid);
        };
        if issued.expired(now) {
            self.codes.remove(code);
            return Err(RedeemError::Invalid);
        }
        if issued.family != family {
            return Err(RedeemError::Invalid);
        }
        if issued.used {
            return Err(RedeemError::Used);
        }
        issued.used = true;
        Ok(issued.grant.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            openid: "oSandboxTestPayer00000000000".into(),
            scope: None,
        }
    }

    #[test]
    fn a_code_is_redeemed_once_then_reported_used() {
        let mut store = CodeStore::default();
        let t0 = Instant::now();
        let code = store
            .issue(CodeFamily::MiniProgramLogin, grant(), t0)
            .unwrap();
        assert_eq!(code.len(), CODE_LEN);
        assert_eq!(
            store.redeem(&code, CodeFamily::MiniProgramLogin, t0),
            Ok(grant())
        );
        assert_eq!(
            store.redeem(&code, CodeFamily::MiniProgramLogin, t0),
            Err(RedeemError::Used)
        );
    }

    #[test]
    fn a_code_expires_after_five_minutes() {
        let mut store = CodeStore::default();
        let t0 = Instant::now();
        let code = store
            .issue(CodeFamily::OfficialAccountOauth, grant(), t0)
            .unwrap();
        let just_before = t0 + CODE_LIFETIME - Duration::from_secs(1);
        let at_expiry = t0 + CODE_LIFETIME;
        let other = store
            .issue(CodeFamily::OfficialAccountOauth, grant(), t0)
            .unwrap();
        assert_eq!(
            store.redeem(&code, CodeFamily::OfficialAccountOauth, at_expiry),
            Err(RedeemError::Invalid)
        );
        assert!(
            store
                .redeem(&other, CodeFamily::OfficialAccountOauth, just_before)
                .is_ok()
        );
    }

    #[test]
    fn a_used_code_becomes_invalid_once_expired() {
        let mut store = CodeStore::default();
        let t0 = Instant::now();
        let code = store.issue(CodeFamily::Qfpay, grant(), t0).unwrap();
        assert!(store.redeem(&code, CodeFamily::Qfpay, t0).is_ok());
        assert_eq!(
            store.redeem(&code, CodeFamily::Qfpay, t0 + CODE_LIFETIME),
            Err(RedeemError::Invalid)
        );
    }

    #[test]
    fn another_family_is_refused_without_consuming_the_code() {
        let mut store = CodeStore::default();
        let t0 = Instant::now();
        let code = store
            .issue(CodeFamily::OfficialAccountOauth, grant(), t0)
            .unwrap();
        for wrong in [CodeFamily::MiniProgramLogin, CodeFamily::Qfpay] {
            assert_eq!(store.redeem(&code, wrong, t0), Err(RedeemError::Invalid));
        }
        assert!(
            store
                .redeem(&code, CodeFamily::OfficialAccountOauth, t0)
                .is_ok()
        );
    }

    #[test]
    fn expired_codes_are_forgotten_when_new_ones_are_issued() {
        let mut store = CodeStore::default();
        let t0 = Instant::now();
        store.issue(CodeFamily::Qfpay, grant(), t0).unwrap();
        store
            .issue(CodeFamily::Qfpay, grant(), t0 + CODE_LIFETIME)
            .unwrap();
        assert_eq!(store.codes.len(), 1);
    }

    #[test]
    fn the_number_of_remembered_codes_is_bounded() {
        let mut store = CodeStore::default();
        let t0 = Instant::now();
        let first = store.issue(CodeFamily::Qfpay, grant(), t0).unwrap();
        for i in 1..=MAX_REMEMBERED_CODES {
            let at = t0 + Duration::from_millis(u64::try_from(i).unwrap());
            store.issue(CodeFamily::Qfpay, grant(), at).unwrap();
        }
        assert_eq!(store.codes.len(), MAX_REMEMBERED_CODES);
        assert_eq!(
            store.redeem(&first, CodeFamily::Qfpay, t0),
            Err(RedeemError::Invalid)
        );
    }
}
