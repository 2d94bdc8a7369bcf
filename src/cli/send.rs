//! `wxportal send`: sends exactly what WeChat's server would send, then judges the answer as WeChat does.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand};

use crate::time::unix_now;
use crate::wechat::push::{self, Push};
use crate::wechat::{AesKey, MessageCrypto, MessageMode};

/// Options of `wxportal send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The server URL configured on the WeChat platform, e.g. https://example.com/wechat
    #[arg(long)]
    pub url: String,
    /// The Token configured on the WeChat platform.
    #[arg(long, env = "WXPORTAL_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The EncodingAESKey, for compatible or safe mode.
    #[arg(long, env = "WXPORTAL_ENCODING_AES_KEY", hide_env_values = true)]
    pub aes_key: Option<String>,
    /// The AppID, for compatible or safe mode.
    #[arg(long, env = "WXPORTAL_APPID")]
    pub appid: Option<String>,
    /// How to protect the message: plain, compat or safe; default: compat when a key is given, else
    /// plain.
    #[arg(long)]
    pub mode: Option<MessageMode>,
    /// ToUserName: the account's id.
    #[arg(long, default_value = "gh_0123456789ab")]
    pub to: String,
    /// FromUserName: the follower's OpenID.
    #[arg(long, default_value = "oSimulatedFollower000000001")]
    pub from: String,
    /// MsgId to use (repeat a value to see how retries are answered); random by default.
    #[arg(long)]
    pub msg_id: Option<String>,
    /// CreateTime to use (unix seconds); now by default.
    #[arg(long)]
    pub create_time: Option<i64>,
    #[command(subcommand)]
    pub message: SendMessage,
}

/// What to send.
#[derive(Debug, Clone, Subcommand)]
pub enum SendMessage {
    /// The URL-verification handshake (GET with echostr).
    Verify,
    /// A text message.
    Text {
        content: String,
    },
    Image {
        #[arg(default_value = "https://example.com/picture.jpg")]
        pic_url: String,
    },
    Voice {
        /// Speech-recognition result, as sent when recognition is on.
        #[arg(long)]
        recognition: Option<String>,
    },
    Video,
    Shortvideo,
    /// A location message.
    Location {
        #[arg(long, default_value = "23.134521")]
        x: String,
        #[arg(long, default_value = "113.358803")]
        y: String,
        #[arg(long, default_value = "广州市天河区")]
        label: String,
    },
    Link {
        title: String,
        url: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// A new follower (with --scene, from a parametric QR code).
    Subscribe {
        #[arg(long)]
        scene: Option<String>,
    },
    Unsubscribe,
    /// A follower scanned a parametric QR code.
    Scan {
        scene: String,
    },
    /// The periodic location report (event LOCATION).
    ReportLocation {
        #[arg(default_value = "23.137466")]
        latitude: String,
        #[arg(default_value = "113.352425")]
        longitude: String,
    },
    /// A menu CLICK.
    Click {
        key: String,
    },
    /// A menu VIEW (link).
    View {
        url: String,
    },
    ScancodePush {
        key: String,
        result: String,
    },
    ScancodeWaitmsg {
        key: String,
        result: String,
    },
    PicSysphoto {
        key: String,
    },
    PicPhotoOrAlbum {
        key: String,
    },
    PicWeixin {
        key: String,
    },
    LocationSelect {
        key: String,
    },
    ViewMiniprogram {
        page_path: String,
    },
    TemplateJobFinish,
    MassJobFinish,
    /// Any other event, by name.
    Event {
        name: String,
        #[arg(long)]
        key: Option<String>,
    },
}

impl SendMessage {
    /// The push WeChat would send for this message. `None` for `verify`.
    pub fn to_push(&self, to: &str, from: &str, create_time: i64, msg_id: &str) -> Option<Push> {
        let s = |v: &str| v.to_owned();
        let f = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (s(k), s(v))).collect()
        };
        let with_id = |mut fields: Vec<(String, String)>| {
            fields.push((s("MsgId"), s(msg_id)));
            fields
        };
        let event = |name: &str, rest: &[(&str, &str)]| {
            let mut fields = f(&[("Event", name)]);
            fields.extend(f(rest));
            fields
        };
        let pics = |key: &str| {
            event(
                "",
                &[
                    ("EventKey", key),
                    ("SendPicsInfo/Count", "1"),
                    (
                        "SendPicsInfo/PicList/item/PicMd5Sum",
                        "1b5f7c23b5bf75682a53e7b6d163e185",
                    ),
                ],
            )
        };
        let (msg_type, fields) = match self {
            Self::Verify => return None,
            Self::Text { content } => ("text", with_id(f(&[("Content", content)]))),
            Self::Image { pic_url } => (
                "image",
                with_id(f(&[("PicUrl", pic_url), ("MediaId", "media_image_1")])),
            ),
            Self::Voice { recognition } => {
                let mut fields = f(&[("MediaId", "media_voice_1"), ("Format", "amr")]);
                if let Some(r) = recognition {
                    fields.push((s("Recognition"), s(r)));
                }
                ("voice", with_id(fields))
            }
            Self::Video => (
                "video",
                with_id(f(&[
                    ("MediaId", "media_video_1"),
                    ("ThumbMediaId", "thumb_1"),
                ])),
            ),
            Self::Shortvideo => (
                "shortvideo",
                with_id(f(&[
                    ("MediaId", "media_video_2"),
                    ("ThumbMediaId", "thumb_2"),
                ])),
            ),
            Self::Location { x, y, label } => (
                "location",
                with_id(f(&[
                    ("Location_X", x),
                    ("Location_Y", y),
                    ("Scale", "20"),
                    ("Label", label),
                ])),
            ),
            Self::Link {
                title,
                url,
                description,
            } => (
                "link",
                with_id(f(&[
                    ("Title", title),
                    ("Description", description),
                    ("Url", url),
                ])),
            ),
            Self::Subscribe { scene } => match scene {
                Some(scene) => (
                    "event",
                    event(
                        "subscribe",
                        &[
                            ("EventKey", &format!("qrscene_{scene}")),
                            ("Ticket", "gQH47joAAAAAAAAAASxodHRwOi8v"),
                        ],
                    ),
                ),
                None => ("event", event("subscribe", &[("EventKey", "")])),
            },
            Self::Unsubscribe => ("event", event("unsubscribe", &[("EventKey", "")])),
            Self::Scan { scene } => (
                "event",
                event(
                    "SCAN",
                    &[
                        ("EventKey", scene),
                        ("Ticket", "gQH47joAAAAAAAAAASxodHRwOi8v"),
                    ],
                ),
            ),
            Self::ReportLocation {
                latitude,
                longitude,
            } => (
                "event",
                event(
                    "LOCATION",
                    &[
                        ("Latitude", latitude),
                        ("Longitude", longitude),
                        ("Precision", "119.385040"),
                    ],
                ),
            ),
            Self::Click { key } => ("event", event("CLICK", &[("EventKey", key)])),
            Self::View { url } => (
                "event",
                event("VIEW", &[("EventKey", url), ("MenuId", "208379533")]),
            ),
            Self::ScancodePush { key, result } | Self::ScancodeWaitmsg { key, result } => {
                let name = if matches!(self, Self::ScancodePush { .. }) {
                    "scancode_push"
                } else {
                    "scancode_waitmsg"
                };
                (
                    "event",
                    event(
                        name,
                        &[
                            ("EventKey", key),
                            ("ScanCodeInfo/ScanType", "qrcode"),
                            ("ScanCodeInfo/ScanResult", result),
                        ],
                    ),
                )
            }
            Self::PicSysphoto { key } | Self::PicPhotoOrAlbum { key } | Self::PicWeixin { key } => {
                let mut fields = pics(key);
                fields[0].1 = s(match self {
                    Self::PicSysphoto { .. } => "pic_sysphoto",
                    Self::PicPhotoOrAlbum { .. } => "pic_photo_or_album",
                    _ => "pic_weixin",
                });
                ("event", fields)
            }
            Self::LocationSelect { key } => (
                "event",
                event(
                    "location_select",
                    &[
                        ("EventKey", key),
                        ("SendLocationInfo/Location_X", "23"),
                        ("SendLocationInfo/Location_Y", "113"),
                        ("SendLocationInfo/Scale", "15"),
                        ("SendLocationInfo/Label", "广州市海珠区客村艺苑路 106号"),
                        ("SendLocationInfo/Poiname", ""),
                    ],
                ),
            ),
            Self::ViewMiniprogram { page_path } => (
                "event",
                event(
                    "view_miniprogram",
                    &[("EventKey", page_path), ("MenuId", "MENUID")],
                ),
            ),
            Self::TemplateJobFinish => (
                "event",
                event(
                    "TEMPLATESENDJOBFINISH",
                    &[("MsgID", msg_id), ("Status", "success")],
                ),
            ),
            Self::MassJobFinish => (
                "event",
                event(
                    "MASSSENDJOBFINISH",
                    &[
                        ("MsgID", msg_id),
                        ("Status", "send success"),
                        ("TotalCount", "100"),
                        ("SentCount", "98"),
                        ("ErrorCount", "2"),
                    ],
                ),
            ),
            Self::Event { name, key } => (
                "event",
                event(name, &[("EventKey", key.as_deref().unwrap_or_default())]),
            ),
        };
        Some(Push {
            to: to.to_owned(),
            from: from.to_owned(),
            create_time,
            msg_type: msg_type.to_owned(),
            fields,
        })
    }
}

/// A random nonce as WeChat sends them (a decimal number).
pub fn nonce() -> String {
    rand::random_range(100_000_000u32..4_000_000_000).to_string()
}

/// Runs `wxportal send`: exit 0 when WeChat would accept the server's answer, 1 when not, 2 on a
/// usage or network error.
pub async fn run(args: SendArgs) -> ExitCode {
    let client = match crate::upstream::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(push::WECHAT_TIMEOUT + std::time::Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => return fail(&format!("cannot create an HTTP client: {e}")),
    };
    let now = args.create_time.unwrap_or_else(unix_now);
    let timestamp = unix_now().to_string();
    let nonce = nonce();
    let msg_id = args.msg_id.clone().unwrap_or_else(|| {
        rand::random_range(1_000_000_000_000_000_000u64..9_000_000_000_000_000_000).to_string()
    });

    let Some(push) = args.message.to_push(&args.to, &args.from, now, &msg_id) else {
        return verify(&client, &args, &timestamp, &nonce).await;
    };
    let mode = match (args.mode, &args.aes_key) {
        (Some(mode), _) => mode,
        (None, None) => MessageMode::Plain,
        (None, Some(_)) => MessageMode::Compat,
    };
    let crypto = if mode == MessageMode::Plain {
        None
    } else {
        let (Some(key), Some(appid)) = (&args.aes_key, &args.appid) else {
            return fail("compat and safe mode need --aes-key and --appid");
        };
        match AesKey::from_encoding_aes_key(key) {
            Ok(k) => Some(MessageCrypto::new(k, appid.clone())),
            Err(e) => return fail(&format!("--aes-key: {e}")),
        }
    };
    let signed = push.sign(&args.token, mode, crypto.as_ref(), &timestamp, &nonce);
    println!(
        "→ POST {} ({:?} mode)\n{}\n",
        args.url, mode, signed.plaintext
    );

    let started = Instant::now();
    let response = client
        .post(signed.url(&args.url))
        .header(reqwest::header::CONTENT_TYPE, "text/xml")
        .body(signed.body)
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => return fail(&format!("the server could not be reached: {e}")),
    };
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let elapsed = started.elapsed();
    println!(
        "← HTTP {status} in {} ms\n{}\n",
        elapsed.as_millis(),
        body.trim()
    );
    let verdict = push::check_reply(&push, &args.token, crypto.as_ref(), status, elapsed, &body);
    if let Some(xml) = &verdict.decrypted {
        println!("decrypted reply:\n{xml}\n");
    }
    report(
        &verdict.problems,
        if verdict.silent {
            "accepted: `success`, nothing shown to the follower"
        } else {
            "accepted: the follower sees the reply"
        },
    )
}

async fn verify(
    client: &reqwest::Client,
    args: &SendArgs,
    timestamp: &str,
    nonce: &str,
) -> ExitCode {
    let echostr = format!("{}", rand::random::<u64>());
    let query = push::verification_query(&args.token, timestamp, nonce, &echostr);
    println!("→ GET {} (URL verification, echostr {echostr})", args.url);
    let started = Instant::now();
    let response = match client.get(&args.url).query(&query).send().await {
        Ok(r) => r,
        Err(e) => return fail(&format!("the server could not be reached: {e}")),
    };
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let elapsed = started.elapsed();
    println!("← HTTP {status} in {} ms: {body:?}", elapsed.as_millis());
    let mut problems = Vec::new();
    if status != 200 {
        problems.push(format!("HTTP status {status}: the platform says the configuration failed (a 403 means the Token differs)"));
    } else if body != echostr {
        problems.push(format!(
            "the body must be exactly the echostr {echostr:?}, with no quotes, newline or XML; got {body:?}"
        ));
    }
    if elapsed > push::WECHAT_TIMEOUT {
        problems.push("the answer took longer than 5 s".into());
    }
    report(
        &problems,
        "accepted: the WeChat platform would save this server configuration",
    )
}

fn report(problems: &[String], ok: &str) -> ExitCode {
    if problems.is_empty() {
        println!("✔ {ok}");
        ExitCode::SUCCESS
    } else {
        println!("✘ WeChat would not accept this answer:");
        for p in problems {
            println!("  - {p}");
        }
        ExitCode::from(1)
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("wxportal send: {message}");
    ExitCode::from(2)
}
