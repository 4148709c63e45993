//! Getting the payer's openid from a source the server trusts, and binding it to the client.
