//! Benchmarks: damage tracking, BGRX→I420 at 1080p (whole frame and dirty region), openh264
//! encoding of typing, scrolling and a panned picture at 1080p in both usage modes. Before timing the encoder,
//! prints each mode's bytes per picture and luma PSNR over the same sequence.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use osvdi_display::{
    Damage, Framebuffer, I420Frame, OpenH264Config, OpenH264Encoder, OpenH264Usage, Rect,
    VideoEncoder, bgrx_to_i420, bgrx_to_i420_rect,
};

const W: u32 = 1920;
const H: u32 = 1080;
const LINE: u32 = 18;

struct Rng(u32);

impl Rng {
    fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}

fn glyph(fb: &mut Framebuffer, x: u32, y: u32, rng: &mut Rng) {
    fb.fill(Rect::new(x, y, 8, 16), [0xf4, 0xf4, 0xf4, 0])
        .unwrap();
    for _ in 0..3 {
        let (sx, sy) = (x + 1 + rng.next_u32() % 5, y + 2 + rng.next_u32() % 10);
        let r = if rng.next_u32().is_multiple_of(2) {
            Rect::new(sx, sy, 1, 3 + rng.next_u32() % 4)
        } else {
            Rect::new(sx - 1, sy, 2 + rng.next_u32() % 4, 1)
        };
        fb.fill(r, [0x10, 0x10, 0x10, 0]).unwrap();
    }
}

fn text_line(fb: &mut Framebuffer, y: u32, rng: &mut Rng) {
    for x in (8..W - 8).step_by(8) {
        if !rng.next_u32().is_multiple_of(7) {
            glyph(fb, x, y, rng);
        }
    }
}

fn text_screen(rng: &mut Rng) -> Framebuffer {
    let mut fb = Framebuffer::new(W, H);
    fb.fill(fb.bounds(), [0xf4, 0xf4, 0xf4, 0]).unwrap();
    fb.fill(Rect::new(0, 0, W, 24), [0x80, 0x40, 0x20, 0])
        .unwrap();
    for y in (32..H - LINE).step_by(LINE as usize) {
        text_line(&mut fb, y, rng);
    }
    fb
}

fn to_i420(fb: &Framebuffer) -> I420Frame {
    let mut f = I420Frame::new(fb.width(), fb.height()).unwrap();
    bgrx_to_i420(fb, &mut f).unwrap();
    f
}

/// `n` pictures of someone typing: one more character each.
fn typing(n: u32) -> Vec<I420Frame> {
    let mut rng = Rng(7);
    let mut fb = text_screen(&mut rng);
    fb.fill(Rect::new(0, 500, W, LINE), [0xf4, 0xf4, 0xf4, 0])
        .unwrap();
    (0..n)
        .map(|i| {
            glyph(&mut fb, 8 + 8 * i, 500, &mut rng);
            to_i420(&fb)
        })
        .collect()
}

/// `n` pictures of a terminal scrolling one line each (CopyRect up, a new line at the bottom).
fn scrolling(n: u32) -> Vec<I420Frame> {
    let mut rng = Rng(9);
    let mut fb = text_screen(&mut rng);
    let body = Rect::new(0, 32, W, H - 32 - LINE);
    (0..n)
        .map(|_| {
            let dst = Rect::new(0, body.y, W, body.height - LINE);
            fb.apply_copy_rect(dst, 0, body.y + LINE).unwrap();
            let last = body.bottom() - LINE;
            fb.fill(Rect::new(0, last, W, LINE), [0xf4, 0xf4, 0xf4, 0])
                .unwrap();
            text_line(&mut fb, last, &mut rng);
            to_i420(&fb)
        })
        .collect()
}

/// `n` pictures of a 480x360 photo-like window dragged over a text screen, 20 px right and
/// 6 px down a picture (the motion phase of `osvdi bench display`).
fn panning(n: u32) -> Vec<I420Frame> {
    let mut rng = Rng(11);
    let background = text_screen(&mut rng);
    let (ww, wh) = (480u32, 360u32);
    let window: Vec<u8> = (0..wh)
        .flat_map(|y| {
            (0..ww).flat_map(move |x| {
                let (dx, dy) = (x.abs_diff(240), y.abs_diff(190));
                let t = (dx * dx + dy * dy) / 24 % 512;
                let tri = if t < 256 { t } else { 511 - t };
                [
                    tri as u8,
                    ((y * 255 / wh + tri) / 2) as u8,
                    (x * 255 / ww) as u8,
                    0,
                ]
            })
        })
        .collect();
    (0..n)
        .map(|i| {
            let mut fb = background.clone();
            let at = Rect::new((100 + 20 * i) % (W - ww), (120 + 6 * i) % (H - wh), ww, wh);
            fb.apply_raw(at, &window).unwrap();
            to_i420(&fb)
        })
        .collect()
}

fn encoder(usage: OpenH264Usage) -> OpenH264Encoder {
    let config = OpenH264Config {
        usage,
        ..OpenH264Config::default()
    };
    OpenH264Encoder::new(config, W, H).unwrap()
}

fn psnr_y(decoded: &impl YUVSource, source: &I420Frame) -> f64 {
    let stride = decoded.strides().0;
    let w = source.width() as usize;
    let mut se = 0.0;
    for row in 0..source.height() as usize {
        let (a, b) = (
            &decoded.y()[row * stride..][..w],
            &source.y()[row * w..][..w],
        );
        se += a
            .iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum::<f64>();
    }
    let mse = se / (w * source.height() as usize) as f64;
    10.0 * (255.0 * 255.0 / mse.max(1e-9)).log10()
}

/// Bytes per P picture and mean luma PSNR of a sequence, after its IDR.
fn report(name: &str, usage: OpenH264Usage, frames: &[I420Frame]) {
    report_with(&format!("{name}/{usage:?}"), &mut encoder(usage), frames);
}

/// Bytes per P picture and mean luma PSNR of `frames` through `enc`, after its IDR.
fn report_with(label: &str, enc: &mut dyn VideoEncoder, frames: &[I420Frame]) {
    let mut dec = Decoder::new().unwrap();
    let idr = enc.encode(&frames[0], false).unwrap();
    dec.decode(&idr.data).unwrap();
    let (mut bytes, mut psnr) = (0, 0.0);
    for f in &frames[1..] {
        let out = enc.encode(f, false).unwrap();
        bytes += out.data.len();
        psnr += psnr_y(&dec.decode(&out.data).unwrap().unwrap(), f);
    }
    let n = (frames.len() - 1) as f64;
    println!(
        "quality {label}: IDR {} B, P {:.0} B/picture, Y PSNR {:.1} dB",
        idr.data.len(),
        bytes as f64 / n,
        psnr / n
    );
}

fn bench_damage(c: &mut Criterion) {
    // A typical second of desktop updates: typing, a blinking cursor, a clock, a menu.
    let mut updates = Vec::new();
    for i in 0..60 {
        updates.push(Rect::new(100 + 8 * i, 500, 8, 16));
        updates.push(Rect::new(100 + 8 * i + 8, 500, 1, 16));
    }
    updates.push(Rect::new(1800, 1050, 100, 20));
    updates.push(Rect::new(300, 200, 400, 600));
    let mut damage = Damage::new(W, H);
    c.bench_function("damage/typing-second-122-rects", |b| {
        b.iter(|| {
            for r in &updates {
                damage.add(*r);
            }
            black_box(damage.take())
        });
    });
    c.bench_function("damage/full-screen", |b| {
        b.iter(|| {
            damage.add(Rect::new(0, 0, W, H));
            black_box(damage.take())
        });
    });
}

fn bench_convert(c: &mut Criterion) {
    let fb = text_screen(&mut Rng(3));
    let mut out = I420Frame::new(W, H).unwrap();
    c.bench_function("bgrx_to_i420/1080p-full", |b| {
        b.iter(|| bgrx_to_i420(black_box(&fb), &mut out).unwrap());
    });
    c.bench_function("bgrx_to_i420/1080p-one-tile", |b| {
        b.iter(|| bgrx_to_i420_rect(black_box(&fb), Rect::new(64, 512, 64, 64), &mut out).unwrap());
    });
    c.bench_function("bgrx_to_i420/1080p-scroll-region", |b| {
        b.iter(|| bgrx_to_i420_rect(black_box(&fb), Rect::new(0, 0, W, 1024), &mut out).unwrap());
    });
}

fn bench_encode(c: &mut Criterion) {
    let sequences = [
        ("typing", typing(60)),
        ("scrolling", scrolling(60)),
        ("panning", panning(60)),
    ];
    for usage in [OpenH264Usage::Screen, OpenH264Usage::Camera] {
        for (name, frames) in &sequences {
            report(name, usage, frames);
        }
    }
    let mut group = c.benchmark_group("openh264-1080p");
    group.sample_size(20);
    for usage in [OpenH264Usage::Screen, OpenH264Usage::Camera] {
        for (name, frames) in &sequences {
            let mut enc = encoder(usage);
            enc.encode(&frames[0], false).unwrap();
            let mut i = 0;
            group.bench_function(format!("{name}/{usage:?}"), |b| {
                b.iter(|| {
                    i = (i + 1) % frames.len();
                    black_box(enc.encode(&frames[i], false).unwrap())
                });
            });
        }
    }
    group.finish();
}

/// ffmpeg's libx264 (`--features ffmpeg`) on the same sequences, for comparison.
#[cfg(feature = "ffmpeg")]
fn bench_x264(c: &mut Criterion) {
    use osvdi_display::{FfmpegConfig, FfmpegEncoder};
    let sequences = [
        ("typing", typing(60)),
        ("scrolling", scrolling(60)),
        ("panning", panning(60)),
    ];
    let x264 = || FfmpegEncoder::new(FfmpegConfig::default(), W, H).unwrap();
    for (name, frames) in &sequences {
        report_with(&format!("{name}/x264"), &mut x264(), frames);
    }
    let mut group = c.benchmark_group("x264-1080p");
    group.sample_size(20);
    for (name, frames) in &sequences {
        let mut enc = x264();
        enc.encode(&frames[0], false).unwrap();
        let mut i = 0;
        group.bench_function(format!("{name}/ultrafast-zerolatency"), |b| {
            b.iter(|| {
                i = (i + 1) % frames.len();
                black_box(enc.encode(&frames[i], false).unwrap())
            });
        });
    }
    group.finish();
}

#[cfg(not(feature = "ffmpeg"))]
fn bench_x264(_: &mut Criterion) {}

criterion_group!(
    benches,
    bench_damage,
    bench_convert,
    bench_encode,
    bench_x264
);
criterion_main!(benches);
