//! The demo stays on loopback and its consent page answers the public origin only.

use super::*;

/// The address `port` is listened on, from the kernel's table: `0100007F` is 127.0.0.1.
fn listening_address(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (addr, hex_port) = fields.get(1)?.split_once(':')?;
        let listening = fields.get(3) == Some(&"0A");
        (listening && u16::from_str_radix(hex_port, 16).ok()? == port).then(|| addr.to_owned())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_listens_on_loopback_whatever_the_environment_says() {
    let dir = tempfile::tempdir().unwrap();
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    for (listen, expected) in [(None, "0100007F"), (Some("0.0.0.0"), "00000000")] {
        let port = free_port();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wxportal"));
        cmd.arg("demo")
            .env_clear()
            .env("WXPORTAL_BIND", format!("0.0.0.0:{port}"))
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if let Some(ip) = listen {
            cmd.arg("--listen").arg(format!("{ip}:{port}"));
        }
        let mut child = cmd.spawn().unwrap();
        let up = eventually(20, || listening_address(port).is_some()).await;
        let address = listening_address(port);
        child.kill().unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(up, "{stderr}");
        assert_eq!(address.as_deref(), Some(expected), "{stderr}");
        if listen.is_some() {
            assert!(stderr.contains("WARNING"), "{stderr}");
        } else {
            assert!(stderr.contains("127.0.0.1"), "{stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulator_gives_codes_only_to_the_public_origin() {
    let (base, _dir, _) = spawn_demo().await;
    let client = wxportal::upstream::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for evil in [
        format!("{base}.evil.example/auth/callback"),
        format!("{base}@evil.example/auth/callback"),
        base.replace("http://", "https://") + "/auth/callback",
    ] {
        let response = simulator_allows(&client, &base, &evil).await;
        assert!(
            response.headers().get("location").is_none(),
            "{evil}: {:?}",
            response.headers().get("location")
        );
    }
}
