/* wxpay-sandbox browser shim: TODO */
