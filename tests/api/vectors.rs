//! The published known answers of WeChat's message-encryption samples, decrypted directly and through the
//! real server.

use wxportal::time::unix_now;
use wxportal::wechat::{AesKey, MessageCrypto, signature};

use crate::helpers::TestApp;

struct Vector {
    key: &'static str,
    token: &'static str,
    appid: &'static str,
    timestamp: &'static str,
    nonce: &'static str,
    msg_signature: &'static str,
    encrypt: &'static str,
    plaintext: &'static str,
}

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

const C: Vector = Vector {
    key: KEY,
    token: "spamtest",
    appid: "wx2c2769f8efd9abc2",
    timestamp: "1409735669",
    nonce: "1320562132",
    msg_signature: "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
    encrypt: "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=",
    plaintext: "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>",
};

const D: Vector = Vector {
    key: KEY,
    token: "spamtest",
    appid: "wx2c2769f8efd9abc2",
    timestamp: "1410349438",
    nonce: "298025754",
    msg_signature: "003fee52ecc56afb46c00b5c7721be87860ce785",
    encrypt: "mfBCs65c67CeJw22u4VT2TD73q5H06+ocrAIxswCaeZ/d/Lw0msSZFHY0teqgSYiI1zR2gD2DKrB3TIrmX/liNSDrGqS8jSI/WPeKB5VPr7Ezr7gomZAyGCwJSgT1TRFWPfONGJMxuj2nk4faTuspAuVIFQ6SHwZuJBZC7mcJp7Cgr9cUhATQWDbOPaE7ukZBTV2YqyzH+UI2AK+J1S47cE79k1RX8t0hcTz/O0hlK8DGXKnvYv88qKQcI7z4iaajqHfRVZKBNyOODabs+It+ZfM3dWTeFcPgDbGtIEnpt/EDtuuA/zMvtkaKdHdswPnVZQ+xdwbYr3ldGvfT8HlEYEgkgKaThxTFobVlwzu2ZkXCjicbP3xdr15Iq48ObgzPpqYuZ3IEoyggZDKClquk0u0orMck4GTF/XyE8yGzc4=",
    plaintext: "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1410349438</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6057404712141979648</MsgId>\n</xml>",
};

const E: Vector = Vector {
    key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    token: "AAAAA",
    appid: "wx134c8103faa5a59e",
    timestamp: "1715943329",
    nonce: "1590219412",
    msg_signature: "6c12a4205838198b8fa631b3220723bb07f1015c",
    encrypt: "D7yzvUNAL930rd28wf21s4hvXhz0L6Uit/p2Di6C5DHyYGpEgdBRnKjBec34JwoQXicwaZC7fOVihW80F4VtsdvE//1vr7oAbqjDv8KenVp+ajKYpJnyQ4zMRhIC+a31fCVOMC03FfzV/QuC94kBP55a+Za3sJgvAn+ZbsNqZI5DkyuzkhQN8OBqCzFhizGmy0xpM0MEA4agpvE+RuNO1rhHTtuJB5yltw1FiYzecSXJ+y/D2r81VkRn2eYjh2ltsoyfbDR7Is6ookXIFxTfyeNyeHxMeT4KN5WpCDmSbTcUYrbBUlkGLJ9n/rU8YOywma6G7aTb7KZKOqCxgfoUlYEZPk4FUL/TK7ShriFDMVCLyjQJ15Ob++agDWtcxhfUfe6HIoIpRW8mKNBQiY/Jd1svvuskA1wLef1RTtzKfMpagSCX/laZINmdnX4zrF6kIaR9P4xQrWXbsTFHTYe0Mg==",
    plaintext: "<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>\n<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>\n<CreateTime>1715943329</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n<Event><![CDATA[debug_demo]]></Event>\n<debug_str><![CDATA[hello world]]></debug_str>\n</xml>",
};

#[test]
fn published_ciphertexts_verify_and_decrypt_to_the_published_plaintext() {
    for v in [C, D, E] {
        assert!(signature::verify(
            v.msg_signature,
            &[v.token, v.timestamp, v.nonce, v.encrypt]
        ));
        let crypto = MessageCrypto::new(AesKey::from_encoding_aes_key(v.key).unwrap(), v.appid);
        assert_eq!(crypto.decrypt(v.encrypt).unwrap(), v.plaintext);
    }
    assert_eq!(E.plaintext.len(), 292);
}

#[test]
fn vector_e_reply_signature_matches() {
    let encrypt = "hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7";
    assert_eq!(
        signature::sign(&["AAAAA", "1713424427", "415670741", encrypt]),
        "03e0812039325c2712ef5f0f980fd14c70d6e307"
    );
}

#[tokio::test]
async fn the_server_accepts_each_published_request() {
    for v in [C, D, E] {
        let app = TestApp::spawn(&[
            ("WXPORTAL_TOKEN", v.token),
            ("WXPORTAL_APPID", v.appid),
            ("WXPORTAL_ENCODING_AES_KEY", v.key),
            ("WXPORTAL_MESSAGE_MODE", "safe"),
            // The published requests are years old.
            ("WXPORTAL_MAX_CLOCK_SKEW", "0"),
        ])
        .await;
        let query = [
            (
                "signature",
                signature::sign(&[v.token, v.timestamp, v.nonce]),
            ),
            ("timestamp", v.timestamp.to_owned()),
            ("nonce", v.nonce.to_owned()),
            ("encrypt_type", "aes".to_owned()),
            ("msg_signature", v.msg_signature.to_owned()),
        ];
        let body = format!(
            "<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt></xml>",
            v.encrypt
        );
        let (status, reply) = app.post_raw(&query, Some("text/xml"), body).await;
        assert_eq!(status, 200, "{reply}");
        let stored = &app.store.recent_messages(1).await.unwrap()[0].message;
        assert_eq!(stored.raw_xml, v.plaintext);
        assert!(stored.received_at >= unix_now() - 60);
    }
}

#[test]
fn the_published_jssdk_signature_matches() {
    assert_eq!(
        wxportal::web::jssdk::signature(
            "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
            "Wm3WZYTPz0wzccnW",
            1414587457,
            "http://mp.weixin.qq.com?params=value",
        ),
        "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    );
}
