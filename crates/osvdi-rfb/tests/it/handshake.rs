//! Handshakes against a scripted server: versions, security types, refusals, held requests.

use osvdi_rfb::{Client, Config, Encoding, Event, ProtocolError, des};

use crate::feed;

fn server_init(w: u16, h: u16, name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(w.to_be_bytes());
    v.extend(h.to_be_bytes());
    v.extend([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
    v.extend((name.len() as u32).to_be_bytes());
    v.extend(name.as_bytes());
    v
}

fn set_pf_and_encodings(config: &Config) -> Vec<u8> {
    let mut v = vec![
        0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0,
    ];
    v.extend([2, 0, 0, config.encodings.len() as u8]);
    for e in &config.encodings {
        v.extend(e.code().to_be_bytes());
    }
    v
}

#[test]
fn vnc_auth_3_8_byte_by_byte_with_held_request() {
    let config = Config {
        password: Some("osvdi".into()),
        ..Config::default()
    };
    let mut client = Client::new(config.clone());
    client.request_update(false, 0, 0, 10, 10);
    let challenge: [u8; 16] = std::array::from_fn(|i| i as u8 * 3);
    let mut server = b"RFB 003.008\n".to_vec();
    server.extend([2, 1, 2]);
    server.extend(challenge);
    server.extend([0, 0, 0, 0]);
    server.extend(server_init(640, 480, "guest"));
    let (sent, events) = feed(&mut client, &server, 1);

    let mut want = b"RFB 003.008\n".to_vec();
    want.push(2);
    want.extend(des::vnc_auth_response(b"osvdi", &challenge));
    want.push(1); // shared
    want.extend(set_pf_and_encodings(&config));
    want.extend([3, 0, 0, 0, 0, 0, 0, 10, 0, 10]);
    assert_eq!(sent, want);
    assert_eq!(
        events,
        [Event::Connected {
            width: 640,
            height: 480,
            name: "guest".into()
        }]
    );
    assert!(client.is_connected());
    assert_eq!(
        client.server_pixel_format(),
        Some(osvdi_rfb::PixelFormat::BGRX)
    );
}

#[test]
fn none_on_3_3_and_3_7() {
    // 3.3: the server names the type; no SecurityResult for None.
    let mut client = Client::new(Config::default());
    let mut server = b"RFB 003.003\n".to_vec();
    server.extend([0, 0, 0, 1]);
    server.extend(server_init(8, 8, ""));
    let (sent, events) = feed(&mut client, &server, 5);
    assert!(sent.starts_with(b"RFB 003.003\n\x01\x00\x00\x00\x00"));
    assert!(matches!(events[..], [Event::Connected { width: 8, .. }]));

    // 3.7: a list, but no SecurityResult for None either.
    let mut client = Client::new(Config {
        shared: false,
        ..Config::default()
    });
    let mut server = b"RFB 003.007\n".to_vec();
    server.extend([1, 1]);
    server.extend(server_init(8, 8, "x"));
    let (sent, events) = feed(&mut client, &server, 64);
    assert!(sent.starts_with(b"RFB 003.007\n\x01\x00\x00"));
    assert!(matches!(events[..], [Event::Connected { .. }]));
}

fn error_of(server: &[u8], config: Config) -> ProtocolError {
    let mut client = Client::new(config);
    let (_, events) = feed(&mut client, server, 3);
    match events.last() {
        Some(Event::Error(e)) => e.clone(),
        other => panic!("no error: {other:?}"),
    }
}

#[test]
fn refusals_and_failures() {
    assert!(matches!(
        error_of(b"HTTP/1.1 200", Config::default()),
        ProtocolError::NotRfb(_)
    ));
    let refused = b"RFB 003.008\n\x00\x00\x00\x00\x04busy";
    assert_eq!(
        error_of(refused, Config::default()),
        ProtocolError::Refused("busy".into())
    );
    let only_vnc = b"RFB 003.008\n\x01\x02";
    assert_eq!(
        error_of(only_vnc, Config::default()),
        ProtocolError::PasswordRequired
    );
    let tight_only = b"RFB 003.008\n\x01\x10";
    assert_eq!(
        error_of(tight_only, Config::default()),
        ProtocolError::NoCommonSecurity(vec![16])
    );
    let mut bad_pw = b"RFB 003.008\n\x01\x02".to_vec();
    bad_pw.extend([0; 16]);
    bad_pw.extend(b"\x00\x00\x00\x01\x00\x00\x00\x0dAuthFailed!!!");
    let config = Config {
        password: Some("x".into()),
        ..Config::default()
    };
    assert_eq!(
        error_of(&bad_pw, config),
        ProtocolError::AuthFailed("AuthFailed!!!".into())
    );
}

#[test]
fn after_an_error_input_is_ignored() {
    let mut client = Client::new(Config::default());
    let (_, events) = feed(&mut client, b"RFB 003.008\n\x01\x01\x00\x00\x00\x00", 100);
    assert!(events.is_empty());
    let mut rest = server_init(4, 4, "");
    rest.push(77); // not a server message
    rest.extend(b"more");
    let (_, events) = feed(&mut client, &rest, 100);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], Event::Error(ProtocolError::UnknownMessage(77)));
    let (sent, events) = feed(&mut client, &[2, 2, 2], 1);
    assert!(sent.is_empty() && events.is_empty());
    // Requests still queue bytes nobody will read; they must not panic either.
    client.set_encodings(&[Encoding::Raw]);
}
