//! The pipeline: the encoder runs only when something changed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use osvdi_display::{
    DisplayError, EncodedFrame, I420Frame, OpenH264Config, OpenH264Encoder, Pipeline, Rect, Update,
    VideoEncoder,
};

/// Counts calls and remembers the last keyframe flag; the picture's luma sum stands in for
/// the bytes.
#[derive(Debug, Default)]
struct Counting {
    calls: Arc<AtomicUsize>,
    size: (u32, u32),
}

impl VideoEncoder for Counting {
    fn encode(
        &mut self,
        frame: &I420Frame,
        force_keyframe: bool,
    ) -> Result<EncodedFrame, DisplayError> {
        assert_eq!((frame.width(), frame.height()), self.size);
        self.calls.fetch_add(1, Ordering::SeqCst);
        let sum: u64 = frame.y().iter().map(|&v| u64::from(v)).sum();
        Ok(EncodedFrame {
            keyframe: force_keyframe,
            data: sum.to_le_bytes().to_vec(),
        })
    }

    fn resize(&mut self, width: u32, height: u32) -> Result<(), DisplayError> {
        self.size = (width, height);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "counting"
    }
}

fn counting_pipeline(w: u32, h: u32, interval: Duration) -> (Pipeline, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let enc = Counting {
        calls: calls.clone(),
        size: (0, 0),
    };
    (Pipeline::new(Box::new(enc), w, h, interval).unwrap(), calls)
}

#[test]
fn no_damage_no_encoder_call_no_bytes() {
    let (mut p, calls) = counting_pipeline(64, 48, Duration::ZERO);
    let t0 = Instant::now();
    let first = p.next_frame(t0).unwrap().expect("the first picture");
    assert!(first.keyframe);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    for i in 1..100 {
        assert_eq!(p.next_frame(t0 + Duration::from_millis(i)).unwrap(), None);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "nothing changed, nothing encoded"
    );
    assert_eq!(p.poll_timeout(), None);

    // A change outside the desktop is refused and damages nothing.
    let bad = Update::Fill {
        rect: Rect::new(60, 40, 8, 8),
        bgrx: [1, 2, 3, 0],
    };
    assert!(p.on_update(bad).is_err());
    assert_eq!(p.next_frame(t0).unwrap(), None);

    p.on_update(Update::Fill {
        rect: Rect::new(1, 1, 2, 2),
        bgrx: [255, 255, 255, 0],
    })
    .unwrap();
    let changed = p.next_frame(t0).unwrap().expect("a change");
    assert!(!changed.keyframe);
    assert_ne!(changed.data, first.data, "the converted picture changed");
    assert_eq!(p.next_frame(t0).unwrap(), None);
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    p.request_keyframe();
    assert!(p.next_frame(t0).unwrap().expect("a keyframe").keyframe);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn frame_interval_coalesces_updates() {
    let interval = Duration::from_millis(33);
    let (mut p, calls) = counting_pipeline(64, 48, interval);
    let t0 = Instant::now();
    p.next_frame(t0).unwrap().unwrap();
    for i in 0..10 {
        let rect = Rect::new(i, 0, 1, 1);
        p.on_update(Update::Raw {
            rect,
            bytes: &[9, 9, 9, 0],
        })
        .unwrap();
        assert_eq!(
            p.next_frame(t0 + Duration::from_millis(u64::from(i)))
                .unwrap(),
            None
        );
    }
    assert_eq!(p.poll_timeout(), Some(t0 + interval));
    assert!(p.next_frame(t0 + interval).unwrap().is_some());
    assert_eq!(calls.load(Ordering::SeqCst), 2, "ten updates, one picture");
}

#[test]
fn odd_sizes_and_resize() {
    let (mut p, _) = counting_pipeline(65, 47, Duration::ZERO);
    assert_eq!(
        (p.framebuffer().width(), p.framebuffer().height()),
        (66, 48)
    );
    p.next_frame(Instant::now()).unwrap().unwrap();
    p.on_update(Update::Resize {
        width: 33,
        height: 21,
    })
    .unwrap();
    assert_eq!(p.visible_size(), (33, 21));
    let out = p
        .next_frame(Instant::now())
        .unwrap()
        .expect("a picture after resize");
    assert!(out.keyframe);
    let copy = Update::CopyRect {
        dst: Rect::new(0, 0, 33, 20),
        src_x: 0,
        src_y: 1,
    };
    p.on_update(copy).unwrap();
    assert!(p.next_frame(Instant::now()).unwrap().is_some());
}

#[test]
fn openh264_through_the_pipeline() {
    let enc = OpenH264Encoder::new(OpenH264Config::default(), 320, 240).unwrap();
    let mut p = Pipeline::new(Box::new(enc), 320, 240, Duration::ZERO).unwrap();
    let now = Instant::now();
    assert_eq!(p.encoder_name(), "openh264-camera");
    assert!(p.next_frame(now).unwrap().unwrap().keyframe);
    assert_eq!(p.next_frame(now).unwrap(), None);
    p.on_update(Update::Fill {
        rect: Rect::new(10, 10, 8, 16),
        bgrx: [0, 0, 0, 0],
    })
    .unwrap();
    let p_frame = p.next_frame(now).unwrap().unwrap();
    assert!(!p_frame.keyframe && !p_frame.data.is_empty());
}
