//! Picture quality and summary statistics for `osvdi bench display`: PSNR and SSIM on the luma
//! plane (Y' of BT.601, as osvdi's encoder input computes it), and percentiles.
//!
//! SSIM is Wang et al.'s (2004) index with the usual constants (K1 = 0.01, K2 = 0.03, L = 255)
//! over 8x8 windows every 4 pixels (as x264 and libvpx compute it), averaged.

/// A luma plane: `width * height` bytes, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Luma {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Luma {
    /// Copies a plane with `stride` bytes per row.
    pub fn from_strided(width: usize, height: usize, stride: usize, plane: &[u8]) -> Self {
        let mut data = Vec::with_capacity(width * height);
        for row in plane.chunks(stride).take(height) {
            data.extend_from_slice(&row[..width]);
        }
        Self {
            width,
            height,
            data,
        }
    }
}

/// Peak signal-to-noise ratio in dB; `f64::INFINITY` for identical planes.
pub(crate) fn psnr(a: &Luma, b: &Luma) -> f64 {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "planes differ in size"
    );
    let se: u64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(&x, &y)| {
            let d = u64::from(x.abs_diff(y));
            d * d
        })
        .sum();
    if se == 0 {
        return f64::INFINITY;
    }
    let mse = se as f64 / a.data.len() as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

/// Mean SSIM over 8x8 windows every 4 pixels, in 0..=1 (1: identical).
pub(crate) fn ssim(a: &Luma, b: &Luma) -> f64 {
    ssim_where(a, b, false)
}

/// PSNR over the 8x8 blocks of the reference `a` that are not flat (text, edges, pictures):
/// on a desktop mostly of one colour, the flat background would otherwise dominate the mean.
/// `None` when `a` is flat everywhere.
pub(crate) fn psnr_detail(a: &Luma, b: &Luma) -> Option<f64> {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "planes differ in size"
    );
    let (w, h) = (a.width, a.height);
    let (mut se, mut n) = (0u64, 0u64);
    for by in (0..h - h % 8).step_by(8) {
        for bx in (0..w - w % 8).step_by(8) {
            let first = a.data[by * w + bx];
            let flat = (by..by + 8).all(|y| {
                a.data[y * w + bx..y * w + bx + 8]
                    .iter()
                    .all(|&p| p == first)
            });
            if flat {
                continue;
            }
            for y in by..by + 8 {
                for x in bx..bx + 8 {
                    let d = u64::from(a.data[y * w + x].abs_diff(b.data[y * w + x]));
                    se += d * d;
                    n += 1;
                }
            }
        }
    }
    if n == 0 {
        return None;
    }
    if se == 0 {
        return Some(f64::INFINITY);
    }
    Some(10.0 * (255.0 * 255.0 / (se as f64 / n as f64)).log10())
}

/// SSIM over the windows where the reference `a` is not flat (see [`psnr_detail`]).
pub(crate) fn ssim_detail(a: &Luma, b: &Luma) -> f64 {
    ssim_where(a, b, true)
}

fn ssim_where(a: &Luma, b: &Luma, detail_only: bool) -> f64 {
    assert_eq!(
        (a.width, a.height),
        (b.width, b.height),
        "planes differ in size"
    );
    const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
    const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);
    let (w, h) = (a.width, a.height);
    if w < 8 || h < 8 {
        return if a == b { 1.0 } else { 0.0 };
    }
    let (mut sum, mut n) = (0.0, 0u64);
    for y in (0..=h - 8).step_by(4) {
        for x in (0..=w - 8).step_by(4) {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0u64, 0u64, 0u64, 0u64, 0u64);
            for row in y..y + 8 {
                let ra = &a.data[row * w + x..row * w + x + 8];
                let rb = &b.data[row * w + x..row * w + x + 8];
                for (&p, &q) in ra.iter().zip(rb) {
                    let (p, q) = (u64::from(p), u64::from(q));
                    sa += p;
                    sb += q;
                    saa += p * p;
                    sbb += q * q;
                    sab += p * q;
                }
            }
            let k = 64.0;
            let (ma, mb) = (sa as f64 / k, sb as f64 / k);
            let va = saa as f64 / k - ma * ma;
            let vb = sbb as f64 / k - mb * mb;
            let cov = sab as f64 / k - ma * mb;
            if detail_only && va == 0.0 {
                continue;
            }
            sum += ((2.0 * ma * mb + C1) * (2.0 * cov + C2))
                / ((ma * ma + mb * mb + C1) * (va + vb + C2));
            n += 1;
        }
    }
    if n == 0 {
        return 1.0;
    }
    sum / n as f64
}

/// The `p`th percentile (nearest rank) of `values`; `None` when empty.
pub(crate) fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> u8) -> Luma {
        let data = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y));
        Luma {
            width: w,
            height: h,
            data: data.collect(),
        }
    }

    #[test]
    fn psnr_known_values() {
        let a = plane(16, 16, |x, y| ((x * 13 + y * 7) % 200) as u8);
        assert_eq!(psnr(&a, &a), f64::INFINITY);
        // Every pixel off by 5: MSE 25, PSNR = 10 log10(65025 / 25) = 34.15 dB.
        let b = plane(16, 16, |x, y| ((x * 13 + y * 7) % 200 + 5) as u8);
        assert!((psnr(&a, &b) - 34.1514).abs() < 1e-3, "{}", psnr(&a, &b));
        // Black against white: 0 dB.
        let black = plane(8, 8, |_, _| 0);
        let white = plane(8, 8, |_, _| 255);
        assert!(psnr(&black, &white).abs() < 1e-9);
    }

    #[test]
    fn ssim_known_values() {
        let a = plane(32, 32, |x, y| ((x * 37 + y * 91) % 256) as u8);
        assert!((ssim(&a, &a) - 1.0).abs() < 1e-12);
        // Flat planes of means 100 and 110: luminance term only,
        // (2*100*110 + C1) / (100^2 + 110^2 + C1) = 0.99549.
        let m100 = plane(16, 16, |_, _| 100);
        let m110 = plane(16, 16, |_, _| 110);
        assert!(
            (ssim(&m100, &m110) - 0.995_49).abs() < 1e-4,
            "{}",
            ssim(&m100, &m110)
        );
        // Text-like detail replaced by its mean scores low.
        let text = plane(32, 32, |x, y| {
            if (x / 2 + y / 3).is_multiple_of(2) {
                20
            } else {
                230
            }
        });
        let blur = plane(32, 32, |_, _| 125);
        assert!(ssim(&text, &blur) < 0.05, "{}", ssim(&text, &blur));
        // Symmetric.
        assert!((ssim(&a, &text) - ssim(&text, &a)).abs() < 1e-12);
    }

    #[test]
    fn detail_metrics_ignore_the_flat_background() {
        // A 64x64 black screen with one 8x8 block of "text"; the copy has that block off by 10.
        let text = |x: usize, y: usize| x < 8 && y < 8 && (x + y).is_multiple_of(2);
        let a = plane(64, 64, |x, y| if text(x, y) { 200 } else { 0 });
        let b = plane(64, 64, |x, y| if text(x, y) { 190 } else { 0 });
        // Only the 64 pixels of the block count: 32 of them off by 10, MSE 50: 31.14 dB.
        let d = psnr_detail(&a, &b).unwrap();
        assert!((d - 31.1411).abs() < 1e-3, "{d}");
        // The whole screen's figure is much higher (4096 pixels).
        assert!(psnr(&a, &b) > d + 15.0);
        assert!(ssim_detail(&a, &b) < ssim(&a, &b));
        assert_eq!(psnr_detail(&b, &b), Some(f64::INFINITY));
        let flat = plane(16, 16, |_, _| 7);
        assert_eq!(psnr_detail(&flat, &flat), None);
        assert_eq!(ssim_detail(&flat, &flat), 1.0);
    }

    #[test]
    fn strided_copy_and_percentiles() {
        let l = Luma::from_strided(2, 2, 4, &[1, 2, 9, 9, 3, 4, 9, 9]);
        assert_eq!(l.data, [1, 2, 3, 4]);
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(10.0));
        assert_eq!(percentile(&v, 95.0), Some(19.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
