//! Replays of server byte streams recorded from QEMU 7.2 by `live.rs` (`OSVDI_RFB_RECORD=1`):
//! the handshake, QEMU's answers to SetEncodings (the extended key event acknowledgement,
//! ExtendedDesktopSize as SeaBIOS switches from 640x480 to 720x400 text mode), then a small
//! raw update of the top-left corner. Full-screen updates (1.1 MB raw) were left out whole.

use osvdi_rfb::{Client, Config, Event, RectData};

use crate::feed;

const NONE: &[u8] = include_bytes!("../data/qemu72_none.bin");
const VNC_AUTH: &[u8] = include_bytes!("../data/qemu72_vnc_auth.bin");

fn replay(bytes: &[u8], config: &Config, corner: (u16, u16)) {
    let mut runs = Vec::new();
    for chunk in [1, 7, 100, bytes.len()] {
        let mut client = Client::new(config.clone());
        let (sent, events) = feed(&mut client, bytes, chunk);
        assert!(sent.starts_with(b"RFB 003.008\n"));
        assert_eq!(
            events[0],
            Event::Connected {
                width: 640,
                height: 480,
                name: "QEMU".into()
            }
        );
        assert!(
            !events.iter().any(|e| matches!(e, Event::Error(_))),
            "{events:?}"
        );
        assert!(client.supports_qemu_key_events());
        assert_eq!(client.size(), (720, 400));
        let sizes: Vec<_> = events
            .iter()
            .flat_map(|e| match e {
                Event::FramebufferUpdate { rects } => rects.as_slice(),
                _ => &[],
            })
            .filter(|r| matches!(r.data, RectData::ExtendedDesktopSize { .. }))
            .map(|r| (r.w, r.h))
            .collect();
        assert_eq!(sizes.last(), Some(&(720, 400)), "{sizes:?}");

        let Some(Event::FramebufferUpdate { rects }) = events.last() else {
            panic!("no final update: {:?}", events.last())
        };
        let RectData::Raw(px) = &rects[0].data else {
            panic!("not raw: {rects:?}")
        };
        assert_eq!(
            (rects[0].x, rects[0].y, rects[0].w, rects[0].h),
            (0, 0, corner.0, corner.1)
        );
        assert_eq!(px.len(), usize::from(corner.0) * usize::from(corner.1) * 4);
        runs.push(events);
    }
    assert!(
        runs.windows(2).all(|w| w[0] == w[1]),
        "chunking changed the events"
    );
}

#[test]
fn qemu_security_none() {
    replay(NONE, &Config::default(), (16, 8));
}

#[test]
fn qemu_vnc_authentication() {
    let config = Config {
        password: Some("s3cret".into()),
        ..Config::default()
    };
    replay(VNC_AUTH, &config, (16, 4));
}
